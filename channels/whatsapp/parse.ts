/**
 * WhatsApp Cloud API webhook notifications → messages for the bot, and status updates. Pure: no I/O, no clock. Field
 * names are Meta's (webhooks reference, `messages` field), so the code reads beside the docs.
 */

import { compact, idString as str, isObject } from 'switchboard';

/** One message a user sent (or a button they pressed), ready to become a `UserMessage`. */
export interface IncomingMessage {
  text: string;
  /** The user's WhatsApp id (`messages[].from`, their phone number): answers go `to` it. */
  senderId: string;
  /** `messages[].id` (`wamid.…`): Meta redelivers with the same id, so it is the dedup key; typing shows on it. */
  messageId: string;
  /** `messages[].timestamp` as sent (Unix seconds, a string): checked against the replay window. */
  timestamp: unknown;
  metadata: Record<string, unknown>;
}

/** A status callback about a message the business sent: acknowledged, logged, never given to the bot. */
export interface StatusUpdate {
  /** `wamid.…` of the message the status is about. */
  id: string | undefined;
  /** `sent`, `delivered`, `read`, `failed` (or a newer one). */
  status: string;
  recipientId: string | undefined;
  errors: Array<{ code?: number; title?: string; details?: string }>;
}

/** A part of a notification that is not for the bot, and why. */
export interface IgnoredEvent {
  reason: string;
  senderId?: string;
}

export interface ParsedNotification {
  messages: IncomingMessage[];
  statuses: StatusUpdate[];
  ignored: IgnoredEvent[];
}

/** Media messages: their object (`image: {id, mime_type, sha256, caption?}`) goes into the metadata. */
const MEDIA_TYPES = new Set(['image', 'audio', 'video', 'document', 'sticker']);

type Json = Record<string, unknown>;

/**
 * A notification (`{object: "whatsapp_business_account", entry: [{id, changes: [{field: "messages", value}]}]}`) →
 * its messages in order, its status updates, and what was skipped. A body of another shape is one ignored event, not
 * an error: it was signed by Meta, and answering it with an error would only make Meta retry it. Messages to another
 * phone number of the same app (`value.metadata.phone_number_id`) are skipped: they are not this channel's to answer.
 */
export function parseNotification(body: unknown, phoneNumberId: string): ParsedNotification {
  const result: ParsedNotification = { messages: [], statuses: [], ignored: [] };
  if (!isObject(body) || body.object !== 'whatsapp_business_account') {
    const object = isObject(body) ? JSON.stringify(body.object ?? null) : typeof body;
    result.ignored.push({ reason: `not a WhatsApp Business Account notification (object: ${object})` });
    return result;
  }
  if (!Array.isArray(body.entry)) {
    result.ignored.push({ reason: 'notification without an entry list' });
    return result;
  }
  for (const entry of body.entry) {
    if (!isObject(entry) || !Array.isArray(entry.changes)) {
      result.ignored.push({ reason: 'entry without changes' });
      continue;
    }
    for (const change of entry.changes) {
      if (!isObject(change) || change.field !== 'messages' || !isObject(change.value)) {
        // account_update, message_template_status_update...: subscribed fields that are not conversations.
        result.ignored.push({ reason: `change of field ${JSON.stringify(isObject(change) ? change.field ?? null : null)}` });
        continue;
      }
      parseValue(change.value, phoneNumberId, result);
    }
  }
  return result;
}

function parseValue(value: Json, phoneNumberId: string, result: ParsedNotification): void {
  const meta = isObject(value.metadata) ? value.metadata : {};
  const to = str(meta.phone_number_id);
  if (to !== undefined && to !== phoneNumberId) {
    result.ignored.push({ reason: `for phone number id ${to}, not ${phoneNumberId}` });
    return;
  }
  const names = new Map<string, string>();
  if (Array.isArray(value.contacts)) {
    for (const contact of value.contacts) {
      if (isObject(contact) && str(contact.wa_id) !== undefined && isObject(contact.profile) && typeof contact.profile.name === 'string') {
        names.set(str(contact.wa_id)!, contact.profile.name);
      }
    }
  }
  const base = compact({ phone_number_id: to, display_phone_number: str(meta.display_phone_number) });
  if (Array.isArray(value.messages)) {
    for (const message of value.messages) {
      const parsed = parseMessage(message, base, names);
      if ('reason' in parsed) result.ignored.push(parsed);
      else result.messages.push(parsed);
    }
  }
  if (Array.isArray(value.statuses)) {
    for (const status of value.statuses) {
      if (!isObject(status) || typeof status.status !== 'string') {
        result.ignored.push({ reason: 'status without a status' });
        continue;
      }
      const errors = Array.isArray(status.errors)
        ? status.errors.filter(isObject).map((error) => compact({
            code: typeof error.code === 'number' ? error.code : undefined,
            title: typeof error.title === 'string' ? error.title : undefined,
            details: isObject(error.error_data) && typeof error.error_data.details === 'string' ? error.error_data.details : undefined,
          }))
        : [];
      result.statuses.push({ id: str(status.id), status: status.status, recipientId: str(status.recipient_id), errors });
    }
  }
}

