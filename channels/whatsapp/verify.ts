import { verifyHubSignature, withinReplayWindow, type RequestHeaders as Headers } from 'switchboard';

/**
 * Checks a WhatsApp Cloud API notification's signature over the raw body: Meta signs it as it signs Messenger's,
 * `X-Hub-Signature-256: sha256=<hex HMAC-SHA256>` keyed with the app secret. Unlike the Messenger channel, the older
 * sha1 header is never enough: WhatsApp notifications always carry the 256 one. `true`, or the reason it failed (for
 * the log, never the client).
 */
export function verifySignature(raw: string | Buffer, headers: Headers, secret: string | undefined): true | string {
  return verifyHubSignature(raw, headers, secret);
}

/** A message's `timestamp`: Unix seconds, as a string of digits (a number is taken too) → ms; else undefined. */
export function messageTimeMs(timestamp: unknown): number | undefined {
  if (typeof timestamp === 'number' && Number.isFinite(timestamp) && timestamp >= 0) return timestamp * 1000;
  if (typeof timestamp === 'string' && /^\d{1,12}$/.test(timestamp)) return Number(timestamp) * 1000;
  return undefined;
}

/**
 * Refuses a replayed message: its `timestamp` (covered by the signature) must lie within `windowSeconds` before
 * `now`. Meta retries an unanswered notification for days; a message older than the 24-hour customer service window
 * could not be answered anyway (the Cloud API refuses free-form answers past it). `true`, or the reason. Pure.
 */
export function checkMessageTime(timestamp: unknown, windowSeconds: number, now: number): true | string {
  const result = withinReplayWindow(messageTimeMs(timestamp), windowSeconds, now);
  return result === true ? true : `message timestamp: ${result}`;
}
