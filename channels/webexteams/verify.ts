import { verifyHmac, type RequestHeaders as Headers, headerValue } from 'switchboard';

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
