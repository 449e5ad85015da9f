import { verifyHmac } from 'switchboard';

/**
 * Echo SMS signs each webhook: `X-EchoSMS-Signature: sha256=<hex HMAC-SHA256 of the raw body, keyed with the
 * webhook secret>`. Pure: true, or why not.
 */
export function verifyEchoSignature(rawBody: string, signature: string | undefined, secret: string): true | string {
  if (!signature) return 'missing X-EchoSMS-Signature header';
  return verifyHmac({ algorithm: 'sha256', secret, payload: rawBody, signature, prefix: 'sha256=' }) ? true : 'signature mismatch';
}
