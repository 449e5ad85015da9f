import { OutputChannel, isObject, textWithButtonsToText, type Button, type Element, type HttpClient, type Logger, type SendOptions, splitText as splitAt } from 'switchboard';

export interface InstagramSettings {
  /** `{api_url}/{graph_version}`, without a trailing slash. */
  baseUrl: string;
  pageAccessToken: string;
  typingIndicator: boolean;
  logger: Logger;
}

/** Instagram's limits (Messenger Platform, Instagram features). */
export const MAX_TEXT = 1000;
export const MAX_QUICK_REPLIES = 13;
export const MAX_QUICK_REPLY_TITLE = 20;
export const MAX_GENERIC_ELEMENTS = 10;

/** Answer keys a bot may set to change how the message is delivered (a `HUMAN_AGENT` tag outside the 24 h window). */
const SEND_OPTIONS = ['messaging_type', 'tag'] as const;

/** Instagram's parts of a long text (1000 characters each). */
export function splitText(text: string, limit = MAX_TEXT): string[] {
  return splitAt(text, limit);
}

/** The first `limit` characters of a title, never cutting an emoji (a surrogate pair) in half. */
function cut(title: unknown, limit: number): string {
  return Array.from(String(title)).slice(0, limit).join('');
}

function isPostback(button: Button): boolean {
  return (button.type === undefined || button.type === 'postback') && typeof button.url !== 'string';
}

/** Rasa's rule: a button without a type is a postback button. */
function withType(button: unknown): unknown {
  return isObject(button) && button.type === undefined ? { ...button, type: 'postback' } : button;
}

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/**
 * Instagram through the Messenger Platform's Send API: every answer is one
 * `POST {api_url}/{graph_version}/me/messages?access_token=…` (the token of the Page linked to the Instagram account)
 * with `{recipient: {id: IGSID}, messaging_type: "RESPONSE", message}`, through the host's client (retries, secrets
 * masked in its logs).
 */
export class InstagramOutput extends OutputChannel {
  constructor(
    private readonly http: HttpClient,
    private readonly settings: InstagramSettings,
  ) {
    super();
  }

  override name(): string {
    return 'instagram';
  }

  private async call(recipientId: string, body: Record<string, unknown>, retries?: number): Promise<void> {
    await this.http.post(`${this.settings.baseUrl}/me/messages`, body, {
      query: { access_token: this.settings.pageAccessToken },
      channel: 'instagram',
      recipient: recipientId,
      ...(retries === undefined ? {} : { retries }),
    });
  }

  /** Sends one `message` object. */
  async send(recipientId: string, message: unknown, options: SendOptions = {}): Promise<void> {
    const body: Record<string, unknown> = { recipient: { id: recipientId }, messaging_type: 'RESPONSE' };
    for (const key of SEND_OPTIONS) if (typeof options[key] === 'string') body[key] = options[key];
    await this.call(recipientId, { ...body, message });
  }

  /** Instagram takes at most 1000 characters a message: a longer text is sent in parts, cut at spaces. */
  async sendTextMessage(recipientId: string, text: string, options?: SendOptions): Promise<void> {
    for (const part of splitText(text)) await this.send(recipientId, { text: part }, options);
  }

  override async sendImageUrl(recipientId: string, image: string, options?: SendOptions): Promise<void> {
    await this.send(recipientId, { attachment: { type: 'image', payload: { url: image } } }, options);
  }

  /**
   * Postback buttons (up to 13) become quick replies, which Instagram shows on its apps; link buttons, or more than
   * 13, become the numbered text list. Nothing is dropped.
   */
  override async sendTextWithButtons(recipientId: string, text: string, buttons: Button[], options?: SendOptions): Promise<void> {
    if (buttons.length > 0 && buttons.length <= MAX_QUICK_REPLIES && buttons.every(isPostback)) {
      await this.sendQuickReplies(recipientId, text, buttons, options);
      return;
    }
    await super.sendTextWithButtons(recipientId, text, buttons, options);
  }

  /**
   * `{text, quick_replies: [{content_type: "text", title, payload}]}`: plain text only, titles cut to 20 characters.
   * More than 13 cannot be shown, so they become the numbered text list. The text itself must fit one message: a
   * longer one goes first as text messages, its last part with the quick replies.
   */
  override async sendQuickReplies(recipientId: string, text: string, quickReplies: Button[], options?: SendOptions): Promise<void> {
    if (quickReplies.length === 0 || quickReplies.length > MAX_QUICK_REPLIES) {
      await this.sendTextMessage(recipientId, textWithButtonsToText(text, quickReplies), options);
      return;
    }
    const parts = splitText(text);
    // Instagram needs a text with quick replies: an invisible separator when the bot gave none.
    const last = parts.pop() ?? '\u2063';
    for (const part of parts) await this.send(recipientId, { text: part }, options);
    const replies = quickReplies.map((reply) => ({
      content_type: 'text',
      title: cut(reply.title, MAX_QUICK_REPLY_TITLE),
      payload: String(reply.payload ?? reply.title),
    }));
    await this.send(recipientId, { text: last, quick_replies: replies }, options);
  }

  /** A generic template (carousel), 10 cards a message; untyped buttons become postbacks. */
  override async sendElements(recipientId: string, elements: Element[], options?: SendOptions): Promise<void> {
    const cards = elements.map((element) => (Array.isArray(element.buttons) ? { ...element, buttons: element.buttons.map(withType) } : element));
    for (const group of chunks(cards, MAX_GENERIC_ELEMENTS)) {
      await this.send(recipientId, { attachment: { type: 'template', payload: { template_type: 'generic', elements: group } } }, options);
    }
  }

  /** The JSON is the `message` object, as for Messenger; a list is sent item by item, in order. */
  override async sendCustomJson(recipientId: string, json: unknown, options?: SendOptions): Promise<void> {
    for (const item of Array.isArray(json) ? json : [json]) {
      if (!isObject(item)) {
        this.settings.logger.warn({ type: item === null ? 'null' : typeof item }, 'custom answer is not a JSON object; not sent');
        continue;
      }
      await this.send(recipientId, item, options);
    }
  }

  /** `sender_action: typing_on`, when `typing_indicator` is on. Not retried: the host repeats it anyway. */
  override async sendTyping(recipientId: string): Promise<void> {
    if (!this.settings.typingIndicator) return;
    await this.call(recipientId, { recipient: { id: recipientId }, sender_action: 'typing_on' }, 0);
  }
}
