import { isObject, timestampMs, verifyHmac, withinReplayWindow, type RequestHeaders as Headers, headerValue } from 'switchboard';

/**
 * Checks a Webex webhook delivery: `X-Spark-Signature` is the hex HMAC-SHA1 of the raw body keyed with the `secret`
 * the webhook was registered with (Webex sends the header only when the webhook has a secret). `true`, or the reason
 * it failed (for the log, never the client).
 */
export function verifySignature(raw: string | Buffer, headers: Headers, secret: string | undefined): true | string {
  if (!secret) return 'no webhook_secret configured';
  const signature = headerValue(headers, 'x-spark-signature');
  if (signature === undefined || signature === '') return 'missing X-Spark-Signature header';
  return verifyHmac({ algorithm: 'sha1', secret, payload: raw, signature }) ? true : 'X-Spark-Signature does not match the body';
}

/**
 * Refuses a replayed notification: `data.created` (ISO 8601, covered by the signature) is when the message or card
 * submission was created, and must lie within `windowSeconds` before `now` (and not minutes ahead of it). The
 * envelope's own `created` is the webhook's registration date, not the event's, so it is not used. `true`, or the
 * reason. Pure: `now` (ms) is injected.
 */
export function checkNotificationTime(body: unknown, windowSeconds: number, now: number): true | string {
  const created = isObject(body) && isObject(body.data) ? timestampMs(body.data.created) : undefined;
  const result = withinReplayWindow(created, windowSeconds, now);
  return result === true ? true : `data.created: ${result}`;
}
