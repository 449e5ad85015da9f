import { OutputChannel, textWithButtonsToText, type Button, type Element, type HttpClient, type SendOptions, splitText as splitAt } from 'switchboard';

export interface MessengerSettings {
  /** `{api_url}/{graph_version}`, without a trailing slash. */
  baseUrl: string;
  pageAccessToken: string;
  typingIndicator: boolean;
}

/** Meta's limits (Send API reference). */
export const MAX_TEXT = 2000;
export const MAX_TEMPLATE_BUTTONS = 3;
export const MAX_QUICK_REPLIES = 13;
export const MAX_QUICK_REPLY_TITLE = 20;
export const MAX_GENERIC_ELEMENTS = 10;

/** Answer keys a bot may set to change how Messenger delivers the message (outside the 24 h window: a `tag`). */
const SEND_OPTIONS = ['messaging_type', 'notification_type', 'tag'] as const;

/** Rasa's rule: a button without a type is a postback button. */
function withType(button: Button): Button {
  return button.type === undefined ? { ...button, type: 'postback' } : button;
}

function isPostback(button: Button): boolean {
  return button.type === undefined || button.type === 'postback';
}

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** Messenger's parts of a long text (2000 characters each). */
export function splitText(text: string, limit = MAX_TEXT): string[] {
  return splitAt(text, limit);
}

/**
 * The Messenger Send API: every answer is one `POST {api_url}/{graph_version}/me/messages?access_token=…` with
 * `{messaging_type, notification_type, recipient: {id}, message}`, through the host's client (retries, secrets
 * masked in its logs).
 */
export class MessengerOutput extends OutputChannel {
  constructor(
    private readonly http: HttpClient,
    private readonly settings: MessengerSettings,
  ) {
    super();
  }

  override name(): string {
    return 'facebook';
  }

  private async call(recipientId: string, body: Record<string, unknown>, retries?: number): Promise<void> {
    await this.http.post(`${this.settings.baseUrl}/me/messages`, body, {
      query: { access_token: this.settings.pageAccessToken },
      channel: 'facebook',
      recipient: recipientId,
      ...(retries === undefined ? {} : { retries }),
    });
  }

  /** Sends one `message` object. */
  async send(recipientId: string, message: unknown, options: SendOptions = {}): Promise<void> {
    const body: Record<string, unknown> = { messaging_type: 'RESPONSE', notification_type: 'REGULAR' };
    for (const key of SEND_OPTIONS) if (typeof options[key] === 'string') body[key] = options[key];
    await this.call(recipientId, { ...body, recipient: { id: recipientId }, message });
  }

  async sendTextMessage(recipientId: string, text: string, options?: SendOptions): Promise<void> {
    for (const part of splitText(text)) await this.send(recipientId, { text: part }, options);
  }

  override async sendImageUrl(recipientId: string, image: string, options?: SendOptions): Promise<void> {
    await this.send(recipientId, { attachment: { type: 'image', payload: { url: image } } }, options);
  }

  /**
   * Up to 3 buttons: a button template. More, all postbacks: quick replies (up to 13), which show every choice;
   * otherwise (links, or more than 13): several button templates of 3, each with the text, as Messenger requires
   * a text in each. Nothing is dropped.
   */
  override async sendTextWithButtons(recipientId: string, text: string, buttons: Button[], options?: SendOptions): Promise<void> {
    if (buttons.length > MAX_TEMPLATE_BUTTONS && buttons.length <= MAX_QUICK_REPLIES && buttons.every(isPostback)) {
      await this.sendQuickReplies(recipientId, text, buttons, options);
      return;
    }
    for (const group of chunks(buttons.map(withType), MAX_TEMPLATE_BUTTONS)) {
      await this.send(recipientId, { attachment: { type: 'template', payload: { template_type: 'button', text, buttons: group } } }, options);
    }
  }

  /**
   * `{text, quick_replies: [{content_type, title, payload, image_url?}]}`. Titles are cut to Meta's 20 characters.
   * More than 13 cannot be shown (and only the last message's quick replies stay visible), so they become the
   * numbered text list instead.
   */
  override async sendQuickReplies(recipientId: string, text: string, quickReplies: Button[], options?: SendOptions): Promise<void> {
    if (quickReplies.length > MAX_QUICK_REPLIES) {
      await this.sendTextMessage(recipientId, textWithButtonsToText(text, quickReplies), options);
      return;
    }
    const replies = quickReplies.map((reply) => {
      const contentType = typeof reply.content_type === 'string' ? reply.content_type : 'text';
      // `user_phone_number` and `user_email` take no title or payload.
      if (contentType !== 'text') return { content_type: contentType };
      return {
        content_type: 'text',
        title: String(reply.title).slice(0, MAX_QUICK_REPLY_TITLE),
        payload: reply.payload ?? reply.title,
        ...(typeof reply.image_url === 'string' ? { image_url: reply.image_url } : {}),
      };
    });
    await this.send(recipientId, { text, quick_replies: replies }, options);
  }

  /** A generic template (carousel), 10 cards a message; untyped buttons become postbacks. */
  override async sendElements(recipientId: string, elements: Element[], options?: SendOptions): Promise<void> {
    const cards = elements.map((element) => (Array.isArray(element.buttons) ? { ...element, buttons: element.buttons.map(withType) } : element));
    for (const group of chunks(cards, MAX_GENERIC_ELEMENTS)) {
      await this.send(recipientId, { attachment: { type: 'template', payload: { template_type: 'generic', elements: group } } }, options);
    }
  }

  /**
   * The JSON is the `message` object, as in Rasa; a `sender: {id}` in it names another recipient. A list is sent as
   * one message per item, in order (Rasa would send the list itself, which the Send API rejects).
   */
  override async sendCustomJson(recipientId: string, json: unknown, options?: SendOptions): Promise<void> {
    const items = Array.isArray(json) ? json : [json];
    let recipient = recipientId;
    const messages = items.map((item) => {
      if (item === null || typeof item !== 'object' || Array.isArray(item) || !('sender' in item)) return item;
      const { sender, ...message } = item as Record<string, unknown>;
      const id = sender !== null && typeof sender === 'object' ? (sender as { id?: unknown }).id : undefined;
      if (typeof id === 'string' || typeof id === 'number') recipient = String(id);
      return message;
    });
    for (const message of messages) await this.send(recipient, message, options);
  }

  /** `sender_action: typing_on`, when `typing_indicator` is on. Not retried: the host repeats it anyway. */
  override async sendTyping(recipientId: string): Promise<void> {
    if (!this.settings.typingIndicator) return;
    await this.call(recipientId, { recipient: { id: recipientId }, sender_action: 'typing_on' }, 0);
  }
}
