/**
 * Keys, certificates and tokens as Google Chat makes them, for every Google Chat test. Google publishes the keys of
 * chat@system.gserviceaccount.com as a JSON object of key id → PEM X.509 certificate
 * (`https://www.googleapis.com/service_accounts/v1/metadata/x509/chat@system.gserviceaccount.com`); a token's header
 * is `{alg: "RS256", kid, typ: "JWT"}` and its claims `iss` (the service account), `aud` (the project number), `iat`
 * and `exp` (an hour later). Node makes keys but not certificates, so a minimal self-signed one is encoded here (DER).
 */
import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { SignJWT } from 'jose';

export const CHAT_ISSUER = 'chat@system.gserviceaccount.com';

export interface ChatKey {
  kid: string;
  privateKey: KeyObject;
  /** The PEM certificate Google lists for this key id. */
  certificate: string;
}

// --- DER, just enough for a certificate

function length(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let rest = n; rest > 0; rest >>= 8) bytes.unshift(rest & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}
const tlv = (tag: number, ...content: Buffer[]) => {
  const body = Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), length(body.length), body]);
};
const sequence = (...content: Buffer[]) => tlv(0x30, ...content);
const set = (...content: Buffer[]) => tlv(0x31, ...content);
const integer = (value: number) => tlv(0x02, Buffer.from([value]));
const nullValue = () => Buffer.from([0x05, 0x00]);
const utf8 = (text: string) => tlv(0x0c, Buffer.from(text, 'utf8'));
const utcTime = (date: Date) => tlv(0x17, Buffer.from(date.toISOString().replace(/[-:T]/g, '').slice(2, 14) + 'Z', 'ascii'));
const bitString = (bytes: Buffer) => tlv(0x03, Buffer.from([0]), bytes);
function oid(dotted: string): Buffer {
  const [a, b, ...rest] = dotted.split('.').map(Number);
  const bytes = [a! * 40 + b!];
  for (const part of rest) {
    const chunk: number[] = [];
    let value = part;
    do {
      chunk.unshift(value & 0x7f);
      value >>= 7;
    } while (value > 0);
    for (let i = 0; i < chunk.length - 1; i++) chunk[i]! |= 0x80;
    bytes.push(...chunk);
  }
  return tlv(0x06, Buffer.from(bytes));
}

/** A self-signed X.509 v3 certificate of `publicKey`, issued to `CN=<commonName>`, signed SHA256withRSA. */
export function selfSignedCertificate(publicKey: KeyObject, privateKey: KeyObject, commonName = CHAT_ISSUER): string {
  const algorithm = sequence(oid('1.2.840.113549.1.1.11'), nullValue());
  const name = sequence(set(sequence(oid('2.5.4.3'), utf8(commonName))));
  const now = Date.now();
  const tbs = sequence(
    tlv(0xa0, integer(2)),
    integer(1),
    algorithm,
    name,
    sequence(utcTime(new Date(now - 86_400_000)), utcTime(new Date(now + 14 * 86_400_000))),
    name,
    publicKey.export({ type: 'spki', format: 'der' }),
  );
  const der = sequence(tbs, algorithm, bitString(sign('sha256', tbs, privateKey)));
  const base64 = der.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return `-----BEGIN CERTIFICATE-----\n${base64}\n-----END CERTIFICATE-----\n`;
}

/** One of Google's signing keys, with its certificate. */
export function chatKey(kid: string): ChatKey {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { kid, privateKey, certificate: selfSignedCertificate(publicKey, privateKey) };
}

/** What the certificates endpoint answers: key id → PEM certificate. */
export function certificates(...keys: ChatKey[]): Record<string, string> {
  return Object.fromEntries(keys.map((key) => [key.kid, key.certificate]));
}

export interface ChatClaims {
  /** The project number. */
  aud: string;
  iss?: string;
  /** Seconds from now (default 0 and +3600: an hour-long token). */
  iat?: number;
  exp?: number | undefined;
  extra?: Record<string, unknown>;
}

/** A token as Google Chat sends it. `kid` undefined: the header names no key; `alg` for refused algorithms. */
export async function chatToken(key: ChatKey, claims: ChatClaims, header: { kid?: string | undefined; alg?: 'RS256' | 'RS384' | 'PS256' } = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const payload: Record<string, unknown> = {
    aud: claims.aud,
    iss: claims.iss ?? CHAT_ISSUER,
    iat: now + (claims.iat ?? 0),
    ...('exp' in claims && claims.exp === undefined ? {} : { exp: now + (claims.exp ?? 3600) }),
    ...claims.extra,
  };
  const kid = 'kid' in header ? header.kid : key.kid;
  return new SignJWT(payload).setProtectedHeader({ alg: header.alg ?? 'RS256', ...(kid === undefined ? {} : { kid }), typ: 'JWT' }).sign(key.privateKey);
}
