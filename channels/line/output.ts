import { randomUUID } from 'node:crypto';
import { HttpRequestError, OutputChannel, textWithButtonsToText, type Button, type HttpClient, type Logger, type SendOptions, splitText as splitAt } from 'switchboard';

/** LINE's limits (Messaging API reference). */
export const MAX_TEXT = 5000;
/** Messages in one reply or push call. */
export const MAX_MESSAGES_PER_CALL = 5;
export const MAX_TEMPLATE_ACTIONS = 4;
/** A buttons template's text without a title or image. */
export const MAX_TEMPLATE_TEXT = 160;
export const MAX_QUICK_REPLY_ITEMS = 13;
export const MAX_LABEL = 20;
export const MAX_POSTBACK_DATA = 300;
export const MAX_ALT_TEXT = 400;
export const MAX_URL = 2000;

/** A LINE message object (`{type: "text", text}`, `{type: "image", ...}`, a template...). */
export type LineMessage = Record<string, unknown>;

export interface LineApi {
  /** `https://api.line.me`, without a trailing slash. */
  apiUrl: string;
  accessToken: string;
  typingIndicator: boolean;
  logger: Logger;
  /** How long after the event the reply token is used, in ms; later answers are pushed. */
  replyWindowMs: number;
  /**
   * Takes the reply token for this output: true once per token, across outputs and instances (the host's store), so a
   * token is never sent twice, whichever output rebuilt from the same address answers first.
   */
  claimReplyToken: (token: string) => Promise<boolean>;
  now?: () => number;
}

/** Where one message's answers go: the conversation, and the event's reply token while it may be used. */
export interface LineAddress {
  /** A user, group or room id: the push API's `to`. */
  to: string;
  replyToken?: string | undefined;
  /** When the event was received (ms): the reply token is only tried within `replyWindowMs` of it. */
  receivedAt?: number | undefined;
  /** An unfollow: the user blocked the account, nothing reaches them. */
  blocked?: boolean | undefined;
}

/** LINE's parts of a long text (5000 characters each). */
export function splitText(text: string, limit = MAX_TEXT): string[] {
  return splitAt(text, limit);
}

function isPostback(button: Button): boolean {
  return !(typeof button.url === 'string' && (button.payload === undefined || button.payload === null));
}

/** A Rasa button → a LINE action: a link button opens its URI, any other posts its payload back (shown as the title). */
export function buttonAction(button: Button): Record<string, unknown> {
  const label = String(button.title).slice(0, MAX_LABEL);
  if (!isPostback(button)) return { type: 'uri', label, uri: button.url };
  const title = String(button.title);
  return { type: 'postback', label, data: String(button.payload ?? title), displayText: title };
}

/** Whether LINE would take the button: postback data up to 300 characters, links up to 2000 and http(s) only. */
function fits(button: Button): boolean {
  if (!isPostback(button)) return String(button.url).length <= MAX_URL && /^(https?|line|tel):/i.test(String(button.url));
  return String(button.payload ?? button.title).length <= MAX_POSTBACK_DATA;
}

/**
 * LINE answers a failed call with `{"message": "..."}`; a reply token that expired or was used already is a 400
 * `Invalid reply token`, after which the answer can still be pushed.
 */
function invalidReplyToken(error: unknown): boolean {
  if (!(error instanceof HttpRequestError) || error.status !== 400) return false;
  try {
    return /invalid reply token/i.test(String((JSON.parse(error.responseBody ?? '') as { message?: unknown }).message));
  } catch {
    return false;
  }
}

/**
 * The Messaging API, for one message's answers. Answers are collected as LINE message objects and sent on `flush`
 * (after the bot's last answer): the first five with the reply API (`POST /v2/bot/message/reply`, free of charge) while
 * the event's reply token is fresh and unused, the rest, or all of them when the token is gone, with the push API
 * (`POST /v2/bot/message/push`, counted against the plan's messages), five a call, each with its own
 * `X-Line-Retry-Key` so a retried push cannot be delivered twice.
 */
export class LineOutput extends OutputChannel {
  /** Message objects waiting for `flush`; each leaves the queue once LINE took it. */
  private readonly pending: LineMessage[] = [];
  /** Whether this output has asked for the reply token already: a token carries one reply call. */
  private claimed = false;

  constructor(
    private readonly http: HttpClient,
    private readonly api: LineApi,
    private readonly address: LineAddress,
  ) {
    super();
  }

  override name(): string {
    return 'line';
  }

  /** Queues message objects for the next `flush`. */
  queue(...messages: LineMessage[]): void {
    this.pending.push(...messages);
  }

  /** Messages queued and not yet sent (for tests). */
  get queued(): readonly LineMessage[] {
    return this.pending;
  }

  async sendTextMessage(_recipientId: string, text: string): Promise<void> {
    for (const part of splitText(text)) this.queue({ type: 'text', text: part });
  }

  /** An image message; LINE fetches only HTTPS URLs (up to 2000 characters), so another URL is sent as text. */
  override async sendImageUrl(recipientId: string, image: string, options?: SendOptions): Promise<void> {
    if (!/^https:\/\//i.test(image) || image.length > MAX_URL) {
      this.api.logger.debug({ url: image.slice(0, 100) }, 'image URL is not https (or too long) for LINE; sent as text');
      await super.sendImageUrl(recipientId, image, options);
      return;
    }
    this.queue({ type: 'image', originalContentUrl: image, previewImageUrl: image });
  }

