import { headerValue, safeEqual, type RequestHeaders } from 'switchboard';

/**
 * jambonz's only way to authenticate itself to an application: HTTP Basic authentication, with the username and
 * password set on the application's webhook in the jambonz portal, sent on the WebSocket upgrade request. `true`, or
 * the reason it failed (for the log, never the client). Never throws.
 */
export function verifyBasicAuth(headers: RequestHeaders, username: string | undefined, password: string | undefined): true | string {
  // Fails closed: without both configured nothing can be checked (the channel refuses to start so, unless unverified).
  if (!username || !password) return 'no username and password configured';
  const match = /^[ \t]*Basic[ \t]+([A-Za-z0-9+/=]+)[ \t]*$/i.exec(headerValue(headers, 'authorization') ?? '');
  if (!match) return 'no Basic Authorization header';
  const decoded = Buffer.from(match[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon === -1) return 'malformed Basic credentials';
  // Both compared, whatever the first gives, so the time taken does not tell which was wrong.
  const userOk = safeEqual(decoded.slice(0, colon), username);
  const passwordOk = safeEqual(decoded.slice(colon + 1), password);
  return userOk && passwordOk ? true : 'wrong username or password';
}

/** Whether the client offered jambonz's subprotocol (`Sec-WebSocket-Protocol: ws.jambonz.org`). */
export function offersSubprotocol(headers: RequestHeaders, protocol: string): boolean {
  const offered = headerValue(headers, 'sec-websocket-protocol') ?? '';
  return offered.split(',').some((p) => p.trim() === protocol);
}