/** One `messages[]` item. */
export function parseMessage(message: unknown, base: Json = {}, names = new Map<string, string>()): IncomingMessage | IgnoredEvent {
  if (!isObject(message)) return { reason: 'message is not an object' };
  const senderId = str(message.from);
  const messageId = str(message.id);
  if (senderId === undefined) return { reason: 'message without from' };
  if (messageId === undefined) return { reason: 'message without id', senderId };
  const type = typeof message.type === 'string' ? message.type : 'unknown';
  const name = names.get(senderId);
  const context = isObject(message.context) ? compact({ id: str(message.context.id), from: str(message.context.from) }) : undefined;
  const metadata: Json = { ...base, type, ...(name !== undefined ? { name } : {}), ...(context ? { context } : {}) };
  const found = (text: string, extra: Json = {}): IncomingMessage => ({ text, senderId, messageId, timestamp: message.timestamp, metadata: { ...metadata, ...extra } });

  if (type === 'text') {
    const body = isObject(message.text) ? message.text.body : undefined;
    if (typeof body !== 'string' || body.trim() === '') return { reason: 'text message without a body', senderId };
    return found(body);
  }
  if (type === 'interactive' && isObject(message.interactive)) {
    const interactive = message.interactive;
    // A reply button or a list row: the bot gets the id we sent as its payload; the title shown goes in the metadata.
    for (const kind of ['button_reply', 'list_reply'] as const) {
      const reply = interactive[kind];
      if (interactive.type === kind && isObject(reply) && str(reply.id) !== undefined) {
        return found(str(reply.id)!, compact({ type: kind, title: typeof reply.title === 'string' ? reply.title : undefined, description: typeof reply.description === 'string' ? reply.description : undefined }));
      }
    }
    return { reason: `interactive reply of type ${JSON.stringify(interactive.type ?? null)}`, senderId };
  }
  if (type === 'button' && isObject(message.button)) {
    // A template's quick-reply button: its payload, else the text shown on it.
    const payload = typeof message.button.payload === 'string' && message.button.payload !== '' ? message.button.payload : message.button.text;
    if (typeof payload !== 'string' || payload === '') return { reason: 'button message without payload or text', senderId };
    return found(payload, compact({ title: typeof message.button.text === 'string' ? message.button.text : undefined }));
  }
  if (type === 'location' && isObject(message.location)) {
    const { latitude, longitude } = message.location;
    if (typeof latitude !== 'number' || typeof longitude !== 'number') return { reason: 'location without latitude and longitude', senderId };
    const place = message.location;
    return found('', { location: compact({ latitude, longitude, name: typeof place.name === 'string' ? place.name : undefined, address: typeof place.address === 'string' ? place.address : undefined, url: typeof place.url === 'string' ? place.url : undefined }) });
  }
  if (MEDIA_TYPES.has(type) && isObject(message[type])) {
    // The media's id is fetched with the access token (GET /{media-id}): the bot gets it, with the caption as text.
    const media = message[type] as Json;
    const caption = typeof media.caption === 'string' ? media.caption : '';
    return found(caption, { media: compact({ id: str(media.id), mime_type: typeof media.mime_type === 'string' ? media.mime_type : undefined, sha256: typeof media.sha256 === 'string' ? media.sha256 : undefined, caption: caption || undefined, filename: typeof media.filename === 'string' ? media.filename : undefined }) });
  }
  return { reason: `unsupported message type ${JSON.stringify(type)}`, senderId };
}
