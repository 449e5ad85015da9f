import { isObject, timestampMs, verifyHmac, withinReplayWindow, type RequestHeaders as Headers, headerValue as header } from 'switchboard';

/**
 * Checks a LINE webhook's signature over the raw body: `X-Line-Signature` is the base64 HMAC-SHA256 of the exact bytes
 * LINE sent, keyed with the channel secret. `true`, or the reason it failed (for the log, never the client).
 */
export function verifySignature(raw: string | Buffer, headers: Headers, secret: string | undefined): true | string {
  if (!secret) return 'no channel secret configured';
  const signature = header(headers, 'x-line-signature');
  if (signature === undefined || signature === '') return 'missing X-Line-Signature header';
  return verifyHmac({ algorithm: 'sha256', secret, payload: raw, signature, encoding: 'base64' })
    ? true
    : 'X-Line-Signature does not match the body';
}

/**
 * LINE signs no time in a header, but each event's `timestamp` (ms) is inside the signed body: an event older than
 * `windowSeconds` before `now` (or minutes ahead of it) is a replay of a captured delivery, or a redelivery too late to
 * be worth answering. `true`, or the reason. Pure: `now` (ms) is injected; `windowSeconds` 0 turns the check off.
 */
export function checkEventTime(event: unknown, windowSeconds: number, now: number): true | string {
  return withinReplayWindow(isObject(event) ? timestampMs(event.timestamp) : undefined, windowSeconds, now);
}
