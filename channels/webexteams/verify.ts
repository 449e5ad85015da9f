import { verifyHmac } from 'switchboard';

/** Request headers as Node gives them: lower-case names, a repeated header as a list. */
export type Headers = Record<string, string | string[] | undefined>;

/**
 * Checks a Webex webhook delivery: `X-Spark-Signature` is the hex HMAC-SHA1 of the raw body keyed with the `secret`
 * the webhook was registered with (Webex sends the header only when the webhook has a secret). `true`, or the reason
 * it failed (for the log, never the client).
 */
export function verifySignature(raw: string | Buffer, headers: Headers, secret: string | undefined): true | string {
  if (!secret) return 'no webhook_secret configured';
  const value = headers['x-spark-signature'];
  const signature = Array.isArray(value) ? value.join(', ') : value;
  if (signature === undefined || signature === '') return 'missing X-Spark-Signature header';
  return verifyHmac({ algorithm: 'sha1', secret, payload: raw, signature }) ? true : 'X-Spark-Signature does not match the body';
}