  /**
   * Up to 4 buttons and a text LINE can show in a template (160 characters): a buttons template, its alt text the
   * numbered list (what notifications and old clients show). More, or a longer text: the text with the buttons as
   * quick-reply items (up to 13). Anything else (more than 13, a payload over 300 characters, no text): the numbered
   * text list. Nothing is dropped.
   */
  override async sendTextWithButtons(recipientId: string, text: string, buttons: Button[], options?: SendOptions): Promise<void> {
    if (buttons.length === 0) {
      await this.sendTextMessage(recipientId, text);
      return;
    }
    if (text.trim() === '' || !buttons.every(fits)) {
      await super.sendTextWithButtons(recipientId, text, buttons, options);
      return;
    }
    if (buttons.length <= MAX_TEMPLATE_ACTIONS && text.length <= MAX_TEMPLATE_TEXT) {
      this.queue({
        type: 'template',
        altText: textWithButtonsToText(text, buttons).slice(0, MAX_ALT_TEXT),
        template: { type: 'buttons', text, actions: buttons.map(buttonAction) },
      });
      return;
    }
    await this.sendQuickReplies(recipientId, text, buttons, options);
  }

  /**
   * The text with `quickReply.items` (postback actions, or links) on its last part. LINE shows them only under the
   * last message of a reply, and at most 13: more, or no text to hang them on, become the numbered text list.
   */
  override async sendQuickReplies(recipientId: string, text: string, quickReplies: Button[], options?: SendOptions): Promise<void> {
    const parts = splitText(text);
    if (quickReplies.length === 0) {
      await this.sendTextMessage(recipientId, text);
      return;
    }
    if (parts.length === 0 || quickReplies.length > MAX_QUICK_REPLY_ITEMS || !quickReplies.every(fits)) {
      await super.sendTextWithButtons(recipientId, text, quickReplies, options);
      return;
    }
    const items = quickReplies.map((reply) => ({
      type: 'action',
      ...(typeof reply.image_url === 'string' ? { imageUrl: reply.image_url } : {}),
      action: buttonAction(reply),
    }));
    parts.forEach((part, index) => this.queue({ type: 'text', text: part, ...(index === parts.length - 1 ? { quickReply: { items } } : {}) }));
  }

  /**
   * Custom JSON is one LINE message object, or a list of them, sent as they are (a flex message, a sticker...). An item
   * that is not one (no `type`) falls back to its JSON as text, as on platforms without custom messages.
   */
  override async sendCustomJson(recipientId: string, json: unknown): Promise<void> {
    for (const item of Array.isArray(json) ? json : [json]) {
      if (item !== null && typeof item === 'object' && !Array.isArray(item) && typeof (item as LineMessage).type === 'string') this.queue(item as LineMessage);
      else await super.sendCustomJson(recipientId, item);
    }
  }

  /** The loading animation (one-on-one chats only: LINE has none for groups), shown up to 20 s or until a message. */
  override async sendTyping(recipientId: string): Promise<void> {
    if (!this.api.typingIndicator || this.address.blocked || !recipientId.startsWith('U')) return;
    await this.http.post(`${this.api.apiUrl}/v2/bot/chat/loading/start`, { chatId: recipientId, loadingSeconds: 20 }, {
      bearer: this.api.accessToken,
      channel: 'line',
      recipient: recipientId,
      retries: 0,
    });
  }

  /** Sends what was queued: see the class comment. A failed call leaves its messages queued for the host to retry. */
  override async flush(recipientId: string): Promise<void> {
    if (this.address.blocked) {
      if (this.pending.length > 0) this.api.logger.debug({ messages: this.pending.length }, 'answers to an unfollow are dropped: the user blocked the account');
      this.pending.length = 0;
      return;
    }
    while (this.pending.length > 0) {
      const batch = this.pending.slice(0, MAX_MESSAGES_PER_CALL);
      const token = await this.takeReplyToken();
      if (token !== undefined) {
        try {
          await this.http.post(`${this.api.apiUrl}/v2/bot/message/reply`, { replyToken: token, messages: batch }, { bearer: this.api.accessToken, channel: 'line', recipient: recipientId });
          this.pending.splice(0, batch.length);
          continue;
        } catch (error) {
          if (!invalidReplyToken(error)) throw error;
          this.api.logger.info('the reply token expired or was used; pushing the answers instead');
        }
      }
      await this.push(recipientId, batch);
      this.pending.splice(0, batch.length);
    }
  }

  /**
   * One push call. The retry key makes a retry after a timeout or a 5xx safe: LINE answers a key it has already
   * accepted with 409, which means the messages were delivered.
   */
  private async push(recipientId: string, messages: LineMessage[]): Promise<void> {
    try {
      await this.http.post(`${this.api.apiUrl}/v2/bot/message/push`, { to: recipientId, messages }, {
        bearer: this.api.accessToken,
        headers: { 'X-Line-Retry-Key': randomUUID() },
        idempotent: true,
        channel: 'line',
        recipient: recipientId,
      });
    } catch (error) {
      if (error instanceof HttpRequestError && error.status === 409) {
        this.api.logger.debug({ recipient: recipientId }, 'push already accepted under its retry key');
        return;
      }
      throw error;
    }
  }

  /** The reply token, the first time it is asked for while fresh and not taken by another output; else undefined. */
  private async takeReplyToken(): Promise<string | undefined> {
    if (this.claimed) return undefined;
    this.claimed = true;
    const { replyToken, receivedAt } = this.address;
    const now = (this.api.now ?? Date.now)();
    const fresh = replyToken !== undefined && receivedAt !== undefined && now - receivedAt < this.api.replyWindowMs;
    return fresh && (await this.api.claimReplyToken(replyToken)) ? replyToken : undefined;
  }
}
