/** Whose conversation a message belongs to: Rasa's `conversation_granularity`. */

import { nonEmptyString as str } from 'switchboard';
export type Granularity = 'sender' | 'channel' | 'thread';

export interface ParseOptions {
  granularity: Granularity;
  /** `slack_channel`: a channel the bot listens in without being mentioned. */
  slackChannel?: string | undefined;
}

/** One user message, as Slack's words for it. */
export interface SlackIncoming {
  text: string;
  senderId: string;
  /**
   * For events, the message itself: `<channel>:<ts>` (else `client_msg_id`, else `event_id`). A mention in
   * `slack_channel` comes as a `message` and an `app_mention` with two `event_id`s but one channel and `ts`. For
   * interactive payloads, the action's `action_ts` (or the `trigger_id`).
   */
  messageId: string | undefined;
  metadata: {
    out_channel: string | undefined;
    /** `thread_ts`, or the message's own `ts` (replying in a thread starts one under it, as Rasa does). */
    thread_id: string | undefined;
    ts: string | undefined;
    users: string[];
  };
}

export type SlackParsed =
  | { kind: 'challenge'; challenge: string }
  | { kind: 'message'; message: SlackIncoming }
  /** Verified and well formed, but nothing for the bot: answered 200 with `answer` so Slack does not retry. */
  | { kind: 'ignored'; reason: string; answer?: string }
  /** Not what Slack sends: 400. */
  | { kind: 'invalid'; reason: string };

type Json = Record<string, unknown>;

const isObject = (value: unknown): value is Json => value !== null && typeof value === 'object' && !Array.isArray(value);

/** Message subtypes a person sends; every other subtype (edits, deletions, joins, bot_message…) is not for the bot. */
const USER_SUBTYPES = new Set(['file_share', 'thread_broadcast', 'me_message']);

