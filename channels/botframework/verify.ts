import { errors, jwtVerify } from 'jose';
import { headerValue, type RequestHeaders as Headers } from 'switchboard';
import type { KeySource } from './auth.js';

/** Who signs the tokens of requests coming from the Bot Connector service. */
export const BOT_FRAMEWORK_ISSUER = 'https://api.botframework.com';

/** Bot Framework allows 5 minutes of clock skew on `exp` and `nbf`. */
export const CLOCK_TOLERANCE_S = 5 * 60;


export interface TokenCheck {
  /** `app_id`: the audience the token must be for. */
  appId: string;
  /** The activity the token came with, when its body parsed: its `serviceUrl` and `channelId` are checked. */
  activity?: { serviceUrl?: unknown; channelId?: unknown } | undefined;
  /** Injectable clock, for tests. */
  now?: Date;
}

function reasonOf(error: unknown): string {
  if (error instanceof errors.JWTExpired) return 'token expired';
  if (error instanceof errors.JWTClaimValidationFailed) return `token claim "${error.claim}" invalid: ${error.reason}`;
  if (error instanceof errors.JWKSNoMatchingKey) return 'token signed with a key the OpenID metadata does not list';
  if (error instanceof errors.JWSSignatureVerificationFailed) return 'token signature invalid';
  if (error instanceof errors.JOSEAlgNotAllowed) return 'token algorithm not allowed';
  if (error instanceof errors.JOSEError) return `token invalid: ${error.message}`;
  return `token could not be checked: ${(error as Error)?.message ?? String(error)}`;
}

/**
 * Checks the `Authorization: Bearer <jwt>` of a request from Bot Framework, as its connector SDKs do: RS256, signed
 * by a key of the OpenID metadata, issuer `https://api.botframework.com`, audience `app_id`, within its lifetime
 * (5 minutes of skew), its `serviceUrl` claim the activity's, and — when the key lists `endorsements` — the activity's
 * `channelId` among them. `true`, or the reason it failed (for the log, never the client). Never throws.
 */
export async function verifyToken(headers: Headers, keys: KeySource, check: TokenCheck): Promise<true | string> {
  const authorization = headerValue(headers, 'authorization');
  if (authorization === undefined || authorization === '') return 'missing Authorization header';
  const match = /^Bearer\s+(\S+)$/i.exec(authorization.trim());
  if (!match) return 'Authorization is not a Bearer token';
  let verified;
  try {
    verified = await jwtVerify(match[1]!, keys.getKey, {
      algorithms: ['RS256'],
      issuer: BOT_FRAMEWORK_ISSUER,
      audience: check.appId,
      clockTolerance: CLOCK_TOLERANCE_S,
      ...(check.now ? { currentDate: check.now } : {}),
    });
  } catch (error) {
    return reasonOf(error);
  }
  const activity = check.activity;
  if (activity) {
    const claim = verified.payload.serviceUrl;
    if (typeof claim !== 'string' || claim !== activity.serviceUrl) return 'the token\'s "serviceUrl" claim is not the activity\'s serviceUrl';
    // A key endorsed for some channels only may not vouch for others (an activity without channelId asserts none).
    const endorsements = keys.jwk(verified.protectedHeader.kid)?.endorsements;
    if (typeof activity.channelId === 'string' && activity.channelId !== '' && Array.isArray(endorsements) && !endorsements.includes(activity.channelId)) {
      return `the signing key is not endorsed for channel "${activity.channelId}"`;
    }
  }
  return true;
}
