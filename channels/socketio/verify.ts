import { createHmac } from 'node:crypto';
import { safeEqual, verifyJwt as verifyToken, type JwtMethod, type JwtRequirements } from 'switchboard';

/**
 * Verifies a connect token with the host's JWT check (jose): the algorithm must be `method`, the signature must
 * verify, `exp` must be present and in the future, `nbf` (when present) must hold, and `aud`/`iss` and the session
 * claim must be there when required. Returns the payload, or the reason it is refused.
 */
export function verifyJwt(token: string, key: string, method: JwtMethod, now = Date.now(), required: Omit<JwtRequirements, 'expires'> = {}): Promise<Record<string, unknown> | string> {
  return verifyToken(token, key, method, now, { ...required, expires: true });
}

/**
 * The session ids the server hands out are `<sender id>.<signature>`: an HMAC-SHA256 (base64url) of the sender id and
 * the claim the session is bound to (the JWT's subject, or '' without `jwt_key`), keyed with the session secret.
 * Only the server can make one; the sender id alone (what the bot and the logs see) cannot resume a session.
 */
export function signSessionId(senderId: string, binding: string, secret: Uint8Array): string {
  return `${senderId}.${sessionSignature(senderId, binding, secret)}`;
}

/** The sender id of a session id this server signed for this binding, else undefined. Constant-time comparison. */
export function verifySessionId(sessionId: string, binding: string, secret: Uint8Array): string | undefined {
  const dot = sessionId.lastIndexOf('.');
  if (dot <= 0) return undefined;
  const senderId = sessionId.slice(0, dot);
  return safeEqual(sessionId.slice(dot + 1), sessionSignature(senderId, binding, secret)) ? senderId : undefined;
}

function sessionSignature(senderId: string, binding: string, secret: Uint8Array): string {
  // The binding is length-prefixed: no (binding, sender id) pair can be read as another.
  return createHmac('sha256', secret).update(`switchboard.socketio.session\u0000${binding.length}:${binding}\u0000${senderId}`).digest('base64url');
}
