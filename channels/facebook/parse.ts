/**
 * Messenger webhook deliveries → messages for the bot. Pure: no I/O, no clock. Field names are Meta's
 * (https://developers.facebook.com/docs/messenger-platform/webhooks), so the code reads beside the docs.
 */

import { isObject, idString as str } from 'switchboard';

/** One message a user sent (or a button they pressed), ready to become a `UserMessage`. */
export interface IncomingMessage {
  text: string;
  /** The user's page-scoped id (PSID): `sender.id`. */
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

/** The attachment kinds that carry a media URL; Rasa turns the first of them into the text. */
const MEDIA_TYPES = new Set(['audio', 'image', 'video', 'file']);

type Json = Record<string, unknown>;



/**
 * A delivery (`{object: "page", entry: [{messaging: [...]}]}`) → every message in it, in order (Rasa takes only
 * the first), and the events that were skipped. A body of another shape is one ignored event, not an error: it was
 * signed by Meta, and answering it with an error would only make Meta retry it.
 */
export function parseDelivery(body: unknown): ParsedDelivery {
  const result: ParsedDelivery = { messages: [], ignored: [] };
  if (!isObject(body) || body.object !== 'page') {
    const object = isObject(body) ? JSON.stringify(body.object ?? null) : typeof body;
    result.ignored.push({ reason: `not a Messenger page delivery (object: ${object})` });
    return result;
  }
  if (!Array.isArray(body.entry)) {
    result.ignored.push({ reason: 'delivery without an entry list' });
    return result;
  }
  for (const entry of body.entry) {
    if (!isObject(entry) || !Array.isArray(entry.messaging)) {
      // `standby` (handover protocol) and `changes` (page feed) events are not conversations with the bot.
      result.ignored.push({ reason: 'entry without messaging events' });
      continue;
    }
    for (const event of entry.messaging) {
      const parsed = parseEvent(event);
      if ('reason' in parsed) result.ignored.push(parsed);
      else result.messages.push(parsed);
    }
  }
  return result;
}

/** One `entry[].messaging[]` event. */
export function parseEvent(event: unknown): IncomingMessage | IgnoredEvent {
  if (!isObject(event)) return { reason: 'messaging event is not an object' };
  const senderId = isObject(event.sender) ? str(event.sender.id) : undefined;
  const base: Json = {};
  if (isObject(event.recipient) && str(event.recipient.id) !== undefined) base.page_id = str(event.recipient.id);
  if (typeof event.timestamp === 'number') base.timestamp = event.timestamp;

  if (isObject(event.message)) {
    const message = event.message;
    // The page's own messages come back as echoes (sender = the page): answering them would loop.
    if (message.is_echo === true) return { reason: 'echo of a message the page sent', ...(senderId ? { senderId } : {}) };
    if (!senderId) return { reason: 'message without sender.id' };
    const messageId = str(message.mid);
    if (isObject(message.quick_reply) && typeof message.quick_reply.payload === 'string') {
      const title = typeof message.text === 'string' ? { title: message.text } : {};
      return { text: message.quick_reply.payload, senderId, messageId, metadata: { ...base, type: 'quick_reply', ...title } };
    }
    if (typeof message.text === 'string' && message.text.trim() !== '') {
      return { text: message.text, senderId, messageId, metadata: { ...base, type: 'text' } };
    }
    if (Array.isArray(message.attachments)) {
      const attachments = message.attachments
        .filter(isObject)
        .map((a) => ({ type: str(a.type) ?? 'unknown', url: isObject(a.payload) ? str(a.payload.url) : undefined }));
      const media = attachments.find((a) => MEDIA_TYPES.has(a.type) && a.url);
      if (media?.url) {
        return { text: media.url, senderId, messageId, metadata: { ...base, type: 'attachment', attachment_type: media.type, url: media.url, attachments } };
      }
      return { reason: `message with no audio, image, video or file attachment (${attachments.map((a) => a.type).join(', ') || 'none'})`, senderId };
    }
    return { reason: 'message without text or attachments', senderId };
  }

  if (isObject(event.postback)) {
    const postback = event.postback;
    if (!senderId) return { reason: 'postback without sender.id' };
    if (typeof postback.payload !== 'string') return { reason: 'postback without a payload', senderId };
    // Older postbacks carry no `mid`; a redelivery keeps the sender and timestamp, so those identify it.
    const messageId = str(postback.mid) ?? (typeof event.timestamp === 'number' ? `postback:${senderId}:${event.timestamp}` : undefined);
    const title = typeof postback.title === 'string' ? { title: postback.title } : {};
    return { text: postback.payload, senderId, messageId, metadata: { ...base, type: 'postback', ...title } };
  }

  const who = senderId ? { senderId } : {};
  if (isObject(event.delivery)) return { reason: 'delivery receipt', ...who };
  if (isObject(event.read)) return { reason: 'read receipt', ...who };
  const kinds = Object.keys(event).filter((key) => !['sender', 'recipient', 'timestamp'].includes(key));
  return { reason: `unsupported messaging event (${kinds.join(', ') || 'empty'})`, ...who };
}
