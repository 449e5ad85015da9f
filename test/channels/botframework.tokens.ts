/**
 * Tokens and keys as Bot Framework makes them, for every Bot Framework test (the channel's, the conformance case, the
 * cross-check against Microsoft's SDK). Written from what the Bot Connector sends, not from what our verifier reads:
 * a live token's header is `{alg, kid, typ}` and its claims are exactly `aud, exp, iss, nbf, serviceurl` — the service
 * URL claim all lower case (`AuthenticationConstants.ServiceUrlClaim` in Microsoft's SDKs), no `iat`, no `serviceUrl`.
 */
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { SignJWT, type JWK } from 'jose';

export const BOT_CONNECTOR_ISSUER = 'https://api.botframework.com';

/** An RSA key of Bot Framework's: the private half signs tokens with any RS algorithm, as Microsoft's keys do. */
export interface ConnectorKey {
  kid: string;
  privateKey: KeyObject;
  /** As `login.botframework.com/v1/.well-known/keys` lists it: `kty, use, kid, n, e, endorsements`, no `alg`. */
  jwk: JWK & { endorsements?: string[] };
}

/** A signing key; `endorsements` are the channel ids it may vouch for (`null`: the key lists none). */
export function connectorKey(kid: string, endorsements: string[] | null = ['msteams', 'webchat', 'directline', 'emulator']): ConnectorKey {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const { n, e } = publicKey.export({ format: 'jwk' });
  return { kid, privateKey, jwk: { kty: 'RSA', use: 'sig', kid, n, e, ...(endorsements === null ? {} : { endorsements }) } };
}

export interface ConnectorClaims {
  /** The bot's app id. */
  aud: string;
  /** The activity's `serviceUrl`; `undefined`: the claim is absent. */
  serviceurl: string | undefined;
  iss?: string;
  /** Seconds from now (default -300 and +3600, an hour-long token, as the Bot Connector's). */
  nbf?: number;
  exp?: number | undefined;
  /** Claims the Bot Connector does not send (the legacy `serviceUrl` spelling, `iat`...). */
  extra?: Record<string, unknown>;
}

export interface ConnectorHeader {
  alg?: 'RS256' | 'RS384' | 'RS512';
  /** The key id named in the header (default the signing key's); `undefined`: no `kid`. */
  kid?: string | undefined;
}

/** A token minted as the Bot Connector mints it. */
export async function connectorToken(key: ConnectorKey, claims: ConnectorClaims, header: ConnectorHeader = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const payload: Record<string, unknown> = {
    ...(claims.serviceurl === undefined ? {} : { serviceurl: claims.serviceurl }),
    nbf: now + (claims.nbf ?? -300),
    ...('exp' in claims && claims.exp === undefined ? {} : { exp: now + (claims.exp ?? 3600) }),
    iss: claims.iss ?? BOT_CONNECTOR_ISSUER,
    aud: claims.aud,
    ...claims.extra,
  };
  const kid = 'kid' in header ? header.kid : key.kid;
  return new SignJWT(payload).setProtectedHeader({ alg: header.alg ?? 'RS256', ...(kid === undefined ? {} : { kid }), typ: 'JWT' }).sign(key.privateKey);
}
