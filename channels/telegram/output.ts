import { editInPlace, OutputChannel, type BotMessage, type Button, type HttpClient, type Logger, type SendOptions, type SentMessage, type StreamingText, splitText as splitAt } from 'switchboard';

/** Telegram's limit on a message's text. */
export const MAX_TEXT_LENGTH = 4096;
/** Telegram's limit on a button's `callback_data`, in bytes. */
const MAX_CALLBACK_DATA_BYTES = 64;

export interface TelegramApi {
  /** `https://api.telegram.org`, or a self-hosted Bot API server. */
  apiUrl: string;
  accessToken: string;
  typingIndicator: boolean;
  logger: Logger;
}

/** Telegram's parts of a long text (4096 characters each). */
export function splitText(text: string, limit = MAX_TEXT_LENGTH): string[] {
  return splitAt(text, limit);
}

/**
 * Keys of a custom JSON answer that pick a Bot API method, in Rasa's order; every set whose keys are all present
 * fires, its keys taken out. The keys no set takes (`caption`, `parse_mode`, `reply_markup`...) go with every call.
 */
const CUSTOM_METHODS: Array<[string[], string]> = [
  [['text'], 'sendMessage'],
  [['photo'], 'sendPhoto'],
  [['audio'], 'sendAudio'],
  [['document'], 'sendDocument'],
  [['sticker'], 'sendSticker'],
  [['video'], 'sendVideo'],
  [['video_note'], 'sendVideoNote'],
  [['animation'], 'sendAnimation'],
  [['voice'], 'sendVoice'],
  [['media'], 'sendMediaGroup'],
  [['latitude', 'longitude', 'title', 'address'], 'sendVenue'],
  [['latitude', 'longitude'], 'sendLocation'],
  [['phone_number', 'first_name'], 'sendContact'],
  [['game_short_name'], 'sendGame'],
  [['action'], 'sendChatAction'],
  // Rasa's invoice set misspells `description`, so it never fires there; here it does (provider_token is optional
  // for payments in Telegram Stars, so it is a parameter, not a key of the set).
  [['title', 'description', 'payload', 'currency', 'prices'], 'sendInvoice'],
];

/** The calls a custom JSON answer makes: `[method, parameters]`, without `chat_id`. Pure. */
export function customCalls(json: Record<string, unknown>): Array<[string, Record<string, unknown>]> {
  const remaining = { ...json };
  delete remaining.chat_id;
  const picked: Array<[string, Record<string, unknown>]> = [];
  for (const [keys, method] of CUSTOM_METHODS) {
    if (!keys.every((key) => remaining[key] !== undefined && remaining[key] !== null)) continue;
    const params: Record<string, unknown> = {};
    for (const key of keys) {
      params[key] = remaining[key];
      delete remaining[key];
    }
    picked.push([method, params]);
  }
  return picked.map(([method, params]) => [method, { ...remaining, ...params }]);
}

type Row = Array<Record<string, unknown>>;

/**
 * Rasa's keyboard layouts: `inline` is one row of every button, `vertical` and `reply` one button per row. A reply
 * keyboard's `buttons` may also hold rows (lists of buttons), each kept as one row, a single button beside them
 * still on its own row; rows are accepted for the inline keyboards too (Rasa has no layout for them there).
 */
function buttonRows(buttons: Array<Button | Button[]>, oneRow: boolean, render: (button: Button) => Record<string, unknown>): Row[] {
  if (buttons.some((button) => Array.isArray(button))) {
    return buttons.map((row) => (Array.isArray(row) ? row : [row]).map(render));
  }
  const flat = buttons as Button[];
  return oneRow ? [flat.map(render)] : flat.map((button) => [render(button)]);
}

function inlineButton(button: Button): Record<string, unknown> {
  if (typeof button.url === 'string' && (button.payload === undefined || button.payload === null)) return { text: button.title, url: button.url };
  return { text: button.title, callback_data: String(button.payload ?? button.title) };
}

