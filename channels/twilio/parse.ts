/**
 * Twilio messaging webhooks (SMS, MMS, WhatsApp) → a message for the bot. Pure: no I/O. Field names are Twilio's
 * (https://www.twilio.com/docs/messaging/guides/webhook-request), so the code reads beside the docs.
 */

/** One message a user sent, ready to become a `UserMessage`. */
export interface IncomingMessage {
  text: string;
  /** `From`: `+14155551234`, or `whatsapp:+14155551234`. */
  senderId: string;
  /** `MessageSid`: Twilio retries a webhook that failed with the same sid, so it is the dedup key. */
  messageId: string | undefined;
  metadata: Record<string, unknown>;
}

/** A request that is not a message for the bot (`invalid`: not even a Twilio message, answered 400). */
export interface Ignored {
  reason: string;
  invalid?: boolean;
}

/** Fields copied into the metadata when present, under Twilio's names. */
const METADATA_FIELDS = ['To', 'AccountSid', 'MessagingServiceSid', 'ProfileName', 'WaId', 'MessageType', 'NumSegments', 'ButtonPayload', 'ButtonText'] as const;

/** Twilio allows up to 10 media per MMS; more indexes than that are not read. */
const MAX_MEDIA = 10;

/**
 * A WhatsApp location share as Rasa hands it to the bot: an intent with the coordinates as entities.
 * Coordinates are copied only when they are numbers, so the text cannot carry anything else.
 */
export function locationText(latitude: string, longitude: string): string | undefined {
  const number = /^-?\d{1,3}(\.\d+)?$/;
  if (!number.test(latitude.trim()) || !number.test(longitude.trim())) return undefined;
  return `/locationData{'Latitude': ${latitude.trim()},'Longitude': ${longitude.trim()}}`;
}

/** The form fields of one webhook request → the message, or why it is not one. */
export function parseMessage(fields: Record<string, string>): IncomingMessage | Ignored {
  const senderId = fields.From;
  if (senderId === undefined || senderId.trim() === '') return { reason: 'missing form field "From"', invalid: true };

  const metadata: Record<string, unknown> = {};
  for (const key of METADATA_FIELDS) if (fields[key] !== undefined && fields[key] !== '') metadata[key] = fields[key];

  const declared = Number.parseInt(fields.NumMedia ?? '0', 10);
  const media: Array<{ url: string; content_type?: string }> = [];
  for (let i = 0; i < Math.min(Number.isNaN(declared) ? 0 : declared, MAX_MEDIA); i++) {
    const url = fields[`MediaUrl${i}`];
    if (url === undefined || url === '') continue;
    const contentType = fields[`MediaContentType${i}`];
    media.push({ url, ...(contentType ? { content_type: contentType } : {}) });
  }
  if (media.length > 0) {
    metadata.NumMedia = media.length;
    metadata.media = media;
  }

  // Carriers that map GSM characters badly turn `@` into `¡`; Rasa turns it back.
  let text = (fields.Body ?? '').replace(/¡/g, '@');
  // A WhatsApp quick-reply button tapped: `Body` is its title, `ButtonPayload` what the bot should get.
  if (fields.ButtonPayload !== undefined && fields.ButtonPayload.trim() !== '') text = fields.ButtonPayload;
  if (fields.Latitude !== undefined && fields.Longitude !== undefined) {
    const location = locationText(fields.Latitude, fields.Longitude);
    if (location !== undefined) {
      text = location;
      metadata.location = {
        Latitude: Number(fields.Latitude),
        Longitude: Number(fields.Longitude),
        ...(fields.Address ? { Address: fields.Address } : {}),
        ...(fields.Label ? { Label: fields.Label } : {}),
      };
    }
  }

  const messageId = fields.MessageSid || fields.SmsMessageSid || fields.SmsSid || undefined;
  if (text.trim() === '' && media.length === 0) {
    // Status callbacks (`MessageStatus`) pointed at this URL, and empty messages: Rasa would crash on them.
    const status = fields.MessageStatus ?? fields.SmsStatus;
    return { reason: status && status !== 'received' ? `status callback (${status})` : 'message without Body or media' };
  }
  return { text, senderId, messageId, metadata };
}
