import { errors, importX509, type CryptoKey, type JWTVerifyGetKey } from 'jose';
import type { HttpClient, Logger } from 'switchboard';

/** The service account Google Chat signs its requests as: the tokens' issuer, and whose certificates are fetched. */
export const CHAT_ISSUER = 'chat@system.gserviceaccount.com';

/** Where Google publishes that account's certificates, below `api_url`. */
export const CERTS_PATH = `/service_accounts/v1/metadata/x509/${CHAT_ISSUER}`;

/** Certificates are kept as long as Google's `Cache-Control: max-age` says, within these bounds. */
export const MIN_MAX_AGE_MS = 60_000;
export const MAX_MAX_AGE_MS = 24 * 60 * 60_000;
/** When Google's answer says nothing about caching. */
export const DEFAULT_MAX_AGE_MS = 60 * 60_000;
/** A token naming an unknown key fetches the certificates again, but not more often than this. */
export const REFETCH_COOLDOWN_MS = 30_000;

export interface ChatCertsOptions {
  /** Injectable clock, for tests. */
  now?: () => number;
  logger?: Logger;
}

/** `max-age` of a `Cache-Control` header, in ms, within the bounds above; undefined when absent. */
export function maxAgeMs(cacheControl: string | undefined): number | undefined {
  const match = /(?:^|,)\s*max-age\s*=\s*"?(\d+)"?/i.exec(cacheControl ?? '');
  if (!match) return undefined;
  return Math.min(MAX_MAX_AGE_MS, Math.max(MIN_MAX_AGE_MS, Number(match[1]) * 1000));
}

/**
 * Google Chat's signing keys: the JSON map of key id → PEM certificate Google publishes for
 * `chat@system.gserviceaccount.com`, fetched through the host's client (retried on 429 and 5xx, not on other 4xx),
 * kept for the answer's `Cache-Control: max-age`, and fetched again — at most every 30 s — when a token names a key
 * id it does not hold (Google rotates its keys). Concurrent requests share one fetch. A failed fetch keeps the keys
 * already held; without any, verification fails (401).
 */
export class ChatCerts {
  private keys: Map<string, CryptoKey> | undefined;
  private expiresAt = 0;
  private fetchedAt = Number.NEGATIVE_INFINITY;
  private pending: Promise<void> | undefined;

  constructor(
    private readonly http: HttpClient,
    readonly url: string,
    private readonly options: ChatCertsOptions = {},
  ) {}

  private now(): number {
    return (this.options.now ?? Date.now)();
  }

  /** The key a token's `kid` names, or undefined when Google does not list it. */
  async key(kid: string): Promise<CryptoKey | undefined> {
    if (!this.keys || this.now() >= this.expiresAt) await this.refresh();
    let key = this.keys?.get(kid);
    if (!key && this.now() - this.fetchedAt >= REFETCH_COOLDOWN_MS) {
      await this.refresh();
      key = this.keys?.get(kid);
    }
    return key;
  }

  /** jose's key lookup: the key the token's header names. */
  readonly getKey: JWTVerifyGetKey = async (header) => {
    const key = typeof header.kid === 'string' ? await this.key(header.kid) : undefined;
    if (!key) throw new errors.JWKSNoMatchingKey();
    return key;
  };

  private refresh(): Promise<void> {
    this.pending ??= this.load().finally(() => {
      this.pending = undefined;
    });
    return this.pending;
  }

  private async load(): Promise<void> {
    this.fetchedAt = this.now();
    try {
      const response = await this.http.get(this.url, { channel: 'hangouts' });
      const body = response.body;
      if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new Error('the certificates are not a JSON object of key id → certificate');
      const keys = new Map<string, CryptoKey>();
      for (const [kid, pem] of Object.entries(body as Record<string, unknown>)) {
        if (typeof pem !== 'string') continue;
        try {
          keys.set(kid, await importX509(pem, 'RS256'));
        } catch {
          this.options.logger?.warn({ kid }, 'google chat certificate could not be read; skipped');
        }
      }
      if (keys.size === 0) throw new Error('the certificates hold no usable key');
      this.keys = keys;
      this.expiresAt = this.fetchedAt + (maxAgeMs(response.headers.get('cache-control')) ?? DEFAULT_MAX_AGE_MS);
    } catch (error) {
      if (!this.keys) throw error;
      // Google's keys overlap for days: the ones held stay good while the endpoint recovers; tried again shortly.
      this.expiresAt = this.fetchedAt + REFETCH_COOLDOWN_MS;
      this.options.logger?.warn({ err: error }, 'google chat certificates could not be fetched again; keeping the ones held');
    }
  }
}
