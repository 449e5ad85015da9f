import { editInPlace, OutputChannel, isObject, splitText as splitAt, type BotMessage, type Button, type Element, type HttpClient, type Logger, type SendOptions, type SentMessage, type StreamingText } from 'switchboard';

export interface DiscordSettings {
  /** `{api_url}/v10/webhooks/{application_id}/{interaction token}`: the interaction's follow-up webhook. */
  webhookUrl: string;
  logger: Logger;
  /**
   * Settles once Discord has been sent our answer to the interaction (the deferred response). A follow-up must not
   * overtake it: Discord knows the interaction's webhook only once the interaction is acknowledged.
   */
  acknowledged?: Promise<void>;
}

/** Discord's limits (Message resource, Components reference). */
export const MAX_CONTENT = 2000;
export const MAX_BUTTONS_PER_ROW = 5;
export const MAX_ROWS = 5;
export const MAX_LABEL = 80;
export const MAX_CUSTOM_ID = 100;
export const MAX_EMBED_TITLE = 256;
export const MAX_EMBED_DESCRIPTION = 4096;

/** Component types and button styles. */
const ACTION_ROW = 1;
const BUTTON = 2;
const PRIMARY = 1;
const LINK = 5;

/**
 * Every message we make says which mentions may ping: none. The bot often repeats what users typed, and an echoed
 * `@everyone` must not notify a whole server (Discord's advice for responses carrying user data).
 */
const NO_MENTIONS = { parse: [] as string[] };

/** Discord's errors that mean the interaction token is no longer usable: Invalid Webhook Token, Unknown Webhook. */
export const EXPIRED_TOKEN_CODES = new Set([50027, 10015]);

/** Discord's parts of a long text (2000 characters each). */
export function splitText(text: string, limit = MAX_CONTENT): string[] {
  return splitAt(text, limit);
}

/** The first `limit` characters, never cutting an emoji (a surrogate pair) in half. */
function cut(text: unknown, limit: number): string {
  return Array.from(String(text)).slice(0, limit).join('');
}

/** Discord's error body (`{message, code, retry_after?, global?}`) in a failed call's answer, read by shape. */
export function discordError(error: unknown): { code?: number; message?: string } | undefined {
  const responseBody = isObject(error) ? (error as { responseBody?: unknown }).responseBody : undefined;
  if (typeof responseBody !== 'string') return undefined;
  try {
    const body: unknown = JSON.parse(responseBody);
    if (!isObject(body)) return undefined;
    return {
      ...(typeof body.code === 'number' ? { code: body.code } : {}),
      ...(typeof body.message === 'string' ? { message: body.message } : {}),
    };
  } catch {
    return undefined;
  }
}

/** A 429's wait in its body (`retry_after`, seconds, fractional), for when the `Retry-After` header is missing. */
export function discordRetryAfter(body: unknown): number | undefined {
  return isObject(body) && typeof body.retry_after === 'number' && body.retry_after >= 0 ? body.retry_after : undefined;
}

/** A Rasa button as a Discord button: a link (`url`, style 5) or one whose click sends `payload` back as custom_id. */
function buttonComponent(button: Button): Record<string, unknown> | undefined {
  const label = cut(button.title ?? button.payload ?? '', MAX_LABEL);
  if ((button.payload === undefined || button.payload === null) && typeof button.url === 'string') return { type: BUTTON, style: LINK, label, url: button.url };
  const customId = button.payload === undefined || button.payload === null ? String(button.title ?? '') : String(button.payload);
  // A custom_id must be 1-100 characters: a longer payload could not come back whole.
  if (customId === '' || customId.length > MAX_CUSTOM_ID) return undefined;
  return { type: BUTTON, style: PRIMARY, label, custom_id: customId };
}

/**
 * Buttons as action rows (type 1) of at most 5 buttons, at most 5 rows; undefined when they cannot all be shown (more
 * than 25, a payload Discord cannot carry, two with the same payload), so the caller falls back to text.
 */
export function actionRows(buttons: readonly Button[]): Array<Record<string, unknown>> | undefined {
  if (buttons.length === 0 || buttons.length > MAX_BUTTONS_PER_ROW * MAX_ROWS) return undefined;
  const components = buttons.map(buttonComponent);
  if (components.some((c) => c === undefined)) return undefined;
  // Discord refuses a message whose custom_ids repeat.
  const ids = components.map((c) => c!.custom_id).filter((id) => id !== undefined);
  if (new Set(ids).size !== ids.length) return undefined;
  const rows: Array<Record<string, unknown>> = [];
  for (let i = 0; i < components.length; i += MAX_BUTTONS_PER_ROW) {
    rows.push({ type: ACTION_ROW, components: components.slice(i, i + MAX_BUTTONS_PER_ROW) });
  }
  return rows;
}

/**
 * The answers to one interaction, each a follow-up message: `POST {api_url}/v10/webhooks/{application_id}/{token}`.
 * The interaction token in the path is the only authorisation (no bot token), and it is valid for 15 minutes.
 */
export class DiscordOutput extends OutputChannel {
  constructor(
    private readonly http: HttpClient,
    private readonly settings: DiscordSettings,
  ) {
    super();
  }

  override name(): string {
    return 'discord';
  }

