import { bearerToken, headerValue, hmac, safeEqual } from 'switchboard';

/** What the derived secret token is an HMAC of; changing it would invalidate every registered webhook. */
export const SECRET_TOKEN_LABEL = 'switchboard-telegram-secret-token';

/** Telegram's rule for `secret_token`: 1–256 characters of `A-Za-z0-9_-`. */
export const SECRET_TOKEN_PATTERN = /^[A-Za-z0-9_-]{1,256}$/;

/**
 * The secret token used when none is configured: hex HMAC-SHA256 of a fixed label keyed with the bot token. Stable
 * across restarts and instances, unguessable without the bot token, and 64 characters of Telegram's alphabet.
 */
export function deriveSecretToken(accessToken: string): string {
  return hmac('sha256', accessToken, SECRET_TOKEN_LABEL);
}

/**
 * Telegram stamps every webhook call with `X-Telegram-Bot-Api-Secret-Token` set to the token given to `setWebhook`.
 * True when the request carries exactly `expected`, else the reason (never throws).
 */
export function verifySecretToken(headers: Record<string, string | string[] | undefined>, expected: string): true | string {
  const given = headers['x-telegram-bot-api-secret-token'];
  if (given === undefined || given === '') return 'missing X-Telegram-Bot-Api-Secret-Token header';
  if (Array.isArray(given)) return 'several X-Telegram-Bot-Api-Secret-Token headers';
  if (expected === '') return 'no secret token to compare with';
  return safeEqual(given, expected) ? true : 'X-Telegram-Bot-Api-Secret-Token does not match';
}

/**
 * Checks a call to `/set_webhook`: it makes the server call Telegram with the bot token, so only someone who holds
 * the secret token may trigger it. The token comes in `X-Telegram-Bot-Api-Secret-Token` (the header Telegram itself
 * uses) or as `Authorization: Bearer <token>`; compared in constant time. `true`, or the reason (never throws).
 */
export function verifySetWebhookRequest(headers: Record<string, string | string[] | undefined>, expected: string): true | string {
  if (headers['x-telegram-bot-api-secret-token'] !== undefined) return verifySecretToken(headers, expected);
  if (!headerValue(headers, 'authorization')) return 'missing X-Telegram-Bot-Api-Secret-Token or Authorization header';
  const token = bearerToken(headers);
  if (token === undefined) return 'Authorization is not a Bearer token';
  if (expected === '') return 'no secret token to compare with';
  return safeEqual(token, expected) ? true : 'the Bearer token is not the secret token';
}
