import { hmac, safeEqual, type RequestHeaders as Headers, headerValue as header } from 'switchboard';

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

/**
 * What a button's `context.sig` is: button clicks (interactive messages) carry no webhook token, so each button this
 * channel sends is signed with `webhook_token` over the channel it was posted to and the payload it sends back. The
 * channel id (26 lower-case alphanumerics) holds no ":", so the pair is unambiguous.
 */
export function signAction(secret: string, channelId: string, action: string): string {
  return hmac('sha256', secret, `${channelId}:${action}`);
}

/** Checks a click's `context`: `sig` must sign `action` for the channel the click came from. */
export function verifyClick(context: Record<string, unknown>, channelId: unknown, secret: string | undefined): true | string {
  if (!secret) return 'no webhook_token configured';
  const { action, sig } = context;
  if (typeof action !== 'string' || typeof channelId !== 'string') return 'a button click needs "context.action" and "channel_id"';
  if (typeof sig !== 'string' || sig === '') return 'missing "context.sig": not a button this channel sent';
  return safeEqual(sig.toLowerCase(), signAction(secret, channelId, action)) ? true : '"context.sig" does not match the action and channel';
}
