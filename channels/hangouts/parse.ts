/**
 * Google Chat interaction events → messages for the bot. Pure: no I/O, no clock. Field names are the Event
 * resource's (https://developers.google.com/workspace/chat/api/reference/rest/v1/Event).
 */

import { compact, isObject, nonEmptyString as str } from 'switchboard';

type Json = Record<string, unknown>;

/** The texts Rasa sends the bot for the membership events (`/intent_name`). */
export interface SpaceIntents {
  /** `hangouts_user_added_intent_name`: the app was added to a direct message. */
  userAdded: string;
  /** `hangouts_room_added_intent_name`: the app was added to a space with several people. */
  roomAdded: string;
  /** `hangouts_removed_intent_name`: the app was removed from a space. */
  removed: string;
}

/** One message ready to become a `UserMessage`. */
export interface IncomingEvent {
  /** The event's `type`: `MESSAGE`, `CARD_CLICKED`, `ADDED_TO_SPACE`, `REMOVED_FROM_SPACE`. */
  type: string;
  text: string;
  senderId: string | undefined;
  /** The Chat message's resource name, for `MESSAGE` events only: a card click or a membership has none of its own. */
  messageId: string | undefined;
  metadata: Json;
}

export type ParsedEvent =
  | { kind: 'message'; message: IncomingEvent }
  | { kind: 'ignored'; reason: string }
  | { kind: 'invalid'; reason: string };

/**
 * True for a space with several people: the legacy `type: "ROOM"` (what Rasa checks), or a `spaceType` other than
 * `DIRECT_MESSAGE` (`SPACE`, `GROUP_CHAT`), which Google sends today.
 */
export function isRoom(space: unknown): boolean {
  if (!isObject(space)) return false;
  if (space.type === 'ROOM') return true;
  const spaceType = str(space.spaceType);
  return spaceType !== undefined && spaceType !== 'DIRECT_MESSAGE' && spaceType !== 'SPACE_TYPE_UNSPECIFIED';
}

/**
 * The text of a `MESSAGE` event. When the app is @mentioned (an annotation `USER_MENTION` of a `BOT` user), Chat puts
 * the text without the mention in `argumentText`, which is what the bot should read; otherwise the full `text`.
 */
export function messageText(message: Json): string {
  const text = typeof message.text === 'string' ? message.text : '';
  const mentioned =
    Array.isArray(message.annotations) &&
    message.annotations.some((a) => isObject(a) && a.type === 'USER_MENTION' && isObject(a.userMention) && isObject(a.userMention.user) && a.userMention.user.type === 'BOT');
  if (mentioned && typeof message.argumentText === 'string') return message.argumentText.trim();
  return text.trim();
}

/**
 * What a card button sends back: the function the button named (`common.invokedFunction`, or the legacy
 * `action.actionMethodName`), which carries the Rasa button's payload.
 */
export function clickedPayload(event: Json): string | undefined {
  const common = isObject(event.common) ? event.common : {};
  const action = isObject(event.action) ? event.action : {};
  return str(action.actionMethodName) ?? str(common.invokedFunction);
}

/**
 * An interaction event (`{type, eventTime, space, user, message?, action?, common?}`) → a message for the bot, or why
 * it is not one. `MESSAGE` → its text; `CARD_CLICKED` → the button's payload; `ADDED_TO_SPACE` and
 * `REMOVED_FROM_SPACE` → the configured intents, as Rasa sends them. Other types are acknowledged and dropped.
 */
export function parseEvent(body: unknown, intents: SpaceIntents): ParsedEvent {
  if (!isObject(body) || typeof body.type !== 'string') return { kind: 'invalid', reason: 'not a Google Chat event: expected a "type"' };
  const space = isObject(body.space) ? body.space : undefined;
  const message = isObject(body.message) ? body.message : undefined;
  const user = isObject(body.user) ? body.user : undefined;
  // As Rasa: the message's sender for a MESSAGE; else the event's user (a clicked card's message is the app's own).
  const sender = body.type === 'MESSAGE' && message && isObject(message.sender) ? message.sender : user;
  const room = isRoom(space);
  let text: string | undefined;
  let messageId: string | undefined;
  switch (body.type) {
    case 'MESSAGE':
      if (!message) return { kind: 'invalid', reason: 'a MESSAGE event without a "message"' };
      text = messageText(message);
      messageId = str(message.name);
      break;
    case 'CARD_CLICKED':
      text = clickedPayload(body);
      if (text === undefined) return { kind: 'ignored', reason: 'a card click without an action' };
      break;
    case 'ADDED_TO_SPACE':
      text = room ? intents.roomAdded : intents.userAdded;
      break;
    case 'REMOVED_FROM_SPACE':
      text = intents.removed;
      break;
    default:
      return { kind: 'ignored', reason: `event type "${body.type}"` };
  }
  const senderId = sender ? str(sender.name) : undefined;
  return {
    kind: 'message',
    message: {
      type: body.type,
      text,
      senderId,
      messageId,
      metadata: compact({
        // Rasa's one key: the space's name when it is a room, else null.
        room: room && space ? (str(space.displayName) ?? null) : null,
        space: space ? compact({ name: str(space.name), type: str(space.type), spaceType: str(space.spaceType), displayName: str(space.displayName) }) : undefined,
        user: sender ? compact({ name: str(sender.name), displayName: str(sender.displayName), email: str(sender.email), type: str(sender.type) }) : undefined,
        thread: message && isObject(message.thread) ? str(message.thread.name) : undefined,
        eventTime: str(body.eventTime),
        // Files the user sent with the message (`{name, contentName, contentType, thumbnailUri, downloadUri, source}`).
        attachment: message && Array.isArray(message.attachment) && message.attachment.length > 0 ? message.attachment : undefined,
        parameters: body.type === 'CARD_CLICKED' && isObject(body.common) && isObject(body.common.parameters) ? body.common.parameters : undefined,
      }),
    },
  };
}
