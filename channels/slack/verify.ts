import { verifyHmac, type RequestHeaders as Headers, headerValue as header } from 'switchboard';

/** Slack refuses nothing older than this itself; a request signed longer ago (or ahead) is treated as a replay. */
export const MAX_CLOCK_SKEW_SECONDS = 300;

/**
 * Slack's request signing: `X-Slack-Signature` is `v0=` + hex HMAC-SHA256(signing secret,
 * `v0:{X-Slack-Request-Timestamp}:{raw body bytes}`), and the timestamp must be within five minutes of now.
 * Returns true, or why the request is refused. Pure: never throws, `now` (ms) is injected.
 */
export function verifySlackRequest(raw: string | Buffer, headers: Headers, secret: string | undefined, now: number): true | string {
  if (!secret) return 'no signing secret configured';
  const signature = header(headers, 'x-slack-signature');
  const timestamp = header(headers, 'x-slack-request-timestamp');
  if (!signature) return 'missing X-Slack-Signature header';
  if (!timestamp) return 'missing X-Slack-Request-Timestamp header';
  if (!/^\d{1,12}$/.test(timestamp.trim())) return 'malformed X-Slack-Request-Timestamp header';
  const skew = Math.abs(now / 1000 - Number(timestamp.trim()));
  if (skew > MAX_CLOCK_SKEW_SECONDS) return `X-Slack-Request-Timestamp is ${Math.round(skew)} s away from now (replay?)`;
  // Over the bytes Slack sent: text would lose a byte order mark or bytes that are not UTF-8.
  const payload = Buffer.concat([Buffer.from(`v0:${timestamp.trim()}:`, 'utf8'), typeof raw === 'string' ? Buffer.from(raw, 'utf8') : raw]);
  const ok = verifyHmac({ algorithm: 'sha256', secret, payload, signature, prefix: 'v0=' });
  return ok ? true : 'X-Slack-Signature mismatch';
}
