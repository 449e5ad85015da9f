import { createHash } from 'node:crypto';
import { hmac, safeEqual, type RequestHeaders as Headers } from 'switchboard';

const DEFAULT_PORTS: Record<string, string> = { 'http:': '80', 'https:': '443' };

/**
 * The URL as Twilio may have signed it. What Twilio signs depends on how the URL was typed into the Console, so its
 * own validators accept the URL as given, without its port, and with its port (the scheme's default added when it
 * has none); so do we. Edited as text, never through `new URL()`, which would re-encode the path and query that
 * Twilio signed byte for byte. Credentials in the URL (`https://user:pass@host/…`) are kept: Twilio signs them.
 */
export function urlVariants(url: string): string[] {
  const match = /^(https?:)\/\/([^/?#@]*@)?(\[[^\]]*\]|[^/?#:]*)(?::(\d*))?(.*)$/i.exec(url);
  if (!match) return [url];
  const [, scheme = '', userinfo = '', host = '', port, rest = ''] = match;
  const fallback = DEFAULT_PORTS[scheme.toLowerCase()];
  if (fallback === undefined) return [url];
  const base = `${scheme}//${userinfo}${host}`;
  const variants = [url, `${base}${rest}`, `${base}:${port || fallback}${rest}`];
  return [...new Set(variants)];
}

/**
 * The string Twilio signs: the URL, then each POST parameter's name and value, sorted by name. A name sent several
 * times contributes each distinct value, sorted (as Twilio's helper libraries do).
 */
export function signedPayload(url: string, params: Iterable<[string, string]>): string {
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

/** `X-Twilio-Signature` for a request: base64 HMAC-SHA1 of `signedPayload` keyed with the auth token. */
export function computeSignature(authToken: string, url: string, params: Iterable<[string, string]> = []): string {
  return hmac('sha1', authToken, signedPayload(url, params), 'base64');
}

export interface SignedRequest {
  /** The URL Twilio called, as it signed it: `webhook_url`, or the request URL as received. */
  url: string;
  /** The raw request body. */
  raw: string;
  /** True when the body is `application/x-www-form-urlencoded`: only then are its fields part of the signature. */
  form: boolean;
  headers: Headers;
}

/**
 * Checks `X-Twilio-Signature`. For form posts (every messaging webhook) the fields are signed with the URL. For
 * other bodies Twilio adds `bodySHA256=<hex SHA-256 of the body>` to the URL and signs the URL alone; the hash is
 * then checked too, so the body cannot be swapped. `true`, or the reason it failed (for the log, never the client).
 */
export function verifySignature(request: SignedRequest, authToken: string | undefined): true | string {
  if (!authToken) return 'no auth_token configured';
  const given = request.headers['x-twilio-signature'];
  if (given === undefined || given === '') return 'missing X-Twilio-Signature header';
  if (Array.isArray(given)) return 'several X-Twilio-Signature headers';

  const query = request.url.includes('?') ? request.url.slice(request.url.indexOf('?') + 1) : '';
  const bodyHash = new URLSearchParams(query).get('bodySHA256');
  let params: Array<[string, string]> = [];
  if (bodyHash !== null) {
    const actual = createHash('sha256').update(request.raw).digest('hex');
    if (!safeEqual(bodyHash.toLowerCase(), actual)) return 'bodySHA256 in the URL does not match the body';
  } else if (request.form) {
    params = [...new URLSearchParams(request.raw)];
  }
  for (const url of urlVariants(request.url)) {
    if (safeEqual(given, computeSignature(authToken, url, params))) return true;
  }
  return `X-Twilio-Signature does not match (signed URL taken as ${request.url})`;
}
