/**
 * JWT verification as Rasa does it (PyJWT `decode(token, key, algorithms=[method])`, what `--jwt-secret` and
 * `--jwt-method` configure), with jose: for the `rest` and `callback` channels and any channel that takes a JWT.
 */
import type { CryptoKey, JWTVerifyGetKey, JWTVerifyResult } from 'jose';
import { bearerToken, headerValue, type RequestHeaders } from './signature.js';

/** jose, loaded by the first token checked: a server that checks none (no JWT keys configured) does not load it. */
let loaded: Promise<typeof import('jose')> | undefined;
const jose = (): Promise<typeof import('jose')> => (loaded ??= import('jose'));

/** The algorithms a JWT may be checked with (`jwt_method`), as PyJWT (Rasa) names them. */
export const JWT_METHODS = ['HS256', 'HS384', 'HS512', 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512'] as const;
export type JwtMethod = (typeof JWT_METHODS)[number];

const keys = new Map<string, Promise<CryptoKey | Uint8Array>>();

/** The verification key: the shared secret for HS*, else a PEM (SPKI) public key; imported once. */
function keyFor(key: string, method: JwtMethod): Promise<CryptoKey | Uint8Array> {
  const id = `${method}\u0000${key}`;
  let imported = keys.get(id);
  if (!imported) {
    imported = method.startsWith('HS') ? Promise.resolve(new TextEncoder().encode(key)) : jose().then(({ importSPKI }) => importSPKI(key, method));
    // A key that cannot be imported is not cached, so the reason is given each time rather than a rejected promise kept.
    imported.catch(() => keys.delete(id));
    keys.set(id, imported);
  }
  return imported;
}

/** What a token must carry besides a good signature and valid times. */
export interface JwtRequirements {
  /** `exp` must be present (a token that never expires is refused). */
  expires?: boolean | undefined;
  /** `aud` must be (or include) this value. */
  audience?: string | undefined;
  /** `iss` must be this value. */
  issuer?: string | undefined;
  /** A claim that must be present as a non-empty string (one a session is bound to). */
  claim?: string | undefined;
}

/**
 * Verifies `token`: the algorithm must be `method`, the signature must verify, and `exp`/`nbf`, when present, must
 * hold; `required` adds claims that must be present or match. Returns the payload, or the reason it is refused
 * (never the token or the key).
 */
export async function verifyJwt(
  token: string,
  key: string,
  method: JwtMethod,
  now = Date.now(),
  required: JwtRequirements = {},
): Promise<Record<string, unknown> | string> {
  const { errors, jwtVerify } = await jose();
  try {
    const { payload } = await jwtVerify(token, await keyFor(key, method), {
      algorithms: [method],
      currentDate: new Date(now),
      ...(required.expires ? { requiredClaims: ['exp'] } : {}),
      ...(required.audience !== undefined ? { audience: required.audience } : {}),
      ...(required.issuer !== undefined ? { issuer: required.issuer } : {}),
    });
    if (required.claim !== undefined) {
      const value = (payload as Record<string, unknown>)[required.claim];
      if (typeof value !== 'string' || value === '') return `claim ${required.claim} missing`;
    }
    return payload as Record<string, unknown>;
  } catch (error) {
    if (error instanceof errors.JWTExpired) return 'token expired';
    if (error instanceof errors.JWTClaimValidationFailed) {
      if (error.claim === 'nbf') return 'token not yet valid';
      return error.reason === 'missing' ? `claim ${error.claim} missing` : `claim ${error.claim} not valid`;
    }
    if (error instanceof errors.JOSEAlgNotAllowed) return `algorithm not allowed (expected ${method})`;
    if (error instanceof errors.JWSSignatureVerificationFailed) return 'bad signature';
    if (error instanceof errors.JWSInvalid || error instanceof errors.JWTInvalid) return 'malformed JWT';
    return 'token could not be verified';
  }
}

/** How a platform's signed bearer token must look (Bot Framework's connector tokens, Google Chat's). */
export interface PlatformTokenCheck {
  /** Where the signing keys come from (a JWKS or certificates the platform publishes, cached by the channel). */
  getKey: JWTVerifyGetKey;
  algorithms: string[];
  issuer: string;
  audience: string;
  /** Seconds of clock skew allowed on `exp` and `nbf`. */
  clockToleranceS: number;
  /** The reason given when a token names a key the platform does not publish (`token signed with a key <this>`). */
  unlistedKey: string;
  /** Injectable clock, for tests. */
  now?: Date | undefined;
}

/**
 * Checks the `Authorization: Bearer <jwt>` of a platform's request: a `kid` in the header (without one jose would try
 * any key), one of `algorithms`, signed by the key `getKey` gives for it, `issuer`, `audience`, within its lifetime
 * with an `exp` required (a token without one would be good forever once captured). The verified token, or the reason
 * it is refused (for the log, never the client). Never throws.
 */
export async function verifyPlatformToken(headers: RequestHeaders, check: PlatformTokenCheck): Promise<JWTVerifyResult | string> {
  if (!headerValue(headers, 'authorization')) return 'missing Authorization header';
  const token = bearerToken(headers);
  if (token === undefined) return 'Authorization is not a Bearer token';
  const { decodeProtectedHeader, errors, jwtVerify } = await jose();
  let kid: unknown;
  try {
    kid = decodeProtectedHeader(token).kid;
  } catch {
    return 'token invalid: Invalid Compact JWS';
  }
  if (typeof kid !== 'string' || kid === '') return 'token names no signing key ("kid")';
  try {
    return await jwtVerify(token, check.getKey, {
      algorithms: check.algorithms,
      issuer: check.issuer,
      audience: check.audience,
      clockTolerance: check.clockToleranceS,
      requiredClaims: ['exp'],
      ...(check.now ? { currentDate: check.now } : {}),
    });
  } catch (error) {
    if (error instanceof errors.JWTExpired) return 'token expired';
    if (error instanceof errors.JWTClaimValidationFailed) return `token claim "${error.claim}" invalid: ${error.reason}`;
    if (error instanceof errors.JWKSNoMatchingKey) return `token signed with a key ${check.unlistedKey}`;
    if (error instanceof errors.JWSSignatureVerificationFailed) return 'token signature invalid';
    if (error instanceof errors.JOSEAlgNotAllowed) return 'token algorithm not allowed';
    if (error instanceof errors.JOSEError) return `token invalid: ${error.message}`;
    return `token could not be checked: ${(error as Error)?.message ?? String(error)}`;
  }
}
