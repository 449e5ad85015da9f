import { editInPlace, HttpRequestError, OutputChannel, type BotMessage, type Button, type Element, type HttpClient, type SendOptions, type SentMessage, type StreamingText } from 'switchboard';
import type { TokenCache } from './auth.js';
import type { ReplyContext } from './parse.js';

export const HERO_CARD = 'application/vnd.microsoft.card.hero';

/** Card action types a button may already carry; anything else is turned into one. */
const ACTION_TYPES = new Set(['imBack', 'messageBack', 'postBack', 'openUrl', 'call', 'showImage', 'downloadFile', 'playAudio', 'playVideo', 'signin']);

/**
 * A Rasa button as a card action: a Bot Framework action (`type: "openUrl"`…) passes unchanged; a link opens
 * (`openUrl`); anything else is an `imBack`, which posts its payload back as the user's message.
 */
export function cardAction(button: Button): Record<string, unknown> {
  if (typeof button.type === 'string' && ACTION_TYPES.has(button.type)) return { ...button };
  if (typeof button.url === 'string' && button.url !== '') return { type: 'openUrl', title: button.title, value: button.url };
  return { type: 'imBack', title: button.title, value: button.payload ?? button.title };
}

/** A hero card attachment. */
export function heroCard(content: Record<string, unknown>): Record<string, unknown> {
  return { contentType: HERO_CARD, content };
}

/** A Rasa element (`{title, subtitle, image_url, buttons}`) as a hero card's content. */
export function elementCard(element: Element): Record<string, unknown> {
  const content: Record<string, unknown> = { title: element.title };
  if (typeof element.subtitle === 'string' && element.subtitle !== '') content.subtitle = element.subtitle;
  if (typeof element.image_url === 'string' && element.image_url !== '') content.images = [{ url: element.image_url }];
  if (Array.isArray(element.buttons) && element.buttons.length > 0) content.buttons = element.buttons.map(cardAction);
  return content;
}

export interface BotFrameworkOutputSettings {
  /** `api_url`: replaces the activity's `serviceUrl`. */
  apiUrl: string | undefined;
  typingIndicator: boolean;
}

/**
 * Answers one activity: `POST {serviceUrl}/v3/conversations/{conversation.id}/activities` with the bot's token, each
 * answer a `message` activity from the bot to the user in that conversation. Built per incoming activity, as the
 * service URL, conversation and the bot's own account come with it.
 */
export class BotFrameworkOutput extends OutputChannel {
  constructor(
    private readonly http: HttpClient,
    private readonly tokens: TokenCache,
    private readonly reply: ReplyContext,
    private readonly settings: BotFrameworkOutputSettings,
  ) {
    super();
  }

  override name(): string {
    return 'botframework';
  }

  /** Where activities of this conversation are posted. */
  get activitiesUrl(): string {
    return this.conversationUrl(this.reply.conversation.id);
  }

  /** The fields every answer has, as Rasa sends them (the alert makes Teams notify the user). */
  private defaults(recipientId: string): Record<string, unknown> {
    return {
      type: 'message',
      ...(this.reply.bot ? { from: this.reply.bot } : {}),
      recipient: { id: recipientId },
      conversation: { id: this.reply.conversation.id },
      ...(this.reply.replyToId ? { replyToId: this.reply.replyToId } : {}),
      channelData: { notification: { alert: 'true' } },
      text: '',
    };
  }

  /**
   * Posts one activity (or, with `activityId`, replaces that one: `PUT .../activities/{activityId}`, Bot Framework's
   * updateActivity) → the activity's id when the service answers one. A refused token (401) is renewed and the call
   * tried once more.
   */
  async post(recipientId: string, activity: Record<string, unknown>, retries?: number, activityId?: string): Promise<string | undefined> {
    const response = activityId === undefined
      ? await this.call(recipientId, 'POST', this.activitiesUrl, activity, retries)
      : await this.call(recipientId, 'PUT', `${this.activitiesUrl}/${encodeURIComponent(activityId)}`, { ...activity, id: activityId }, retries);
    const id = response.body !== null && typeof response.body === 'object' ? (response.body as { id?: unknown }).id : undefined;
    return typeof id === 'string' && id !== '' ? id : undefined;
  }

  /** One call to the connector with the bot's token; a refused token (401) is renewed and the call tried once more. */
  private async call(recipientId: string, method: 'POST' | 'PUT' | 'DELETE', url: string, json?: unknown, retries?: number) {
    const send = async () => this.http.request(url, {
      method,
      bearer: await this.tokens.get(),
      channel: 'botframework',
      recipient: recipientId,
      ...(json === undefined ? {} : { json }),
      ...(retries === undefined ? {} : { retries }),
    });
    try {
      return await send();
    } catch (error) {
      if (!(error instanceof HttpRequestError) || error.status !== 401) throw error;
      this.tokens.invalidate();
      return send();
    }
  }