/** Methods whose second call changes nothing: retried even when the first may have arrived (a timeout, a 500). */
const IDEMPOTENT_METHODS = new Set(['setWebhook', 'deleteWebhook', 'getMe', 'getWebhookInfo', 'sendChatAction']);

/**
 * Telegram's flood control answers 429 with the wait in the body, not in a header:
 * `{"ok": false, "error_code": 429, "description": "Too Many Requests: retry after 5", "parameters": {"retry_after": 5}}`.
 */
export function telegramRetryAfter(body: unknown): number | undefined {
  if (body === null || typeof body !== 'object') return undefined;
  const parameters = (body as { parameters?: unknown }).parameters;
  if (parameters === null || typeof parameters !== 'object') return undefined;
  const seconds = (parameters as { retry_after?: unknown }).retry_after;
  return typeof seconds === 'number' && Number.isFinite(seconds) && seconds >= 0 ? seconds : undefined;
}

/** Sends the bot's answers to one Telegram chat: `POST {api_url}/bot<token>/<method>`. */
export class TelegramOutput extends OutputChannel {
  constructor(
    private readonly http: HttpClient,
    private readonly api: TelegramApi,
  ) {
    super();
  }

  override name(): string {
    return 'telegram';
  }

  /** Calls a Bot API method. The token is in the path: the host's client masks it wherever it logs the URL. */
  async call(method: string, params: Record<string, unknown>, recipient?: string, options: { signal?: AbortSignal; retries?: number } = {}): Promise<unknown> {
    const response = await this.http.post<{ result?: unknown }>(`${this.api.apiUrl}/bot${this.api.accessToken}/${method}`, params, {
      ...options,
      channel: 'telegram',
      recipient,
      // The Bot API answers `{"ok": false, "description": ...}` on failure, normally with a 4xx; a 200 with ok:false
      // is a failure too.
      check: (body) => (body !== null && typeof body === 'object' && (body as { ok?: unknown }).ok === false
        ? { error: String((body as { description?: unknown }).description ?? 'ok: false'), retry: false }
        : undefined),
      retryAfter: telegramRetryAfter,
      idempotent: IDEMPOTENT_METHODS.has(method),
    });
    const result = (response.body as { result?: unknown } | undefined)?.result;
    if (method.startsWith('send') && method !== 'sendChatAction') this.sentMessages(method, params.chat_id, result);
    return result;
  }

  /** Reports the messages a `send*` call made (one, or a media group's several) for later edits and deletes. */
  private sentMessages(method: string, chatId: unknown, result: unknown): void {
    for (const message of Array.isArray(result) ? result : [result]) {
      const id = (message as { message_id?: unknown } | null)?.message_id;
      if (typeof id !== 'number' && typeof id !== 'string') continue;
      this.reportSent({ id: String(id), conversation: String(chatId), text: method === 'sendMessage' });
    }
  }

  /** Telegram's longest message. */
  override maxTextLength = MAX_TEXT_LENGTH;

  /** `editMessageText`: the message shows the new text alone (its inline keyboard goes). */
  override async editMessage(recipientId: string, message: SentMessage, text: string): Promise<void> {
    await this.call('editMessageText', { chat_id: message.conversation ?? recipientId, message_id: Number(message.id), text }, recipientId);
  }

  /** `deleteMessage`: Telegram lets a bot delete its own messages for 48 hours. */
  override async deleteMessage(recipientId: string, message: SentMessage): Promise<void> {
    await this.call('deleteMessage', { chat_id: message.conversation ?? recipientId, message_id: Number(message.id) }, recipientId);
  }

  async sendTextMessage(recipientId: string, text: string): Promise<void> {
    for (const part of splitText(text)) await this.call('sendMessage', { chat_id: recipientId, text: part }, recipientId);
  }

  /** Telegram lets a bot edit a message in a chat about once a second. */
  override streamIntervalMs = 1_000;

