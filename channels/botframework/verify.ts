import { isObject, timestampMs, verifyPlatformToken, withinReplayWindow, type RequestHeaders as Headers } from 'switchboard';
import type { KeySource } from './auth.js';

/** Who signs the tokens of requests coming from the Bot Connector service. */
export const BOT_FRAMEWORK_ISSUER = 'https://api.botframework.com';

/** Bot Framework allows 5 minutes of clock skew on `exp` and `nbf`. */
export const CLOCK_TOLERANCE_S = 5 * 60;

/** The signing algorithms Microsoft's SDKs accept (`AuthenticationConstants.AllowedSigningAlgorithms`). */
export const SIGNING_ALGORITHMS = ['RS256', 'RS384', 'RS512'];

/**
 * The claim naming the service URL a token was minted for. The Bot Connector writes it all lower case
 * (`AuthenticationConstants.ServiceUrlClaim` in Microsoft's SDKs, which compare claim names case-sensitively).
 */
export const SERVICE_URL_CLAIM = 'serviceurl';

export interface TokenCheck {
  /** `app_id`: the audience the token must be for. */
  appId: string;
  /** The activity the token came with, when its body parsed: its `serviceUrl` and `channelId` are checked. */
  activity?: { serviceUrl?: unknown; channelId?: unknown } | undefined;
  /** Injectable clock, for tests. */
  now?: Date;
}

/**
 * Checks the `Authorization: Bearer <jwt>` of a request from Bot Framework, as its connector SDKs do: RS256, RS384 or
 * RS512, signed by the key its `kid` names in the OpenID metadata, issuer `https://api.botframework.com`, audience
 * `app_id`, within its lifetime (an `exp` is required; 5 minutes of skew), its `serviceurl` claim the activity's
 * `serviceUrl` (the spelling `serviceUrl` is accepted too), and — when the key lists `endorsements` — the activity's
 * `channelId` among them. `true`, or the reason it failed (for the log, never the client). Never throws.
 */
export async function verifyToken(headers: Headers, keys: KeySource, check: TokenCheck): Promise<true | string> {
  const verified = await verifyPlatformToken(headers, {
    getKey: keys.getKey,
    algorithms: SIGNING_ALGORITHMS,
    issuer: BOT_FRAMEWORK_ISSUER,
    audience: check.appId,
    // Bot Connector tokens live an hour; `exp` is required (as by the host's check).
    clockToleranceS: CLOCK_TOLERANCE_S,
    unlistedKey: 'the OpenID metadata does not list',
    now: check.now,
  });
  if (typeof verified === 'string') return verified;
  const activity = check.activity;
  if (activity) {
    const { payload } = verified;
    const claim = payload[SERVICE_URL_CLAIM] ?? payload.serviceUrl;
    if (typeof claim !== 'string' || claim !== activity.serviceUrl) return 'the token\'s "serviceurl" claim is not the activity\'s serviceUrl';
    // A key endorsed for some channels only may not vouch for others (an activity without channelId asserts none, and
    // a key with an empty list is not restricted: Microsoft's SDKs check only non-empty lists).
    const endorsements = keys.jwk(verified.protectedHeader.kid)?.endorsements;
    if (typeof activity.channelId === 'string' && activity.channelId !== '' && Array.isArray(endorsements) && endorsements.length > 0 && !endorsements.includes(activity.channelId)) {
      return `the signing key is not endorsed for channel "${activity.channelId}"`;
    }
  }
  return true;
}

/**
 * Refuses a replayed activity: its `timestamp` (ISO 8601, set by the channel when the user sent it) must lie within
 * `windowSeconds` before `now` (and not minutes ahead of it). The Bearer token does not sign the body, so this
 * bounds replays of whole captured requests, alongside the token's own `exp`. `true`, or the reason. Pure.
 */
export function checkActivityTime(activity: unknown, windowSeconds: number, now: number): true | string {
  const result = withinReplayWindow(isObject(activity) ? timestampMs(activity.timestamp) : undefined, windowSeconds, now);
  return result === true ? true : `activity timestamp: ${result}`;
}
