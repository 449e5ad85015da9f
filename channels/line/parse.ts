/**
 * LINE webhook deliveries → messages for the bot. Pure: no I/O; the clock comes in as `now`. Field names are LINE's
 * (https://developers.line.biz/en/reference/messaging-api/#webhook-event-objects), so the code reads beside the docs.
 */

import { compact, isObject, nonEmptyString as str } from 'switchboard';
import { checkEventTime } from './verify.js';

/** One event for the bot, ready to become a `UserMessage`. */
export interface IncomingMessage {
  text: string;
  /** The conversation: `source.userId` in a one-on-one chat, else the `groupId` or `roomId` (answers go there). */
  senderId: string;
  /** `webhookEventId`: LINE redelivers an event with the same id, so it is the dedup key. */
  messageId: string | undefined;
  metadata: Record<string, unknown>;
  /** The event's reply token, when it has one (message, postback, follow). */
  replyToken?: string;
  /** An unfollow: the user blocked the account, so nothing can reach them; answers are dropped. */
  blocked?: boolean;
}

/** An event that is not for the bot, and why. */
export interface IgnoredEvent {
  reason: string;
  senderId?: string;
  webhookEventId?: string;
}

export interface ParsedDelivery {
  messages: IncomingMessage[];
  ignored: IgnoredEvent[];
}

export interface ParseOptions {
  /** The text the bot gets when a user adds the account as a friend (or unblocks it); unset: follow events are ignored. */
  followIntent?: string | undefined;
  /** The text the bot gets when a user blocks the account; unset: unfollow events are ignored. */
  unfollowIntent?: string | undefined;
  /** Seconds: an event whose `timestamp` is older is ignored (a replay); 0 turns the check off. */
  replayWindow: number;
  /** ms since the epoch. */
  now: number;
}

/** Message types whose content is a file kept by LINE (fetched with `GET /v2/bot/message/{id}/content`). */
const MEDIA_TYPES = new Set(['image', 'video', 'audio', 'file']);

type Json = Record<string, unknown>;

/**
 * A delivery (`{destination, events: [...]}`) → every event for the bot, in order, and the events that were skipped.
 * LINE's "Verify" button and its connection checks send `events: []`. A body of another shape is one ignored event,
 * not an error: it was signed by LINE, and answering it with an error would only make LINE redeliver it.
 */
export function parseDelivery(body: unknown, options: ParseOptions): ParsedDelivery {
  const result: ParsedDelivery = { messages: [], ignored: [] };
  if (!isObject(body) || !Array.isArray(body.events)) {
    result.ignored.push({ reason: 'not a LINE webhook delivery (no events list)' });
    return result;
  }
  const destination = str(body.destination);
  for (const event of body.events) {
    const parsed = parseEvent(event, options, destination);
    if ('reason' in parsed) result.ignored.push(parsed);
    else result.messages.push(parsed);
  }
  return result;
}

/** The conversation an event belongs to, and who in it acted. */
function sourceOf(source: unknown): { senderId?: string; fields: Json } {
  if (!isObject(source)) return { fields: {} };
  const type = str(source.type);
  const userId = str(source.userId);
  const groupId = str(source.groupId);
  const roomId = str(source.roomId);
  const senderId = type === 'group' ? groupId : type === 'room' ? roomId : type === 'user' ? userId : undefined;
  return { senderId, fields: compact({ source_type: type, user_id: userId, group_id: groupId, room_id: roomId }) };
}