  /** Where activities of a conversation are posted: this one's, or the one a sent message reported. */
  private conversationUrl(conversation = this.reply.conversation.id): string {
    const base = (this.settings.apiUrl ?? this.reply.serviceUrl).replace(/\/+$/, '');
    return `${base}/v3/conversations/${encodeURIComponent(conversation)}/activities`;
  }

  /** Teams refuses a message over ~28 KB. */
  override maxTextLength = 20_000;

  /** updateActivity (`PUT .../activities/{id}`): the activity is replaced by a message with the new text alone. */
  override async editMessage(recipientId: string, message: SentMessage, text: string): Promise<void> {
    const activity = { ...this.defaults(recipientId), ...(message.conversation ? { conversation: { id: message.conversation } } : {}), text, id: message.id };
    await this.call(recipientId, 'PUT', `${this.conversationUrl(message.conversation)}/${encodeURIComponent(message.id)}`, activity);
  }

  /** deleteActivity (`DELETE .../activities/{id}`). */
  override async deleteMessage(recipientId: string, message: SentMessage): Promise<void> {
    await this.call(recipientId, 'DELETE', `${this.conversationUrl(message.conversation)}/${encodeURIComponent(message.id)}`);
  }

  /** Teams takes about one message operation a second per conversation. */
  override streamIntervalMs = 1_500;

  /** A streamed text: the first piece posted, then the activity updated (updateActivity) as it grows. */
  override streamText(recipientId: string): StreamingText {
    return editInPlace({
      // Teams refuses a message over ~28 KB.
      limit: 20_000,
      post: async (text) => {
        const id = await this.post(recipientId, { ...this.defaults(recipientId), text });
        if (id !== undefined) this.reportSent({ id, conversation: this.reply.conversation.id, text: true });
        return id;
      },
      edit: async (id, text) => {
        await this.post(recipientId, { ...this.defaults(recipientId), text }, undefined, id);
      },
      send: (answer: BotMessage) => this.sendResponse(recipientId, answer),
    });
  }

  /** Posts one message activity and reports it for later edits and deletes (`text`: it shows editable text). */
  private async send(recipientId: string, fields: Record<string, unknown>, text = typeof fields.text === 'string' && fields.text !== ''): Promise<void> {
    const id = await this.post(recipientId, { ...this.defaults(recipientId), ...fields });
    if (id !== undefined) this.reportSent({ id, conversation: this.reply.conversation.id, text });
  }

  async sendTextMessage(recipientId: string, text: string, _options?: SendOptions): Promise<void> {
    await this.send(recipientId, { text });
  }

  override async sendImageUrl(recipientId: string, image: string): Promise<void> {
    await this.send(recipientId, { attachments: [heroCard({ images: [{ url: image }] })] });
  }

  /** A hero card with the text as its subtitle and one action per button (as Rasa sends it). */
  override async sendTextWithButtons(recipientId: string, text: string, buttons: Button[], options?: SendOptions): Promise<void> {
    if (buttons.length === 0) {
      if (text.trim() !== '') await this.sendTextMessage(recipientId, text, options);
      return;
    }
    const content: Record<string, unknown> = text === '' ? {} : { subtitle: text };
    content.buttons = buttons.map(cardAction);
    await this.send(recipientId, { attachments: [heroCard(content)] }, text.trim() !== '');
  }

  /** One activity per element, each a hero card. */
  override async sendElements(recipientId: string, elements: Element[]): Promise<void> {
    for (const element of elements) await this.send(recipientId, { attachments: [heroCard(elementCard(element))] });
  }

  /** An attachment already in Bot Framework's shape (`{contentType, content | contentUrl}`) is sent as one; else text. */
  override async sendAttachment(recipientId: string, attachment: unknown, options?: SendOptions): Promise<void> {
    if (attachment !== null && typeof attachment === 'object' && typeof (attachment as { contentType?: unknown }).contentType === 'string') {
      await this.send(recipientId, { attachments: [attachment] });
      return;
    }
    await super.sendAttachment(recipientId, attachment, options);
  }

  /** The JSON is an activity, merged over the defaults (Adaptive Cards, `suggestedActions`, `channelData`…). */
  override async sendCustomJson(recipientId: string, json: unknown, options?: SendOptions): Promise<void> {
    if (json === null || typeof json !== 'object' || Array.isArray(json)) {
      await super.sendCustomJson(recipientId, json, options);
      return;
    }
    await this.send(recipientId, json as Record<string, unknown>);
  }

  /** A `typing` activity, when `typing_indicator` is on. Not retried: the host repeats it while the bot works. */
  override async sendTyping(recipientId: string): Promise<void> {
    if (!this.settings.typingIndicator) return;
    const { text: _text, channelData: _alert, ...fields } = this.defaults(recipientId);
    await this.post(recipientId, { ...fields, type: 'typing' }, 0);
  }
}
