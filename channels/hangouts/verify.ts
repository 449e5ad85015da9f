import type { JWTVerifyGetKey } from 'jose';
import { verifyPlatformToken, type RequestHeaders as Headers } from 'switchboard';
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

/**
 * Checks the `Authorization: Bearer <jwt>` Google Chat sends with every event (an app whose authentication audience is
 * the project number): RS256, signed by the certificate its `kid` names, issuer `chat@system.gserviceaccount.com`,
 * audience the project number, within its lifetime (`exp` required; 5 minutes of skew). The token does not cover the
 * body: its lifetime is what bounds a replayed request. `true`, or the reason (for the log, never the client). Never
 * throws.
 */
export async function verifyToken(headers: Headers, getKey: JWTVerifyGetKey, check: TokenCheck): Promise<true | string> {
  const verified = await verifyPlatformToken(headers, {
    getKey,
    algorithms: SIGNING_ALGORITHMS,
    issuer: CHAT_ISSUER,
    audience: check.projectId,
    clockToleranceS: CLOCK_TOLERANCE_S,
    unlistedKey: "Google's certificates do not list",
    now: check.now,
  });
  return typeof verified === 'string' ? verified : true;
}
