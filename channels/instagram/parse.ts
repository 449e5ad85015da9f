/**
 * Instagram webhook deliveries (Messenger Platform, `object: "instagram"`) → messages for the bot. Pure: no I/O, no
 * clock. Field names are Meta's (Instagram Messaging webhooks reference), so the code reads beside the docs.
 */

import { compact, idString as str, isObject } from 'switchboard';

/** One message a user sent (or a button they pressed), ready to become a `UserMessage`. */
export interface IncomingMessage {
  text: string;
  /** The user's Instagram-scoped id (IGSID): `sender.id`. */
  senderId: string;
  /** `message.mid` / `postback.mid`: Meta redelivers with the same id, so it is the dedup key. */
  messageId: string | undefined;
  metadata: Record<string, unknown>;
}

/** An event that is not for the bot, and why. */
export interface IgnoredEvent {
  reason: string;
  senderId?: string;
}

export interface ParsedDelivery {
  messages: IncomingMessage[];
  ignored: IgnoredEvent[];
}

/** Attachment kinds that carry a URL the bot can be given as the text (Rasa's Messenger rule, with Instagram's shares and reels). */
const MEDIA_TYPES = new Set(['image', 'video', 'audio', 'file', 'share', 'ig_reel', 'reel']);

type Json = Record<string, unknown>;

/**
 * A delivery (`{object: "instagram", entry: [{id, time, messaging: [...]}]}`) → every message in it, in order, and
 * the events that were skipped. Entries and events for another Instagram account of the same app (`entry.id`,
 * `recipient.id`) are skipped: they are not this channel's to answer. A body of another shape is one ignored event,
 * not an error: it was signed by Meta, and answering it with an error would only make Meta retry it.
 */
export function parseDelivery(body: unknown, accountId: string): ParsedDelivery {
  const result: ParsedDelivery = { messages: [], ignored: [] };
  if (!isObject(body) || body.object !== 'instagram') {
    const object = isObject(body) ? JSON.stringify(body.object ?? null) : typeof body;
    result.ignored.push({ reason: `not an Instagram delivery (object: ${object})` });
    return result;
  }
  if (!Array.isArray(body.entry)) {
    result.ignored.push({ reason: 'delivery without an entry list' });
    return result;
  }
  for (const entry of body.entry) {
    if (!isObject(entry) || !Array.isArray(entry.messaging)) {
      // `changes` (comments, mentions) and `standby` (handover protocol) are not conversations with the bot.
      result.ignored.push({ reason: 'entry without messaging events' });
      continue;
    }
    const entryId = str(entry.id);
    if (entryId !== undefined && entryId !== accountId) {
      result.ignored.push({ reason: `for Instagram account ${entryId}, not ${accountId}` });
      continue;
    }
    for (const event of entry.messaging) {
      const parsed = parseEvent(event, accountId);
      if ('reason' in parsed) result.ignored.push(parsed);
      else result.messages.push(parsed);
    }
  }
  return result;
}

/** A story reply's `reply_to.story` ({id, url}), or undefined. */
function story(message: Json): Json | undefined {
  if (!isObject(message.reply_to) || !isObject(message.reply_to.story)) return undefined;
  const { id, url } = message.reply_to.story;
  return compact({ id: str(id), url: typeof url === 'string' ? url : undefined });
}

/** One `entry[].messaging[]` event, for the Instagram account `accountId`. */
export function parseEvent(event: unknown, accountId: string): IncomingMessage | IgnoredEvent {
  if (!isObject(event)) return { reason: 'messaging event is not an object' };
  const senderId = isObject(event.sender) ? str(event.sender.id) : undefined;
  const who = senderId ? { senderId } : {};
  const recipientId = isObject(event.recipient) ? str(event.recipient.id) : undefined;

  if (isObject(event.message) && event.message.is_echo === true) {
    // What the account sends comes back as an echo (sender = the account): answering it would loop.
    return { reason: 'echo of a message the account sent', ...who };
  }
  if (recipientId !== undefined && recipientId !== accountId) return { reason: `for Instagram account ${recipientId}, not ${accountId}`, ...who };

  const base: Json = { instagram_account_id: accountId };
  if (typeof event.timestamp === 'number') base.timestamp = event.timestamp;

  if (isObject(event.message)) {
    const message = event.message;
    if (message.is_deleted === true) return { reason: 'the user deleted a message', ...who };
    if (message.is_unsupported === true) return { reason: 'a message Instagram cannot show through the API (is_unsupported)', ...who };
    if (!senderId) return { reason: 'message without sender.id' };
    const messageId = str(message.mid);
    const text = typeof message.text === 'string' ? message.text : '';
    const replyTo = isObject(message.reply_to) && str(message.reply_to.mid) !== undefined ? { reply_to_mid: str(message.reply_to.mid) } : {};
    if (isObject(message.quick_reply) && typeof message.quick_reply.payload === 'string') {
      return { text: message.quick_reply.payload, senderId, messageId, metadata: { ...base, type: 'quick_reply', ...(text ? { title: text } : {}) } };
    }
    const replied = story(message);
    if (replied !== undefined && text.trim() !== '') {
      return { text, senderId, messageId, metadata: { ...base, type: 'story_reply', story: replied } };
    }
    if (text.trim() !== '') return { text, senderId, messageId, metadata: { ...base, type: 'text', ...replyTo } };
    if (Array.isArray(message.attachments)) {
      const attachments = message.attachments
        .filter(isObject)
        .map((a) => ({ type: str(a.type) ?? 'unknown', url: isObject(a.payload) && typeof a.payload.url === 'string' ? a.payload.url : undefined }));
      const mention = attachments.find((a) => a.type === 'story_mention');
      if (mention) {
        // No text comes with a mention: the story's URL stands in for it (Rasa's rule for media), and says what it is.
        return { text: mention.url ?? 'story_mention', senderId, messageId, metadata: { ...base, type: 'story_mention', story: compact({ url: mention.url }) } };
      }
      const media = attachments.find((a) => MEDIA_TYPES.has(a.type) && a.url);
      if (media?.url) {
        const storyMeta = replied !== undefined ? { story: replied } : {};
        return { text: media.url, senderId, messageId, metadata: { ...base, type: 'attachment', attachment_type: media.type, url: media.url, attachments, ...storyMeta } };
      }
      return { reason: `message with no media URL (${attachments.map((a) => a.type).join(', ') || 'no attachments'})`, senderId };
    }
    return { reason: 'message without text or attachments', senderId };
  }

  if (isObject(event.postback)) {
    const postback = event.postback;
    if (!senderId) return { reason: 'postback without sender.id' };
    if (typeof postback.payload !== 'string') return { reason: 'postback without a payload', senderId };
    // Postbacks before Graph v11 carry no `mid`; a redelivery keeps the sender and timestamp, so those identify it.
    const messageId = str(postback.mid) ?? (typeof event.timestamp === 'number' ? `postback:${senderId}:${event.timestamp}` : undefined);
    const title = typeof postback.title === 'string' ? { title: postback.title } : {};
    return { text: postback.payload, senderId, messageId, metadata: { ...base, type: 'postback', ...title } };
  }

  if (isObject(event.read)) return { reason: 'read receipt', ...who };
  if (isObject(event.reaction)) return { reason: 'reaction', ...who };
  const kinds = Object.keys(event).filter((key) => !['sender', 'recipient', 'timestamp'].includes(key));
  return { reason: `unsupported messaging event (${kinds.join(', ') || 'empty'})`, ...who };
}