  /**
   * Sends one message object to the follow-up webhook → the new message's id (Discord answers the message), reported
   * for later edits and deletes.
   */
  async send(recipientId: string, message: Record<string, unknown>): Promise<string | undefined> {
    if (this.settings.acknowledged) await this.settings.acknowledged;
    try {
      const response = await this.http.post(this.settings.webhookUrl, message, { channel: 'discord', recipient: recipientId, retryAfter: discordRetryAfter });
      const id = isObject(response.body) && typeof response.body.id === 'string' && response.body.id !== '' ? response.body.id : undefined;
      if (id !== undefined) {
        const text = typeof message.content === 'string' && message.content !== '' && !Array.isArray(message.embeds);
        this.reportSent({ id, conversation: this.token, text });
      }
      return id;
    } catch (error) {
      const discord = discordError(error);
      if (discord?.code !== undefined && EXPIRED_TOKEN_CODES.has(discord.code)) {
        // Said plainly: the usual cause is a bot (or a backlog) slower than Discord's 15 minutes.
        this.settings.logger.warn(
          { recipient: recipientId, code: discord.code, details: discord.message, reason: 'interaction token expired or unknown' },
          'discord refused the answer: the interaction token is no longer valid (it lasts 15 minutes)',
        );
      }
      throw error;
    }
  }

  async sendTextMessage(recipientId: string, text: string): Promise<void> {
    for (const part of splitText(text)) await this.send(recipientId, { content: part, allowed_mentions: NO_MENTIONS });
  }

  /** The interaction token: the last part of the follow-up webhook's URL. */
  private get token(): string {
    return this.settings.webhookUrl.slice(this.settings.webhookUrl.lastIndexOf('/') + 1);
  }

  /** A message of the follow-up webhook of the interaction whose token is `token` (default: this one's). */
  private messageUrl(id: string, token = this.token): string {
    // Another interaction's token (an answer sent for an earlier one) is masked in the client's logs like this one's.
    if (token !== this.token) this.http.addSecret(token);
    const base = this.settings.webhookUrl.slice(0, this.settings.webhookUrl.lastIndexOf('/') + 1);
    return `${base}${token}/messages/${encodeURIComponent(id)}`;
  }

  /** Discord's limit on a message's content. */
  override maxTextLength = MAX_CONTENT;

  /** A webhook takes about five calls in two seconds: one edit a second leaves room for the answers around it. */
  override streamIntervalMs = 1_000;

  /** A streamed text: a follow-up message with the first piece, then `PATCH .../messages/{id}` as it grows. */
  override streamText(recipientId: string): StreamingText {
    return editInPlace({
      limit: MAX_CONTENT,
      post: (text) => this.send(recipientId, { content: text, allowed_mentions: NO_MENTIONS }),
      edit: (id, text) => this.editMessage(recipientId, { id, text: true }, text),
      send: (answer: BotMessage) => this.sendResponse(recipientId, answer),
    });
  }

  /**
   * `PATCH .../messages/{id}` of the interaction that sent it: the message shows the text alone (embeds and buttons
   * go). Discord accepts it while the interaction's token lasts (15 minutes).
   */
  override async editMessage(recipientId: string, message: SentMessage, text: string): Promise<void> {
    const body = { content: text, embeds: [], components: [], allowed_mentions: NO_MENTIONS };
    await this.http.request(this.messageUrl(message.id, message.conversation), { method: 'PATCH', json: body, channel: 'discord', recipient: recipientId, retryAfter: discordRetryAfter });
  }

  /** `DELETE .../messages/{id}`, while the interaction's token lasts (15 minutes). */
  override async deleteMessage(recipientId: string, message: SentMessage): Promise<void> {
    await this.http.request(this.messageUrl(message.id, message.conversation), { method: 'DELETE', channel: 'discord', recipient: recipientId, retryAfter: discordRetryAfter });
  }

  override async sendImageUrl(recipientId: string, image: string): Promise<void> {
    await this.send(recipientId, { embeds: [{ image: { url: image } }], allowed_mentions: NO_MENTIONS });
  }

  /**
   * Up to 25 buttons as action rows under the text; more, or a payload over 100 characters: the numbered text list.
   * A text over 2000 characters goes first as plain messages, its end with the buttons.
   */
  override async sendTextWithButtons(recipientId: string, text: string, buttons: Button[], options?: SendOptions): Promise<void> {
    const rows = actionRows(buttons);
    if (!rows) {
      await super.sendTextWithButtons(recipientId, text, buttons, options);
      return;
    }
    const parts = splitText(text);
    const last = parts.pop();
    for (const part of parts) await this.sendTextMessage(recipientId, part);
    await this.send(recipientId, { ...(last !== undefined ? { content: last } : {}), components: rows, allowed_mentions: NO_MENTIONS });
  }

  /** Each card as an embed (title, subtitle as its description, image), with its buttons as action rows. */
  override async sendElements(recipientId: string, elements: Element[], options?: SendOptions): Promise<void> {
    for (const element of elements) {
      const buttons = element.buttons ?? [];
      const rows = buttons.length > 0 ? actionRows(buttons) : [];
      if (!rows) {
        await super.sendElements(recipientId, [element], options);
        continue;
      }
      const embed: Record<string, unknown> = { title: cut(element.title ?? '', MAX_EMBED_TITLE) };
      if (element.subtitle) embed.description = cut(element.subtitle, MAX_EMBED_DESCRIPTION);
      if (typeof element.image_url === 'string' && element.image_url !== '') embed.image = { url: element.image_url };
      await this.send(recipientId, { embeds: [embed], ...(rows.length > 0 ? { components: rows } : {}), allowed_mentions: NO_MENTIONS });
    }
  }

  /**
   * The JSON is the follow-up message itself (`{content, embeds, components, flags, allowed_mentions…}`), sent as it
   * is; a list is sent item by item. Anything that is not an object falls back to text.
   */
  override async sendCustomJson(recipientId: string, json: unknown, options?: SendOptions): Promise<void> {
    const items = Array.isArray(json) ? json : [json];
    for (const item of items) {
      if (isObject(item)) await this.send(recipientId, item);
      else await super.sendCustomJson(recipientId, item, options);
    }
  }
}
