import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import { headerValue as header, withinReplayWindow, type RequestHeaders as Headers } from 'switchboard';

/**
 * How far a request's `X-Signature-Timestamp` may be from now. Discord answers within seconds and never redelivers an
 * interaction (it gives up after 3 s), so five minutes only covers clock drift; an older signed request is a replay.
 */
export const MAX_CLOCK_SKEW_SECONDS = 300;

/** An application's public key as the Developer Portal shows it: 32 bytes as 64 hex digits. */
export const PUBLIC_KEY_PATTERN = /^[0-9a-fA-F]{64}$/;

/** The DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410): what node:crypto needs around the raw 32 bytes. */
const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

/** The application's public key (hex) as a key node:crypto verifies with; undefined when it is not 64 hex digits. */
export function publicKeyFromHex(hex: string): KeyObject | undefined {
  if (!PUBLIC_KEY_PATTERN.test(hex)) return undefined;
  try {
    return createPublicKey({ key: Buffer.concat([ED25519_SPKI_PREFIX, Buffer.from(hex, 'hex')]), format: 'der', type: 'spki' });
  } catch {
    return undefined;
  }
}

/**
 * Discord's request signing for interactions over HTTP: `X-Signature-Ed25519` is the hex Ed25519 signature, by the
 * application's key pair, of `X-Signature-Timestamp` followed by the raw body bytes; the timestamp (Unix seconds) must
 * lie within five minutes of `now`. Returns true, or why the request is refused (for the log, never the client).
 * Pure: never throws, `now` (ms) is injected.
 */
export function verifyDiscordRequest(raw: string | Buffer, headers: Headers, publicKey: KeyObject | undefined, now: number): true | string {
  if (!publicKey) return 'no public key configured';
  const signature = header(headers, 'x-signature-ed25519')?.trim();
  const timestamp = header(headers, 'x-signature-timestamp')?.trim();
  if (!signature) return 'missing X-Signature-Ed25519 header';
  if (!timestamp) return 'missing X-Signature-Timestamp header';
  if (!/^\d{1,12}$/.test(timestamp)) return 'malformed X-Signature-Timestamp header';
  // An Ed25519 signature is 64 bytes: anything else is not worth verifying.
  if (!/^[0-9a-fA-F]{128}$/.test(signature)) return 'malformed X-Signature-Ed25519 header';
  const fresh = withinReplayWindow(Number(timestamp) * 1000, MAX_CLOCK_SKEW_SECONDS, now, MAX_CLOCK_SKEW_SECONDS);
  if (fresh !== true) return `X-Signature-Timestamp: ${fresh}`;
  // Over the bytes Discord sent: text would lose a byte order mark or bytes that are not UTF-8.
  const payload = Buffer.concat([Buffer.from(timestamp, 'utf8'), typeof raw === 'string' ? Buffer.from(raw, 'utf8') : raw]);
  try {
    return verify(null, payload, publicKey, Buffer.from(signature, 'hex')) ? true : 'X-Signature-Ed25519 does not match the timestamp and body';
  } catch {
    return 'X-Signature-Ed25519 could not be checked';
  }
}
