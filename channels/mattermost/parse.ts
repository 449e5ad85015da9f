/**
 * Mattermost outgoing-webhook deliveries and interactive-button clicks → a message for the bot. Pure: no I/O.
 * Field names are Mattermost's (developers.mattermost.com: outgoing webhooks, interactive messages).
 */

import { compact, isObject, idString as str } from 'switchboard';

type Json = Record<string, unknown>;




/** One message ready to become a `UserMessage`. */
export interface IncomingMessage {
  text: string;
  /** `user_id`, as in Rasa. */
  senderId: string;
  /** `post_id` for a post (dedup); a click's `trigger_id`, unique per click, so two clicks are two messages. */
  messageId: string | undefined;
  /** `channel_id` is where the answers go. */
  metadata: Json & { channel_id: string };
}

export type Parsed =
  | { kind: 'message'; click: boolean; message: IncomingMessage }
  | { kind: 'ignored'; reason: string }
  | { kind: 'invalid'; reason: string };

/** A button click has a `context` object; an outgoing-webhook delivery has `token` and `text`. */
export function isClick(body: Json): boolean {
  return isObject(body.context);
}

/**
 * The text after the trigger word: `@bot hello` or `!ask hello` → `hello`. Mattermost fires on a first word equal to
 * (or, by the hook's setting, starting with) a trigger word; a mention counts as one. Without either, or when the
 * message is the trigger word alone, the text is kept whole, as in Rasa.
 */
export function stripTrigger(text: string, triggerWord: string | undefined): string {
  const trimmed = text.trim();
  const space = trimmed.search(/\s/);
  if (space < 0) return trimmed;
  const first = trimmed.slice(0, space);
  const triggered = (triggerWord !== undefined && triggerWord !== '' && first.startsWith(triggerWord)) || first.startsWith('@');
  return triggered ? trimmed.slice(space).trim() : trimmed;
}

/**
 * An outgoing-webhook body (`token, team_id, team_domain, channel_id, channel_name, timestamp, user_id, user_name,
 * post_id, text, trigger_word, file_ids`) → the bot's input.
 */
export function parseWebhook(body: Json): Parsed {
  const channelId = str(body.channel_id);
  const userId = str(body.user_id);
  if (channelId === undefined || userId === undefined) {
    return { kind: 'invalid', reason: 'not a Mattermost outgoing webhook: expected "channel_id" and "user_id"' };
  }
  const raw = typeof body.text === 'string' ? body.text : '';
  const triggerWord = str(body.trigger_word);
  const text = stripTrigger(raw, triggerWord);
  // A post with only files, or only the trigger word's mention stripped to nothing, says nothing to the bot.
  if (text === '') return { kind: 'ignored', reason: 'a post without text' };
  return {
    kind: 'message',
    click: false,
    message: {
      text,
      senderId: userId,
      messageId: str(body.post_id),
      metadata: compact({
        type: 'post',
        channel_id: channelId,
        channel_name: str(body.channel_name),
        team_id: str(body.team_id),
        team_domain: str(body.team_domain),
        user_name: str(body.user_name),
        post_id: str(body.post_id),
        trigger_word: triggerWord,
        timestamp: str(body.timestamp),
        file_ids: str(body.file_ids),
      }) as Json & { channel_id: string },
    },
  };
}

/**
 * An interactive-message click (`{user_id, user_name, channel_id, channel_name, team_id, team_domain, post_id,
 * trigger_id, type, data_source, context}`) → the bot's input: the button's `context.action`, as in Rasa.
 */
export function parseClick(body: Json): Parsed {
  const context = isObject(body.context) ? body.context : {};
  const channelId = str(body.channel_id);
  const userId = str(body.user_id);
  const action = context.action;
  if (channelId === undefined || userId === undefined || typeof action !== 'string') {
    return { kind: 'invalid', reason: 'a button click needs "user_id", "channel_id" and "context.action"' };
  }
  return {
    kind: 'message',
    click: true,
    message: {
      text: action,
      senderId: userId,
      messageId: str(body.trigger_id),
      metadata: compact({
        type: 'button',
        channel_id: channelId,
        channel_name: str(body.channel_name),
        team_id: str(body.team_id),
        team_domain: str(body.team_domain),
        user_name: str(body.user_name),
        post_id: str(body.post_id),
      }) as Json & { channel_id: string },
    },
  };
}

export function parseRequest(body: Json): Parsed {
  return isClick(body) ? parseClick(body) : parseWebhook(body);
}
