import { bearerToken, headerValue, safeEqual, type RequestHeaders } from 'switchboard';

/**
 * VoiceAI Connect's check: every request carries the bot's shared token as `Authorization: Bearer <token>` (the
 * `token` set on the bot in VoiceAI Connect). Compared in constant time. `true`, or the reason (for the log, never
 * the client). Never throws.
 */
export function verifyToken(headers: RequestHeaders, token: string | undefined): true | string {
  if (!token) return 'no token configured';
  if (!headerValue(headers, 'authorization')) return 'missing Authorization header';
  const given = bearerToken(headers);
  if (given === undefined) return 'Authorization is not a Bearer token';
  return safeEqual(given, token) ? true : 'Bearer token does not match';
}
