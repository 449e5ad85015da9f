/**
 * Webex webhook notifications and the API objects they point at → messages for the bot. Pure: no I/O, no clock.
 * Field names are Webex's (https://developer.webex.com/docs/api/guides/webhooks), so the code reads beside the docs.
 */

import { compact, isObject, nonEmptyString as str } from 'switchboard';

type Json = Record<string, unknown>;



/**
 * A notification worth fetching. Webex sends only ids (`data.id`), never the text: the text is read with
 * `GET /messages/{id}`, a card's inputs with `GET /attachment/actions/{id}`.
 */
export interface Notification {
  resource: 'messages' | 'attachmentActions';
  /** `data.id`: the message's (or the card submission's) id, the same on a redelivery, so the dedup key. */
  id: string;
  /** `data.roomId`: the space; the bot answers there, so it is the sender, as in Rasa. */
  roomId: string;
  /** `data.personId`: who wrote it (compared with the bot's own id). */
  personId: string | undefined;
  personEmail: string | undefined;
  roomType: string | undefined;
  /** attachmentActions only: the id of the message holding the card. */
  messageId: string | undefined;
}

export type ParsedNotification =
  | { kind: 'fetch'; notification: Notification }
  | { kind: 'ignored'; reason: string }
  | { kind: 'invalid'; reason: string };

const RESOURCES = new Set(['messages', 'attachmentActions']);

/** A webhook body (`{id, name, resource, event, data: {...}, actorId, createdBy, ...}`) → what to fetch, if anything. */
export function parseNotification(body: Json): ParsedNotification {
  const resource = body.resource;
  const data = body.data;
  if (typeof resource !== 'string' || !isObject(data)) {
    return { kind: 'invalid', reason: 'not a Webex webhook notification: expected "resource" and a "data" object' };
  }
  if (!RESOURCES.has(resource)) return { kind: 'ignored', reason: `resource "${resource}"` };
  if (body.event !== 'created') return { kind: 'ignored', reason: `${resource} event "${String(body.event)}"` };
  const id = str(data.id);
  const roomId = str(data.roomId);
  if (id === undefined || roomId === undefined) {
    return { kind: 'invalid', reason: `a ${resource} notification needs "data.id" and "data.roomId"` };
  }
  return {
    kind: 'fetch',
    notification: {
      resource: resource as Notification['resource'],
      id,
      roomId,
      personId: str(data.personId),
      personEmail: str(data.personEmail),
      roomType: str(data.roomType),
      messageId: str(data.messageId),
    },
  };
}

/** One message ready to become a `UserMessage`. */
export interface IncomingMessage {
  text: string;
  senderId: string;
  messageId: string;
  metadata: Record<string, unknown>;
}


/**
 * A message (`GET /messages/{id}`: `{id, roomId, roomType, text, markdown, html, files, personId, personEmail,
 * mentionedPeople, parentId, created}`) → the bot's input. The text is `text` (Webex's plain rendering; in a group
 * space it starts with the bot's name, which Rasa keeps too); files and the thread's `parentId` go in metadata.
 */
export function messageToIncoming(notification: Notification, message: unknown): IncomingMessage {
  const m = isObject(message) ? message : {};
  return {
    text: typeof m.text === 'string' ? m.text : '',
    senderId: notification.roomId,
    messageId: notification.id,
    metadata: compact({
      type: 'message',
      id: notification.id,
      roomId: notification.roomId,
      roomType: str(m.roomType) ?? notification.roomType,
      personId: str(m.personId) ?? notification.personId,
      personEmail: str(m.personEmail) ?? notification.personEmail,
      files: Array.isArray(m.files) && m.files.length > 0 ? m.files : undefined,
      parentId: str(m.parentId),
      created: str(m.created),
    }),
  };
}

/**
 * A card submission (`GET /attachment/actions/{id}`: `{id, type: "submit", messageId, inputs, personId, roomId,
 * created}`) → the bot's input. The buttons this channel sends carry `{payload}` as their data, which Webex merges
 * into `inputs`, so `inputs.payload` is the text; any other card's inputs arrive as JSON text, and as metadata.
 */
export function actionToIncoming(notification: Notification, action: unknown): IncomingMessage {
  const a = isObject(action) ? action : {};
  const inputs = isObject(a.inputs) ? a.inputs : {};
  const text = typeof inputs.payload === 'string' ? inputs.payload : JSON.stringify(inputs);
  return {
    text,
    senderId: notification.roomId,
    messageId: notification.id,
    metadata: compact({
      type: 'attachmentAction',
      id: notification.id,
      roomId: notification.roomId,
      roomType: notification.roomType,
      personId: str(a.personId) ?? notification.personId,
      personEmail: notification.personEmail,
      messageId: str(a.messageId) ?? notification.messageId,
      inputs,
    }),
  };
}

/** The UUID inside a Webex id (`base64("ciscospark://us/PEOPLE/<uuid>")`), lower-cased; else the id itself. */
function idTail(id: string): string {
  const decoded = Buffer.from(id, 'base64').toString('utf8');
  const match = /^ciscospark:\/\/.+\/([0-9a-f-]{36})$/i.exec(decoded);
  return match ? match[1]!.toLowerCase() : id;
}

/**
 * True when two Webex ids name the same object. Ids are compared as given first; the UUID inside is compared too, as
 * the same person's id can be encoded with different cluster prefixes (`us` vs `urn:TEAM:…`) by different endpoints.
 */
export function sameId(a: string | undefined, b: string | undefined): boolean {
  if (a === undefined || b === undefined) return false;
  return a === b || idTail(a) === idTail(b);
}
