import { createHmac, timingSafeEqual } from 'node:crypto';
import { errors, importSPKI, jwtVerify, type CryptoKey } from 'jose';

/** The algorithms a connect JWT may use (`jwt_method`), as PyJWT (Rasa) names them. */
export const JWT_METHODS = ['HS256', 'HS384', 'HS512', 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512'] as const;
export type JwtMethod = (typeof JWT_METHODS)[number];

/** What a connect token must carry besides a good signature: `exp` always; `aud`/`iss` when configured; the session claim. */
export interface JwtRequirements {
  audience?: string | undefined;
  issuer?: string | undefined;
  /** A claim that must be present as a non-empty string (the one the session is bound to). */
  claim?: string | undefined;
}

const keys = new Map<string, Promise<CryptoKey | Uint8Array>>();

/** The verification key: the shared secret for HS*, else a PEM (SPKI) public key; imported once. */
function keyFor(key: string, method: JwtMethod): Promise<CryptoKey | Uint8Array> {
  const id = `${method}\u0000${key}`;
  let imported = keys.get(id);
  if (!imported) {
    imported = method.startsWith('HS') ? Promise.resolve(new TextEncoder().encode(key)) : importSPKI(key, method);
    keys.set(id, imported);
  }
  return imported;
}

/**
 * Verifies a connect token: the algorithm must be `method`, the signature must verify, `exp` must be present and in
 * the future, `nbf` (when present) must hold, and `aud`/`iss` must match when required. Uses jose; returns the
 * payload, or the reason it is refused.
 */
export async function verifyJwt(token: string, key: string, method: JwtMethod, now = Date.now(), required: JwtRequirements = {}): Promise<Record<string, unknown> | string> {
  try {
    const { payload } = await jwtVerify(token, await keyFor(key, method), {
      algorithms: [method],
      currentDate: new Date(now),
      requiredClaims: ['exp'],
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

/**
 * The session ids the server hands out are `<sender id>.<signature>`: an HMAC-SHA256 (base64url) of the sender id and
 * the claim the session is bound to (the JWT's subject, or '' without `jwt_key`), keyed with the session secret.
 * Only the server can make one; the sender id alone (what the bot and the logs see) cannot resume a session.
 */
export function signSessionId(senderId: string, binding: string, secret: Uint8Array): string {
  return `${senderId}.${sessionSignature(senderId, binding, secret)}`;
}

/** The sender id of a session id this server signed for this binding, else undefined. Constant-time comparison. */
export function verifySessionId(sessionId: string, binding: string, secret: Uint8Array): string | undefined {
  const dot = sessionId.lastIndexOf('.');
  if (dot <= 0) return undefined;
  const senderId = sessionId.slice(0, dot);
  const given = Buffer.from(sessionId.slice(dot + 1), 'utf8');
  const expected = Buffer.from(sessionSignature(senderId, binding, secret), 'utf8');
  return given.length === expected.length && timingSafeEqual(given, expected) ? senderId : undefined;
}

function sessionSignature(senderId: string, binding: string, secret: Uint8Array): string {
  // The binding is length-prefixed: no (binding, sender id) pair can be read as another.
  return createHmac('sha256', secret).update(`switchboard.socketio.session\u0000${binding.length}:${binding}\u0000${senderId}`).digest('base64url');
}
