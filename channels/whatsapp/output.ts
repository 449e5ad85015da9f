import { OutputChannel, isObject, type Button, type HttpClient, type Logger, type SendOptions, splitText as splitAt } from 'switchboard';

export interface WhatsAppSettings {
  /** `{api_url}/{api_version}/{phone_number_id}`, without a trailing slash. */
  baseUrl: string;
  accessToken: string;
  typingIndicator: boolean;
  /** The incoming message being answered (`wamid.…`): read receipts and typing are shown on it. */
  messageId?: string;
  logger: Logger;
}

/** The Cloud API's limits (Messages API reference). */
export const MAX_TEXT = 4096;
export const MAX_BODY = 1024;
export const MAX_REPLY_BUTTONS = 3;
export const MAX_BUTTON_TITLE = 20;
export const MAX_BUTTON_ID = 256;
export const MAX_LIST_ROWS = 10;
export const MAX_ROW_TITLE = 24;
export const MAX_ROW_ID = 200;
/** The label of the button that opens a list message (at most 20 characters). */
export const LIST_BUTTON = 'Choose';

/** The error the Cloud API answers when the user last wrote more than 24 hours ago (re-engagement message). */
export const WINDOW_ERROR = 131047;

/** WhatsApp's parts of a long text (4096 characters each). */
export function splitText(text: string, limit = MAX_TEXT): string[] {
  return splitAt(text, limit);
}

/** The Graph API error in a failed call's answer: `{error: {code, message, error_data: {details}}}`. */
export function graphError(error: unknown): { code?: number; message?: string; details?: string } | undefined {
  // Read by shape, not `instanceof`: a channel package may hold another copy of the host's classes.
  const responseBody = isObject(error) ? (error as { responseBody?: unknown }).responseBody : undefined;
  if (typeof responseBody !== 'string') return undefined;
  try {
    const body: unknown = JSON.parse(responseBody);
    if (!isObject(body) || !isObject(body.error)) return undefined;
    const { code, message, error_data: data } = body.error;
    return {
      ...(typeof code === 'number' ? { code } : {}),
      ...(typeof message === 'string' ? { message } : {}),
      ...(isObject(data) && typeof data.details === 'string' ? { details: data.details } : {}),
    };
  } catch {
    return undefined;
  }
}

/** The first `limit` characters of a title, never cutting an emoji (a surrogate pair) in half. */
function cut(title: unknown, limit: number): string {
  return Array.from(String(title)).slice(0, limit).join('');
}

/** A button's reply id (its payload, else its title), or undefined for a link button, which WhatsApp cannot reply with. */
function replyId(button: Button): string | undefined {
  if (button.payload === undefined || button.payload === null) return typeof button.url === 'string' ? undefined : String(button.title);
  return String(button.payload);
}

/**
 * The WhatsApp Cloud API: every answer is one `POST {api_url}/{api_version}/{phone_number_id}/messages` with the
 * access token as Bearer and `{messaging_product: "whatsapp", recipient_type: "individual", to, type, <type>: …}`,
 * through the host's client (retries, secrets masked in its logs).
 */
export class WhatsAppOutput extends OutputChannel {
  constructor(
    private readonly http: HttpClient,
    private readonly settings: WhatsAppSettings,
  ) {
    super();
  }

  override name(): string {
    return 'whatsapp';
  }

  private async call(recipientId: string, body: Record<string, unknown>, retries?: number): Promise<void> {
    try {
      await this.http.post(`${this.settings.baseUrl}/messages`, body, {
        bearer: this.settings.accessToken,
        channel: 'whatsapp',
        recipient: recipientId,
        ...(retries === undefined ? {} : { retries }),
      });
    } catch (error) {
      const graph = graphError(error);
      if (graph?.code === WINDOW_ERROR) {
        // Not retried (a 400): free-form answers reach the user only within 24 hours of their last message; past
        // that only a template message can. Said plainly, as the generic failure line does not.
        this.settings.logger.warn(
          { recipient: recipientId, code: graph.code, details: graph.details ?? graph.message, reason: 'outside the 24-hour customer service window' },
          'whatsapp refused the answer: the user last wrote more than 24 hours ago (send a template message instead)',
        );
      }
      throw error;
    }
  }