/** One `events[]` item. */
export function parseEvent(event: unknown, options: ParseOptions, destination?: string): IncomingMessage | IgnoredEvent {
  if (!isObject(event)) return { reason: 'event is not an object' };
  const type = str(event.type) ?? 'unknown';
  const webhookEventId = str(event.webhookEventId);
  const { senderId, fields } = sourceOf(event.source);
  const about = compact({ senderId, webhookEventId });
  const fresh = checkEventTime(event, options.replayWindow, options.now);
  if (fresh !== true) return { reason: `${type} event outside the replay window: ${fresh}`, ...about };
  // In standby mode another module channel holds the chat: its events are for information, and carry no reply token.
  if (event.mode === 'standby') return { reason: `${type} event in standby mode`, ...about };
  if (!senderId) return { reason: `${type} event without a source user, group or room id`, ...about };

  const deliveryContext = isObject(event.deliveryContext) ? event.deliveryContext : {};
  const base: Json = compact({
    event_type: type,
    ...fields,
    timestamp: typeof event.timestamp === 'number' ? event.timestamp : undefined,
    destination,
    is_redelivery: typeof deliveryContext.isRedelivery === 'boolean' ? deliveryContext.isRedelivery : undefined,
  });
  const replyToken = str(event.replyToken);
  const message = (text: string, metadata: Json, extra: Partial<IncomingMessage> = {}): IncomingMessage => ({
    text,
    senderId,
    messageId: webhookEventId,
    metadata: { ...base, ...metadata },
    ...(replyToken !== undefined ? { replyToken } : {}),
    ...extra,
  });

  switch (type) {
    case 'message': {
      if (!isObject(event.message)) return { reason: 'message event without a message', ...about };
      return readMessage(event.message, message, about);
    }
    case 'postback': {
      const postback = isObject(event.postback) ? event.postback : undefined;
      if (!postback || typeof postback.data !== 'string') return { reason: 'postback event without data', ...about };
      // A datetime picker's choice comes in `params` ({date}, {time} or {datetime}), a rich menu switch's in `params` too.
      return message(postback.data, { postback_data: postback.data, ...(isObject(postback.params) ? { postback_params: postback.params } : {}) });
    }
    case 'follow': {
      if (options.followIntent === undefined) return { reason: 'follow event (no follow_intent configured)', ...about };
      const follow = isObject(event.follow) ? event.follow : {};
      return message(options.followIntent, compact({ is_unblocked: typeof follow.isUnblocked === 'boolean' ? follow.isUnblocked : undefined }));
    }
    case 'unfollow': {
      if (options.unfollowIntent === undefined) return { reason: 'unfollow event (no unfollow_intent configured)', ...about };
      return message(options.unfollowIntent, {}, { blocked: true });
    }
    default:
      return { reason: `${type} event is not handled`, ...about };
  }
}

/** A message event's `message` → the text for the bot (text only; stickers, media and locations go in metadata). */
function readMessage(
  content: Json,
  message: (text: string, metadata: Json) => IncomingMessage,
  about: Partial<IgnoredEvent>,
): IncomingMessage | IgnoredEvent {
  const kind = str(content.type) ?? 'unknown';
  const common = compact({ message_type: kind, message_id: str(content.id), quote_token: str(content.quoteToken), quoted_message_id: str(content.quotedMessageId) });
  if (kind === 'text') {
    if (typeof content.text !== 'string') return { reason: 'text message without text', ...about };
    return message(content.text, { ...common, ...(isObject(content.mention) ? { mention: content.mention } : {}), ...(Array.isArray(content.emojis) ? { emojis: content.emojis } : {}) });
  }
  if (kind === 'sticker') {
    const sticker = compact({
      packageId: str(content.packageId),
      stickerId: str(content.stickerId),
      stickerResourceType: str(content.stickerResourceType),
      keywords: Array.isArray(content.keywords) ? content.keywords.filter((k) => typeof k === 'string') : undefined,
      text: str(content.text),
    });
    return message('', { ...common, sticker });
  }
  if (kind === 'location') {
    if (typeof content.latitude !== 'number' || typeof content.longitude !== 'number') return { reason: 'location message without coordinates', ...about };
    const location = compact({ title: str(content.title), address: str(content.address), latitude: content.latitude, longitude: content.longitude });
    return message('', { ...common, location });
  }
  if (MEDIA_TYPES.has(kind)) {
    const media = compact({
      contentProvider: isObject(content.contentProvider) ? content.contentProvider : undefined,
      duration: typeof content.duration === 'number' ? content.duration : undefined,
      fileName: str(content.fileName),
      fileSize: typeof content.fileSize === 'number' ? content.fileSize : undefined,
      imageSet: isObject(content.imageSet) ? content.imageSet : undefined,
    });
    return message('', { ...common, media });
  }
  return { reason: `${kind} message is not handled`, ...about };
}
