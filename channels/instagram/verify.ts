import { checkEntryTimes, verifyHubSignature, type RequestHeaders as Headers } from 'switchboard';

/**
 * Checks an Instagram delivery's signature over the raw body: the Messenger Platform signs Instagram webhooks as it
 * signs Messenger's, `X-Hub-Signature-256: sha256=<hex HMAC-SHA256>` keyed with the app secret. The older sha1 header
 * is never enough on its own (Instagram webhooks always carry the 256 one). `true`, or the reason it failed (for the
 * log, never the client).
 */
export function verifySignature(raw: string | Buffer, headers: Headers, secret: string | undefined): true | string {
  return verifyHubSignature(raw, headers, secret);
}

/**
 * Refuses a replayed delivery: each `entry[].time` (ms, covered by the signature) must lie within `windowSeconds`
 * before `now` (and not minutes ahead of it). Meta retries a failed delivery for up to 36 hours with the same body.
 * `true`, or the reason. Pure: `now` (ms) is injected.
 */
export function checkDeliveryTime(body: unknown, windowSeconds: number, now: number): true | string {
  return checkEntryTimes(body, windowSeconds, now);
}
