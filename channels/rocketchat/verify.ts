import { safeEqual, type RequestHeaders as Headers, headerValue } from 'switchboard';

export const LIVECHAT_TOKEN_HEADER = 'x-rocketchat-livechat-token';

/**
 * Checks a delivery: an outgoing integration puts its token in the body's `token` field; an Omnichannel webhook sends
 * its secret token in `X-RocketChat-Livechat-Token`. Either must equal `webhook_token` (the header wins when both are
 * there). `true`, or the reason it failed (for the log, never the client).
 */
export function verifyToken(body: Record<string, unknown>, headers: Headers, secret: string | undefined): true | string {
  if (!secret) return 'no webhook_token configured';
  const header = headerValue(headers, LIVECHAT_TOKEN_HEADER);
  if (header !== undefined && header !== '') return safeEqual(header, secret) ? true : 'X-RocketChat-Livechat-Token does not match webhook_token';
  const token = body.token;
  if (typeof token !== 'string' || token === '') return 'missing "token" field (or X-RocketChat-Livechat-Token header)';
  return safeEqual(token, secret) ? true : '"token" does not match webhook_token';
}
