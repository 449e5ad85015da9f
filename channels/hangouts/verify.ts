import { decodeProtectedHeader, errors, jwtVerify, type JWTVerifyGetKey } from 'jose';
import { bearerToken, headerValue, type RequestHeaders as Headers } from 'switchboard';
import { CHAT_ISSUER } from './certs.js';

/** Google signs Chat's tokens with RS256 only. */
export const SIGNING_ALGORITHMS = ['RS256'];

/** Clock skew allowed on `exp`, `iat` and `nbf`, as Google's own client libraries allow. */
export const CLOCK_TOLERANCE_S = 5 * 60;

export interface TokenCheck {
  /** `project_id`: the Cloud project number, the audience of the tokens. */
  projectId: string;
  /** Injectable clock, for tests. */
  now?: Date;
}

function reasonOf(error: unknown): string {
  if (error instanceof errors.JWTExpired) return 'token expired';
  if (error instanceof errors.JWTClaimValidationFailed) return `token claim "${error.claim}" invalid: ${error.reason}`;
  if (error instanceof errors.JWKSNoMatchingKey) return "token signed with a key Google's certificates do not list";
  if (error instanceof errors.JWSSignatureVerificationFailed) return 'token signature invalid';
  if (error instanceof errors.JOSEAlgNotAllowed) return 'token algorithm not allowed';
  if (error instanceof errors.JOSEError) return `token invalid: ${error.message}`;
  return `token could not be checked: ${(error as Error)?.message ?? String(error)}`;
}

/**
 * Checks the `Authorization: Bearer <jwt>` Google Chat sends with every event (an app whose authentication audience is
 * the project number): RS256, signed by the certificate its `kid` names, issuer `chat@system.gserviceaccount.com`,
 * audience the project number, within its lifetime (`exp` required; 5 minutes of skew). The token does not cover the
 * body: its lifetime is what bounds a replayed request. `true`, or the reason (for the log, never the client). Never
 * throws.
 */
export async function verifyToken(headers: Headers, getKey: JWTVerifyGetKey, check: TokenCheck): Promise<true | string> {
  if (!headerValue(headers, 'authorization')) return 'missing Authorization header';
  const token = bearerToken(headers);
  if (token === undefined) return 'Authorization is not a Bearer token';
  let kid: unknown;
  try {
    kid = decodeProtectedHeader(token).kid;
  } catch {
    return 'token invalid: Invalid Compact JWS';
  }
  if (typeof kid !== 'string' || kid === '') return 'token names no signing key ("kid")';
  try {
    await jwtVerify(token, getKey, {
      algorithms: SIGNING_ALGORITHMS,
      issuer: CHAT_ISSUER,
      audience: check.projectId,
      clockTolerance: CLOCK_TOLERANCE_S,
      requiredClaims: ['exp'],
      ...(check.now ? { currentDate: check.now } : {}),
    });
  } catch (error) {
    return reasonOf(error);
  }
  return true;
}