/** The bot's own user ids: `authorizations[].user_id` of bot installs, and the older `authed_users`. */
export function botUserIds(payload: Json): string[] {
  const ids = new Set<string>();
  if (Array.isArray(payload.authed_users)) for (const id of payload.authed_users) if (str(id)) ids.add(id as string);
  if (Array.isArray(payload.authorizations)) {
    for (const auth of payload.authorizations) {
      if (isObject(auth) && auth.is_bot !== false && str(auth.user_id)) ids.add(auth.user_id as string);
    }
  }
  return [...ids];
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * Slack's message text as the user typed it: the bot's `<@U…>` mentions removed, links `<url|label>` → `label` and
 * `<url>` → `url`, and the three characters Slack escapes (`&`, `<`, `>`) unescaped.
 *
 * A mention is removed as Rasa removes it, in three passes per bot id: with the whitespace after it, then with the
 * whitespace before it, and a mention still left (between two words) becomes a space, so `here<@U…>if` reads
 * `here if`, not `hereif`. Other spacing is the user's and is kept.
 */
export function cleanText(text: string, botIds: readonly string[]): string {
  let clean = text;
  for (const id of botIds) {
    // Slack may write a mention with the display name: `<@U0BOT|switchboard>`.
    const mention = `<@${escapeRegExp(id)}(?:\\|[^>]*)?>`;
    clean = clean
      .replace(new RegExp(`${mention}\\s`, 'g'), '')
      .replace(new RegExp(`\\s${mention}`, 'g'), '')
      .replace(new RegExp(mention, 'g'), ' ');
  }
  clean = clean.replace(/<((?:https?|mailto):[^>|]*)\|([^>]*)>/g, '$2').replace(/<((?:https?|mailto):[^>|]*)>/g, '$1');
  return clean.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&').trim();
}

/** Rasa's conversation id: `<user>`, `<user>_<channel>` or `<user>_<channel>_<thread>`. */
export function senderFor(user: string, channel: string | undefined, thread: string | undefined, granularity: Granularity): string {
  if (granularity === 'channel' && channel) return `${user}_${channel}`;
  if (granularity === 'thread' && channel) return thread ? `${user}_${channel}_${thread}` : `${user}_${channel}`;
  return user;
}

/** An Events API body (`url_verification`, `event_callback`) → what to do with it. */
export function parseEvent(payload: Json, options: ParseOptions): SlackParsed {
  const type = payload.type;
  if (type === 'url_verification') {
    const challenge = str(payload.challenge);
    return challenge ? { kind: 'challenge', challenge } : { kind: 'invalid', reason: 'url_verification without a "challenge"' };
  }
  if (typeof type !== 'string') return { kind: 'invalid', reason: 'missing "type"' };
  if (type !== 'event_callback') return { kind: 'ignored', reason: `${type} requests are not handled` };

  const event = payload.event;
  if (!isObject(event)) return { kind: 'invalid', reason: 'event_callback without an "event" object' };
  const eventType = str(event.type);
  if (eventType !== 'message' && eventType !== 'app_mention') return { kind: 'ignored', reason: `${String(eventType)} events are not handled` };

  const botIds = botUserIds(payload);
  const user = str(event.user);
  const subtype = str(event.subtype);
  if (str(event.bot_id) || subtype === 'bot_message' || (user && botIds.includes(user))) {
    return { kind: 'ignored', reason: 'a bot message', answer: 'Bot message delivered.' };
  }
  if (subtype && !USER_SUBTYPES.has(subtype)) return { kind: 'ignored', reason: `message subtype ${subtype}` };
  if (!user) return { kind: 'ignored', reason: 'an event without a user' };
  const text = typeof event.text === 'string' ? event.text : '';
  if (text.trim() === '') return { kind: 'ignored', reason: 'a message without text' };

  const channel = str(event.channel);
  const isDirect = event.channel_type === 'im' || (channel?.startsWith('D') ?? false);
  // As Rasa: in channels, only mentions and `slack_channel` — otherwise a mention, which Slack also delivers as a
  // `message`, would be answered twice, and every message in every channel the bot is in would reach it.
  if (eventType === 'message' && !isDirect && !(options.slackChannel && channel === options.slackChannel)) {
    return { kind: 'ignored', reason: `a message in channel ${String(channel)}`, answer: 'channel not supported.' };
  }

  const ts = str(event.ts);
  const threadId = str(event.thread_ts) ?? ts;
  return {
    kind: 'message',
    message: {
      text: cleanText(text, botIds),
      senderId: senderFor(user, channel, threadId, options.granularity),
      messageId: channel && ts ? `${channel}:${ts}` : str(event.client_msg_id) ?? str(payload.event_id),
      metadata: { out_channel: channel, thread_id: threadId, ts, users: botIds },
    },
  };
}

/** The value a clicked or chosen Block Kit element stands for, as Rasa reads it; undefined when it has none. */
export function actionValue(action: Json): string | undefined {
  const option = (value: unknown) => (isObject(value) ? str(value.value) : undefined);
  switch (action.type) {
    case 'button':
      return str(action.value);
    case 'static_select':
    case 'external_select':
    case 'overflow':
    case 'radio_buttons':
      return option(action.selected_option);
    case 'select':
    case 'multi_static_select':
    case 'multi_external_select':
    case 'checkboxes':
      return Array.isArray(action.selected_options) ? option(action.selected_options[0]) : undefined;
    case 'users_select':
      return str(action.selected_user);
    case 'conversations_select':
      return str(action.selected_conversation);
    case 'channels_select':
      return str(action.selected_channel);
    case 'datepicker':
      return str(action.selected_date);
    case 'timepicker':
      return str(action.selected_time);
    default:
      return undefined;
  }
}

/** An interactivity payload (the JSON in the form field `payload`) → what to do with it. */
export function parseInteractive(payload: unknown, options: ParseOptions): SlackParsed {
  if (!isObject(payload)) return { kind: 'invalid', reason: '"payload" must be a JSON object' };
  const type = str(payload.type);
  if (type !== 'block_actions' && type !== 'interactive_message') return { kind: 'ignored', reason: `${String(type)} payloads are not handled` };
  const action = Array.isArray(payload.actions) ? payload.actions[0] : undefined;
  if (!isObject(action)) return { kind: 'invalid', reason: `${type} without "actions"` };
  const user = isObject(payload.user) ? str(payload.user.id) : undefined;
  if (!user) return { kind: 'invalid', reason: `${type} without "user.id"` };
  const value = actionValue(action);
  // A link button opens its URL in the browser: Slack still tells us, but there is nothing to say to the bot.
  if (value === undefined) return { kind: 'ignored', reason: `a ${String(action.type)} action without a value` };

  const channel = isObject(payload.channel) ? str(payload.channel.id) : undefined;
  const message = isObject(payload.message) ? payload.message : isObject(payload.container) ? payload.container : {};
  const ts = str(message.ts) ?? str(message.message_ts);
  const threadId = str(message.thread_ts) ?? ts;
  return {
    kind: 'message',
    message: {
      text: value.trim(),
      senderId: senderFor(user, channel, threadId, options.granularity),
      messageId: str(action.action_ts) ?? str(payload.trigger_id),
      metadata: { out_channel: channel, thread_id: threadId, ts, users: [user] },
    },
  };
}