  /** Sends one message object of `type` to the recipient. */
  async send(recipientId: string, message: Record<string, unknown>): Promise<void> {
    await this.call(recipientId, { messaging_product: 'whatsapp', recipient_type: 'individual', to: recipientId, ...message });
  }

  async sendTextMessage(recipientId: string, text: string): Promise<void> {
    for (const part of splitText(text)) await this.send(recipientId, { type: 'text', text: { body: part } });
  }

  override async sendImageUrl(recipientId: string, image: string): Promise<void> {
    await this.send(recipientId, { type: 'image', image: { link: image } });
  }

  /**
   * Up to 3 buttons: reply buttons (titles cut to 20 characters). Up to 10: a list message, one row each (titles cut
   * to 24). More, a link button, or a payload longer than WhatsApp keeps: the numbered text list. The body of an
   * interactive message holds 1024 characters: a longer text goes first as text messages, its end with the buttons.
   */
  override async sendTextWithButtons(recipientId: string, text: string, buttons: Button[], options?: SendOptions): Promise<void> {
    const ids = buttons.map(replyId);
    const maxId = buttons.length <= MAX_REPLY_BUTTONS ? MAX_BUTTON_ID : MAX_ROW_ID;
    if (buttons.length === 0 || buttons.length > MAX_LIST_ROWS || ids.some((id) => id === undefined || id === '' || id.length > maxId)) {
      await super.sendTextWithButtons(recipientId, text, buttons, options);
      return;
    }
    const parts = splitText(text, MAX_BODY);
    const body = parts.pop() ?? '\u2063';
    for (const part of parts) await this.sendTextMessage(recipientId, part);
    const interactive = buttons.length <= MAX_REPLY_BUTTONS
      ? {
          type: 'button',
          body: { text: body },
          action: { buttons: buttons.map((button, i) => ({ type: 'reply', reply: { id: ids[i]!, title: cut(button.title, MAX_BUTTON_TITLE) } })) },
        }
      : {
          type: 'list',
          body: { text: body },
          action: { button: LIST_BUTTON, sections: [{ rows: buttons.map((button, i) => ({ id: ids[i]!, title: cut(button.title, MAX_ROW_TITLE) })) }] },
        };
    await this.send(recipientId, { type: 'interactive', interactive });
  }

  /**
   * The JSON is the message object (`{type: "template", template: {…}}`, `{type: "location", location: {…}}`), sent
   * with `messaging_product`, `recipient_type` and `to` unless it sets them. A list is sent item by item, in order.
   */
  override async sendCustomJson(recipientId: string, json: unknown): Promise<void> {
    const items = Array.isArray(json) ? json : [json];
    for (const item of items) {
      if (!isObject(item)) {
        this.settings.logger.warn({ type: item === null ? 'null' : typeof item }, 'custom answer is not a JSON object; not sent');
        continue;
      }
      await this.send(typeof item.to === 'string' ? item.to : recipientId, item);
    }
  }

  /**
   * Marks the message being answered as read and shows "typing…" on it (`status: read` with
   * `typing_indicator: {type: text}`): WhatsApp hides it after 25 s or at the answer, and the host repeats it while
   * the bot works. Not retried: the host repeats it anyway.
   */
  override async sendTyping(recipientId: string): Promise<void> {
    if (!this.settings.typingIndicator || this.settings.messageId === undefined) return;
    await this.call(recipientId, { messaging_product: 'whatsapp', status: 'read', message_id: this.settings.messageId, typing_indicator: { type: 'text' } }, 0);
  }
}
