import { createRemoteJWKSet, type JWK, type JWTVerifyGetKey } from 'jose';
import type { HttpClient } from 'switchboard';

/** The scope of a token for the Bot Connector API (Azure Bot Service, all public channels). */
export const BOT_FRAMEWORK_SCOPE = 'https://api.botframework.com/.default';

/** A token is renewed this long before Microsoft says it expires (tokens live an hour; clocks drift). */
export const TOKEN_RENEW_MARGIN_MS = 5 * 60_000;

/** The OpenID metadata (and so the JWKS location) is read again after this long; the keys themselves follow jose. */
export const METADATA_MAX_AGE_MS = 24 * 60 * 60_000;

export interface TokenSettings {
  tokenUrl: string;
  appId: string;
  appPassword: string;
  /** Injectable clock, for tests. */
  now?: () => number;
}

/**
 * The bot's outgoing token: a client-credentials grant against `token_url`, shared by every answer of the channel and
 * renewed shortly before it expires. Concurrent answers wait for the same request; a failed one is not cached.
 */
export class TokenCache {
  private token: { value: string; renewAt: number } | undefined;
  private pending: Promise<string> | undefined;

  constructor(
    private readonly http: HttpClient,
    private readonly settings: TokenSettings,
  ) {}

  private now(): number {
    return (this.settings.now ?? Date.now)();
  }

  async get(): Promise<string> {
    if (this.token && this.now() < this.token.renewAt) return this.token.value;
    this.pending ??= this.fetch().finally(() => {
      this.pending = undefined;
    });
    return this.pending;
  }

  /** Forgets the token (the API refused it), so the next answer asks for a new one. */
  invalidate(): void {
    this.token = undefined;
  }

  private async fetch(): Promise<string> {
    const started = this.now();
    const response = await this.http.request(this.settings.tokenUrl, {
      method: 'POST',
      form: {
        grant_type: 'client_credentials',
        client_id: this.settings.appId,
        client_secret: this.settings.appPassword,
        scope: BOT_FRAMEWORK_SCOPE,
      },
      channel: 'botframework',
      // Asking for a token twice only gets a second token.
      idempotent: true,
    });
    const body = response.body !== null && typeof response.body === 'object' ? (response.body as Record<string, unknown>) : {};
    const value = body.access_token;
    if (typeof value !== 'string' || value === '') throw new Error(`the token endpoint answered without an "access_token"`);
    // Obtained at run time, so not among the credentials the client masks: added, so no log line can show it.
    this.http.addSecret(value);
    const lifetimeMs = Number(body.expires_in) * 1000;
    const usable = Number.isFinite(lifetimeMs) && lifetimeMs > 0 ? lifetimeMs : 0;
    // An hour-long token is renewed 5 minutes early; a short one halfway through.
    const margin = Math.min(TOKEN_RENEW_MARGIN_MS, usable / 2);
    this.token = { value, renewAt: started + usable - margin };
    return value;
  }
}

/**
 * The keys Bot Framework signs its requests with: the `jwks_uri` of the OpenID metadata document, through jose's
 * remote key set (cached, fetched again when a token names a key id it does not know, at most every 30 s). The
 * metadata itself is read once a day, and again after a failure.
 */
export class OpenIdKeys {
  private current: { keys: ReturnType<typeof createRemoteJWKSet>; loadedAt: number } | undefined;
  private pending: Promise<ReturnType<typeof createRemoteJWKSet>> | undefined;

  constructor(
    private readonly http: HttpClient,
    private readonly metadataUrl: string,
    private readonly options: OpenIdKeysOptions = {},
  ) {}

  private now(): number {
    return (this.options.now ?? Date.now)();
  }

  private async keySet(): Promise<ReturnType<typeof createRemoteJWKSet>> {
    if (this.current && this.now() - this.current.loadedAt < METADATA_MAX_AGE_MS) return this.current.keys;
    this.pending ??= this.load().finally(() => {
      this.pending = undefined;
    });
    return this.pending;
  }

  private async load(): Promise<ReturnType<typeof createRemoteJWKSet>> {
    const response = await this.http.get(this.metadataUrl, { channel: 'botframework', retries: 1 });
    const body = response.body !== null && typeof response.body === 'object' ? (response.body as Record<string, unknown>) : {};
    const jwksUri = body.jwks_uri;
    if (typeof jwksUri !== 'string' || jwksUri === '') throw new Error('the OpenID metadata has no "jwks_uri"');
    const { cooldownDuration, cacheMaxAge } = this.options;
    const keys = createRemoteJWKSet(new URL(jwksUri), { ...(cooldownDuration === undefined ? {} : { cooldownDuration }), ...(cacheMaxAge === undefined ? {} : { cacheMaxAge }) });
    this.current = { keys, loadedAt: this.now() };
    return keys;
  }

  /** What `verifyToken` needs: jose's key lookup, and the JWK a key id names (for its `endorsements`). */
  async source(): Promise<KeySource> {
    const keys = await this.keySet();
    return {
      getKey: keys,
      jwk: (kid) => keys.jwks()?.keys.find((key) => key.kid === kid),
    };
  }
}

export interface OpenIdKeysOptions {
  /** Injectable clock, for tests. */
  now?: () => number;
  /** jose's: the least time between two JWKS fetches (default 30 s). */
  cooldownDuration?: number;
  /** jose's: how long fetched keys are used before they are fetched again (default 10 minutes). */
  cacheMaxAge?: number;
}

export interface KeySource {
  getKey: JWTVerifyGetKey;
  /** The key with this id, as last fetched. */
  jwk(kid: string | undefined): (JWK & { endorsements?: unknown }) | undefined;
}
