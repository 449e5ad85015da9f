import { safeEqual } from 'switchboard';

/** Request headers as Node gives them: lower-case names, a repeated header as a list. */
export type Headers = Record<string, string | string[] | undefined>;

export const LIVECHAT_TOKEN_HEADER = 'x-rocketchat-livechat-token';

/**
 * Checks a delivery: an outgoing integration puts its token in the body's `token` field; an Omnichannel webhook sends
 * its secret token in `X-RocketChat-Livechat-Token`. Either must equal `webhook_token` (the header wins when both are
 * there). `true`, or the reason it failed (for the log, never the client).
 */
export function verifyToken(body: Record<string, unknown>, headers: Headers, secret: string | undefined): true | string {
  if (!secret) return 'no webhook_token configured';
  const value = headers[LIVECHAT_TOKEN_HEADER];
  const header = Array.isArray(value) ? value[0] : value;
  if (header !== undefined && header !== '') return safeEqual(header, secret) ? true : 'X-RocketChat-Livechat-Token does not match webhook_token';
  const token = body.token;
  if (typeof token !== 'string' || token === '') return 'missing "token" field (or X-RocketChat-Livechat-Token header)';
  return safeEqual(token, secret) ? true : '"token" does not match webhook_token';
}
