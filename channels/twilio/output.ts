import { OutputChannel, type BotMessage, type HttpClient, type SendOptions, splitText as splitAt } from 'switchboard';

export interface TwilioSettings {
  /** `{api_url}`, without a trailing slash. */
  apiUrl: string;
  accountSid: string;
  authToken: string;
  /** `+14155551234` or `whatsapp:+14155238886`. */
  twilioNumber: string;
  /** When set, messages are sent from the Messaging Service instead of `twilio_number`. */
  messagingServiceSid?: string | undefined;
}

/** Twilio's limit on `Body` (SMS concatenation and WhatsApp alike). */
export const MAX_BODY = 1600;

/** A Twilio API form: a repeated name (`MediaUrl`) is a list. */
export type TwilioForm = Record<string, string | string[]>;

/** Twilio's parts of a long text (1600 characters each). */
export function splitText(text: string, limit = MAX_BODY): string[] {
  return splitAt(text, limit);
}

/** `media_url` → `MediaUrl`, `from_` → `From`: the Python library's argument names as the REST API's. */
export function apiName(name: string): string {
  if (/^[A-Z]/.test(name)) return name;
  return name
    .replace(/_+$/, '')
    .split('_')
    .filter((word) => word !== '')
    .map((word) => word[0]!.toUpperCase() + word.slice(1))
    .join('');
}

function formValue(value: unknown): string | string[] | undefined {
  if (value === undefined || value === null) return undefined;
  if (Array.isArray(value)) return value.filter((item) => item !== undefined && item !== null).map((item) => (typeof item === 'object' ? JSON.stringify(item) : String(item)));
  // `content_variables` is a JSON string in the API; a bot naturally writes it as a mapping.
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

/**
 * Twilio's Messages API: every answer is one `POST {api_url}/2010-04-01/Accounts/{sid}/Messages.json`, form
 * encoded, with basic auth (account sid, auth token), through the host's client (retries, secrets masked in logs).
 */
export class TwilioOutput extends OutputChannel {
  constructor(
    private readonly http: HttpClient,
    private readonly settings: TwilioSettings,
  ) {
    super();
  }

  override name(): string {
    return 'twilio';
  }

  /** A WhatsApp channel answers WhatsApp addresses: `whatsapp:` is added to a bare number. */
  recipient(recipientId: string): string {
    const whatsapp = this.settings.twilioNumber.startsWith('whatsapp:');
    return whatsapp && !recipientId.includes(':') ? `whatsapp:${recipientId}` : recipientId;
  }

  /** Who the message is from: the Messaging Service when configured, else `twilio_number`. */
  private sender(): TwilioForm {
    return this.settings.messagingServiceSid ? { MessagingServiceSid: this.settings.messagingServiceSid } : { From: this.settings.twilioNumber };
  }

  /** Sends one message; `form` holds its content (`Body`, `MediaUrl`, …) and may override `To` and `From`. */
  async send(recipientId: string, form: TwilioForm): Promise<void> {
    const { apiUrl, accountSid, authToken } = this.settings;
    const fields: TwilioForm = { To: this.recipient(recipientId), ...this.sender(), ...form };
    // Both would be rejected by Twilio (21603): an explicit one in the answer wins.
    if ('MessagingServiceSid' in form && !('From' in form)) delete fields.From;
    if ('From' in form && !('MessagingServiceSid' in form)) delete fields.MessagingServiceSid;
    await this.http.request(`${apiUrl}/2010-04-01/Accounts/${encodeURIComponent(accountSid)}/Messages.json`, {
      method: 'POST',
      form: fields,
      basicAuth: { username: accountSid, password: authToken },
      channel: 'twilio',
      recipient: String(fields.To),
    });
  }

  async sendTextMessage(recipientId: string, text: string): Promise<void> {
    for (const part of splitText(text)) await this.send(recipientId, { Body: part });
  }

  override async sendImageUrl(recipientId: string, image: string): Promise<void> {
    await this.send(recipientId, { MediaUrl: [image] });
  }

  /**
   * A text and an image in one answer go out as one MMS / WhatsApp media message with a caption, when the text is a
   * single message (no buttons, no blank-line parts, within the limit) and nothing must come between them.
   */
  override async sendResponse(recipientId: string, message: BotMessage): Promise<void> {
    const text = typeof message.text === 'string' ? message.text.trim() : '';
    const choices = (Array.isArray(message.buttons) && message.buttons.length > 0) || (Array.isArray(message.quick_replies) && message.quick_replies.length > 0);
    const custom = message.custom !== undefined && message.custom !== null;
    if (typeof message.image === 'string' && message.image !== '' && text !== '' && !choices && !custom && !/\n\s*\n/.test(text) && text.length <= MAX_BODY) {
      await this.send(recipientId, { Body: text, MediaUrl: [message.image] });
      const { text: _text, image: _image, ...rest } = message;
      await super.sendResponse(recipientId, rest);
      return;
    }
    await super.sendResponse(recipientId, message);
  }

  /**
   * The JSON holds `messages.create` arguments, by the Python library's names (`body`, `media_url`, `from_`,
   * `messaging_service_sid`, `content_sid`, …) as in Rasa, or the REST API's own (`Body`, `MediaUrl`, …). Defaults as
   * in Rasa: `To` the recipient, `Body` empty unless there is media (or a content template), `From` the number unless
   * a Messaging Service is named. A list is one message per item; anything but an object is sent as JSON text.
   */
  override async sendCustomJson(recipientId: string, json: unknown, options?: SendOptions): Promise<void> {
    const items = Array.isArray(json) ? json : [json];
    for (const item of items) {
      if (item === null || typeof item !== 'object' || Array.isArray(item)) {
        await super.sendCustomJson(recipientId, item, options);
        continue;
      }
      const form: TwilioForm = {};
      for (const [key, value] of Object.entries(item as Record<string, unknown>)) {
        const field = formValue(value);
        if (field !== undefined) form[apiName(key)] = field;
      }
      if (form.MediaUrl !== undefined && !Array.isArray(form.MediaUrl)) form.MediaUrl = [form.MediaUrl];
      if (form.MediaUrl === undefined && form.ContentSid === undefined) form.Body ??= '';
      const to = typeof form.To === 'string' ? form.To : recipientId;
      delete form.To;
      await this.send(to, form);
    }
  }
}
