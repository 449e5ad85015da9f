/**
 * Twilio's webhook signature (`X-Twilio-Signature`), shared by every channel a Twilio product calls: messaging
 * (`twilio`) and voice (`twilio_voice`). Pure functions of the request, no I/O.
 */
import { createHash } from 'node:crypto';
import querystring from 'node:querystring';
import type { Context } from 'koa';
import { publicUrl } from './forwarded.js';
import { hmac, safeEqual, type RequestHeaders as Headers } from './signature.js';

/** The parts of an http(s) URL, split as text: `new URL()` would re-encode the path and query Twilio signed. */
function splitUrl(url: string): { scheme: string; userinfo: string; host: string; port: string; rest: string } | undefined {
  const match = /^(https?:\/\/)([^/?#]*)(.*)$/is.exec(url);
  if (!match) return undefined;
  const [, scheme = '', authority = '', rest = ''] = match;
  const at = authority.lastIndexOf('@');
  const hostPort = authority.slice(at + 1);
  // In an IPv6 literal (`[::1]:8080`) only a colon after the bracket starts the port.
  const colon = hostPort.indexOf(':', hostPort.lastIndexOf(']') + 1);
  return {
    scheme,
    userinfo: authority.slice(0, at + 1),
    host: colon === -1 ? hostPort : hostPort.slice(0, colon),
    port: colon === -1 ? '' : hostPort.slice(colon),
    rest,
  };
}

/** The URL without its port, and with one (the scheme's default added when it has none). */
function portForms(url: string): string[] {
  const parts = splitUrl(url);
  if (!parts) return [url];
  const { scheme, userinfo, host, port, rest } = parts;
  const withPort = port !== '' ? port : scheme.toLowerCase() === 'https://' ? ':443' : ':80';
  return [`${scheme}${userinfo}${host}${rest}`, `${scheme}${userinfo}${host}${withPort}${rest}`];
}

/** The query string decoded and encoded again as Node's legacy `querystring` does (`%27` ↔ `'`, spaces as `%20`). */
function legacyQuery(url: string): string {
  const start = url.indexOf('?');
  if (start === -1 || start === url.length - 1) return url;
  return `${url.slice(0, start)}?${querystring.stringify(querystring.parse(url.slice(start + 1)))}`;
}

/**
 * The URLs Twilio may have signed for a request to `url`: the ones twilio-node's `validateRequest` accepts. What Twilio
 * signs depends on how the URL was typed into the Console, so first the URL as received, without and with its port;
 * then the URL as a WHATWG parser normalises it (characters such as `'` or a space percent-encoded, the host
 * lower-cased), without and with its port, each also with its query re-encoded the legacy way. Credentials in the
 * URL (`https://user:pass@host/…`) are kept: Twilio signs them.
 */
export function twilioUrlVariants(url: string): string[] {
  const variants = portForms(url);
  let normalized: string | undefined;
  try {
    normalized = new URL(url).toString();
  } catch {
    // Not a URL a parser accepts: only the forms as received.
  }
  if (normalized !== undefined) {
    const forms = portForms(normalized);
    variants.push(...forms, ...forms.map(legacyQuery));
  }
  return [...new Set(variants)];
}

/**
 * The string Twilio signs: the URL, then each POST parameter's name and value, sorted by name. A name sent several
 * times contributes each distinct value, sorted (as Twilio's helper libraries do).
 */
export function twilioSignedPayload(url: string, params: Iterable<[string, string]>): string {
  const byName = new Map<string, Set<string>>();
  for (const [name, value] of params) {
    const values = byName.get(name) ?? new Set<string>();
    values.add(value);
    byName.set(name, values);
  }
  let payload = url;
  for (const name of [...byName.keys()].sort()) {
    for (const value of [...byName.get(name)!].sort()) payload += name + value;
  }
  return payload;
}

/** Twilio's names for its webhook signature algorithms, and the HMAC each one is. */
const ALGORITHMS: Record<string, 'sha1' | 'sha256'> = { HMAC_SHA1: 'sha1', HMAC_SHA256: 'sha256' };
export type TwilioSignatureAlgorithm = 'HMAC_SHA1' | 'HMAC_SHA256';

/**
 * `X-Twilio-Signature` for a request: base64 HMAC of `twilioSignedPayload`, keyed with the auth token (HMAC-SHA1), or with
 * a SharedKey secret and the algorithm its settings header names.
 */
export function computeTwilioSignature(key: string, url: string, params: Iterable<[string, string]> = [], algorithm: TwilioSignatureAlgorithm = 'HMAC_SHA1'): string {
  return hmac(ALGORITHMS[algorithm]!, key, twilioSignedPayload(url, params), 'base64');
}

/**
 * `X-Twilio-Webhooks-Signature-Settings: key=<SharedKey id>,algorithm=<HMAC_SHA1|HMAC_SHA256>`, sent by Twilio when
 * it signs with a SharedKey instead of the auth token. Parameters are read as twilio-node reads them (`name=value`
 * separated by commas, blanks trimmed, the first non-empty value counts); without `algorithm`, HMAC_SHA1.
 */
export function twilioSignatureSettings(header: string): { key: string | undefined; algorithm: string } {
  const found: Record<string, string> = {};
  for (const part of header.split(',')) {
    const separator = part.indexOf('=');
    if (separator === -1) continue;
    const name = part.slice(0, separator).trim();
    const value = part.slice(separator + 1).trim();
    if (value !== '' && !(name in found)) found[name] = value;
  }
  return { key: found.key, algorithm: found.algorithm ?? 'HMAC_SHA1' };
}

export interface TwilioSignedRequest {
  /** The URL Twilio called, as it signed it: `webhook_url`, or the request URL as received. */
  url: string;
  /** The request body as received: the bytes are what `bodySHA256` hashes. */
  raw: string | Buffer;
  /** True when the body is `application/x-www-form-urlencoded`: only then are its fields part of the signature. */
  form: boolean;
  headers: Headers;
}

/**
 * Checks `X-Twilio-Signature`. Without `X-Twilio-Webhooks-Signature-Settings` it is keyed with the auth token
 * (HMAC-SHA1); with it, with the secret of the SharedKey it names in `sharedKeys` (`webhook_signing_keys`), with the
 * algorithm it names: an unknown key id or algorithm is refused. For form posts (every messaging webhook) the fields
 * are signed with the URL. For other bodies Twilio adds `bodySHA256=<hex SHA-256 of the body>` to the URL and signs
 * the URL alone; the hash is then checked too, so the body cannot be swapped. `true`, or the reason it failed (for
 * the log, never the client; it names a key id, never a secret).
 */
export function verifyTwilioSignature(request: TwilioSignedRequest, authToken: string | undefined, sharedKeys: Readonly<Record<string, string>> = {}): true | string {
  const given = request.headers['x-twilio-signature'];
  const settingsHeader = request.headers['x-twilio-webhooks-signature-settings'];
  if (Array.isArray(settingsHeader)) return 'several X-Twilio-Webhooks-Signature-Settings headers';
  let key: string;
  let algorithm: TwilioSignatureAlgorithm = 'HMAC_SHA1';
  if (settingsHeader !== undefined && settingsHeader !== '') {
    const settings = twilioSignatureSettings(settingsHeader);
    const name = settings.algorithm.toUpperCase();
    if (!(name in ALGORITHMS)) return `unsupported signature algorithm ${JSON.stringify(settings.algorithm.slice(0, 40))}`;
    algorithm = name as TwilioSignatureAlgorithm;
    if (settings.key === undefined) return 'X-Twilio-Webhooks-Signature-Settings names no key';
    const secret = Object.hasOwn(sharedKeys, settings.key) ? sharedKeys[settings.key] : undefined;
    if (!secret) return `unknown SharedKey ${JSON.stringify(settings.key.slice(0, 80))} (not in webhook_signing_keys)`;
    key = secret;
  } else {
    if (!authToken) return 'no auth_token configured';
    key = authToken;
  }
  if (given === undefined || given === '') return 'missing X-Twilio-Signature header';
  if (Array.isArray(given)) return 'several X-Twilio-Signature headers';

  const query = request.url.includes('?') ? request.url.slice(request.url.indexOf('?') + 1) : '';
  const bodyHash = new URLSearchParams(query).get('bodySHA256');
  let params: Array<[string, string]> = [];
  if (bodyHash !== null) {
    const actual = createHash('sha256').update(request.raw).digest('hex');
    if (!safeEqual(bodyHash.toLowerCase(), actual)) return 'bodySHA256 in the URL does not match the body';
  } else if (request.form) {
    params = [...new URLSearchParams(typeof request.raw === 'string' ? request.raw : request.raw.toString('utf8'))];
  }
  for (const url of twilioUrlVariants(request.url)) {
    if (safeEqual(given, computeTwilioSignature(key, url, params, algorithm))) return true;
  }
  return `X-Twilio-Signature does not match (signed URL taken as ${request.url})`;
}

/**
 * The URL Twilio signed for a request: `webhookUrl` (the channel's `webhook_url`, when a proxy rewrote the URL) with
 * the request's query string when it has none of its own; else the URL as the client called it (the host's
 * `publicUrl`: `Forwarded:` or X-Forwarded-Proto and -Host only with `--trust-proxy`, else the connection and `Host`).
 */
export function twilioSignedUrl(ctx: Context, webhookUrl: string | undefined): string {
  if (webhookUrl === undefined) return publicUrl(ctx);
  return !webhookUrl.includes('?') && ctx.querystring !== '' ? `${webhookUrl}?${ctx.querystring}` : webhookUrl;
}
