import { hmac, safeEqual, verifyHmac, withinReplayWindow, type RequestHeaders as Headers, headerValue as header } from 'switchboard';

/**
 * Checks an outgoing-webhook delivery: Mattermost puts the hook's token in the body's `token` field (JSON or form);
 * it must equal `webhook_token`. `Authorization: Token <webhook_token>` is accepted too, for a proxy or relay that
 * moves it into a header. `true`, or the reason it failed (for the log, never the client).
 */
export function verifyWebhookToken(fields: Record<string, unknown>, headers: Headers, secret: string | undefined): true | string {
  if (!secret) return 'no webhook_token configured';
  const auth = header(headers, 'authorization');
  if (auth !== undefined && /^token\s+/i.test(auth)) {
    return safeEqual(auth.replace(/^token\s+/i, ''), secret) ? true : 'the Authorization token does not match webhook_token';
  }
  const token = fields.token;
  if (typeof token !== 'string' || token === '') return 'missing "token" field';
  return safeEqual(token, secret) ? true : '"token" does not match webhook_token';
}

/** What one button's signature covers. */
export interface SignedAction {
  /** The channel the post is in. */
  channelId: string;
  /** The post holding the button: a click names it (`post_id`), so a signature is good for this post only. */
  postId: string;
  /** When the button was signed, in seconds since the epoch (`context.iat`): buttons expire. */
  issuedAt: number;
  /** The payload the button sends back (`context.action`). */
  action: string;
}

/**
 * What a button's `context.sig` is: button clicks (interactive messages) carry no webhook token, so each button this
 * channel sends is signed with `webhook_token` over the channel and the post it is in, the time it was signed and the
 * payload it sends back. Ids (26 lower-case alphanumerics) and the time hold no ":", and the action comes last, so
 * the string is unambiguous.
 */
export function signAction(secret: string, signed: SignedAction): string {
  return hmac('sha256', secret, signedString(signed));
}

function signedString(signed: SignedAction): string {
  return `${signed.channelId}:${signed.postId}:${signed.issuedAt}:${signed.action}`;
}

export interface ClickCheck {
  /** `button_max_age`: seconds a signed button stays valid. */
  maxAgeSeconds: number;
  /** Now, in ms (injected: the check is pure). */
  now: number;
}

/**
 * Checks a click: `context.sig` must sign `context.action` and `context.iat` for the channel and the post the click
 * came from (`channel_id`, `post_id`), and `iat` must be at most `maxAgeSeconds` old (and not minutes ahead).
 * `true`, or the reason (for the log, never the client). Never throws.
 */
export function verifyClick(context: Record<string, unknown>, click: { channel_id?: unknown; post_id?: unknown }, secret: string | undefined, check: ClickCheck): true | string {
  if (!secret) return 'no webhook_token configured';
  const { action, sig, iat } = context;
  const { channel_id: channelId, post_id: postId } = click;
  if (typeof action !== 'string' || typeof channelId !== 'string') return 'a button click needs "context.action" and "channel_id"';
  if (typeof postId !== 'string' || postId === '') return 'a button click needs "post_id"';
  if (typeof sig !== 'string' || sig === '') return 'missing "context.sig": not a button this channel sent';
  // A number as sent; digits in a string are read too, should a proxy or plugin stringify the context's values.
  const issuedAt = typeof iat === 'string' && /^\d{1,15}$/.test(iat) ? Number(iat) : iat;
  if (typeof issuedAt !== 'number' || !Number.isSafeInteger(issuedAt) || issuedAt < 0) return 'missing "context.iat": not a button this channel signed';
  if (!verifyHmac({ algorithm: 'sha256', secret, payload: signedString({ channelId, postId, issuedAt, action }), signature: sig })) {
    return '"context.sig" does not match the action, time, post and channel';
  }
  const fresh = withinReplayWindow(issuedAt * 1000, check.maxAgeSeconds, check.now);
  return fresh === true ? true : `button expired: ${fresh}`;
}
