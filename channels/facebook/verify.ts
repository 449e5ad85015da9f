import { checkEntryTimes, verifyHmac, verifyHubSignature, type RequestHeaders as Headers, headerValue as header } from 'switchboard';

/**
 * Checks a Messenger delivery's signature over the raw body: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256>` keyed
 * with the app secret. Meta still sends the older `X-Hub-Signature: sha1=<hex>` beside it; it is accepted only when
 * the 256 header is absent (a proxy that drops unknown headers), so a forged sha1 cannot rescue a bad sha256.
 * `true`, or the reason it failed (for the log, never the client).
 */
export function verifySignature(raw: string | Buffer, headers: Headers, secret: string | undefined): true | string {
  const sha1 = header(headers, 'x-hub-signature');
  if (!secret || sha1 === undefined || header(headers, 'x-hub-signature-256') !== undefined) return verifyHubSignature(raw, headers, secret);
  if (!sha1.startsWith('sha1=')) return 'X-Hub-Signature is not sha1=<hex>';
  return verifyHmac({ algorithm: 'sha1', secret, payload: raw, signature: sha1, prefix: 'sha1=' })
    ? true
    : 'X-Hub-Signature (sha1) does not match the body';
}

/**
 * Refuses a replayed delivery: each `entry[].time` (ms, covered by the signature) must lie within `windowSeconds`
 * before `now` (and not minutes ahead of it). Meta retries a failed delivery for up to 36 hours with the same body,
 * so the window must be at least that to keep retries. `true`, or the reason. Pure: `now` (ms) is injected. The
 * host's `checkEntryTimes`, shared with the Instagram channel.
 */
export function checkDeliveryTime(body: unknown, windowSeconds: number, now: number): true | string {
  return checkEntryTimes(body, windowSeconds, now);
}