  /** A streamed text: `sendMessage` with the first piece, then `editMessageText` as it grows. */
  override streamText(recipientId: string): StreamingText {
    return editInPlace({
      limit: MAX_TEXT_LENGTH,
      post: async (text) => {
        const sent = (await this.call('sendMessage', { chat_id: recipientId, text }, recipientId)) as { message_id?: unknown } | undefined;
        return sent?.message_id === undefined ? undefined : String(sent.message_id);
      },
      edit: async (id, text) => {
        await this.call('editMessageText', { chat_id: recipientId, message_id: Number(id), text }, recipientId);
      },
      send: (answer: BotMessage) => this.sendResponse(recipientId, answer),
    });
  }

  override async sendImageUrl(recipientId: string, image: string): Promise<void> {
    await this.call('sendPhoto', { chat_id: recipientId, photo: image }, recipientId);
  }

  /** Buttons as a keyboard chosen by the answer's `button_type`: `inline` (default), `vertical` or `reply`. */
  override async sendTextWithButtons(recipientId: string, text: string, buttons: Button[], options: SendOptions = {}): Promise<void> {
    const type = options.button_type ?? 'inline';
    let replyMarkup: Record<string, unknown>;
    if (type === 'reply') {
      // A reply keyboard sends the button's title as the user's text, not its payload (as in Rasa).
      replyMarkup = { keyboard: buttonRows(buttons, false, (button) => ({ text: button.title })), resize_keyboard: true, one_time_keyboard: true };
    } else {
      if (type !== 'inline' && type !== 'vertical') {
        this.api.logger.warn({ button_type: type }, 'unknown button_type (inline, vertical or reply); sending an inline keyboard');
      }
      const tooLong = (buttons.flat() as Button[]).filter((button) => Buffer.byteLength(String(button.payload ?? button.title), 'utf8') > MAX_CALLBACK_DATA_BYTES && typeof button.url !== 'string');
      if (tooLong.length > 0) {
        // Telegram refuses the whole message when one callback_data is over 64 bytes: send the buttons as text.
        this.api.logger.warn({ buttons: tooLong.map((button) => button.title) }, 'button payload longer than 64 bytes; sending the buttons as text');
        await super.sendTextWithButtons(recipientId, text, buttons.flat() as Button[]);
        return;
      }
      replyMarkup = { inline_keyboard: buttonRows(buttons, type !== 'vertical', inlineButton) };
    }
    const parts = splitText(text);
    // The keyboard goes with the last part of a long text. Telegram needs some text with a keyboard.
    if (parts.length === 0) parts.push(buttons.length > 0 ? '\u2063' : '');
    for (const [index, part] of parts.entries()) {
      const last = index === parts.length - 1;
      await this.call('sendMessage', { chat_id: recipientId, text: part, ...(last ? { reply_markup: replyMarkup } : {}) }, recipientId);
    }
  }

  /** Custom JSON picks the Bot API method by its keys (see `customCalls`); `chat_id` overrides the recipient. */
  override async sendCustomJson(recipientId: string, json: unknown): Promise<void> {
    if (json === null || typeof json !== 'object' || Array.isArray(json)) {
      this.api.logger.warn({ type: Array.isArray(json) ? 'array' : typeof json }, 'custom answer is not a JSON object; not sent');
      return;
    }
    const object = json as Record<string, unknown>;
    const chatId = object.chat_id ?? recipientId;
    const calls = customCalls(object);
    if (calls.length === 0) {
      this.api.logger.warn({ keys: Object.keys(object) }, 'custom answer has no keys that pick a Telegram method; not sent');
      return;
    }
    for (const [method, params] of calls) await this.call(method, { chat_id: chatId, ...params }, recipientId);
  }

  override async sendTyping(recipientId: string): Promise<void> {
    if (!this.api.typingIndicator) return;
    await this.call('sendChatAction', { chat_id: recipientId, action: 'typing' }, recipientId);
  }
}
