import { editInPlace, OutputChannel, type BotMessage, type Button, type Element, type HttpClient, type SendOptions, type SentMessage, type StreamingText } from 'switchboard';

/** Where the answers to one message go. */
export interface SlackTarget {
  token: string;
  /** `{api_url}`, without a trailing slash. */
  apiUrl: string;
  /** The channel to post in; when unset, the recipient id is used (a user id opens a DM). */
  channel: string | undefined;
  /** Set when answering in a thread (`use_threads`). */
  threadTs: string | undefined;
}

/** Slack takes at most 25 elements in one `actions` block, and 75 characters of button text. */
const MAX_ACTIONS = 25;
const MAX_BUTTON_TEXT = 75;

type Block = Record<string, unknown>;

function plain(text: string): { type: 'plain_text'; text: string } {
  return { type: 'plain_text', text };
}

/** A Rasa button as a Block Kit button: `payload` comes back as the block_actions `value`; a `url` makes a link. */
export function buttonElement(button: Button): Block {
  const title = String(button.title ?? button.payload ?? '');
  const element: Block = { type: 'button', text: plain(title.length > MAX_BUTTON_TEXT ? `${title.slice(0, MAX_BUTTON_TEXT - 1)}…` : title) };
  if (button.payload !== undefined && button.payload !== null) element.value = String(button.payload);
  if (typeof button.url === 'string') element.url = button.url;
  return element;
}

/** Buttons as `actions` blocks of at most 25 buttons each: more are split, never dropped. */
export function actionsBlocks(buttons: readonly Button[]): Block[] {
  const blocks: Block[] = [];
  for (let i = 0; i < buttons.length; i += MAX_ACTIONS) {
    blocks.push({ type: 'actions', elements: buttons.slice(i, i + MAX_ACTIONS).map(buttonElement) });
  }
  return blocks;
}

/** Slack reports failures as HTTP 200 `{"ok": false, "error": ...}`; `ratelimited` is worth another try. */
export function slackCheck(body: unknown): { error: string; retry: boolean } | undefined {
  if (body === null || typeof body !== 'object' || (body as { ok?: unknown }).ok !== false) return undefined;
  const error = String((body as { error?: unknown }).error ?? 'unknown_error');
  return { error, retry: error === 'ratelimited' };
}

/**
 * Slack's rate limit is an HTTP 429 with `Retry-After` (which the client honours first); a `ratelimited` answer
 * without that header still waits a second, Slack's pace for posting messages, rather than a short backoff.
 */
export function slackRetryAfter(body: unknown): number | undefined {
  return body !== null && typeof body === 'object' && (body as { error?: unknown }).error === 'ratelimited' ? 1 : undefined;
}

/** The bot's answers to one Slack message, each a `chat.postMessage` call through the shared client. */
export class SlackOutput extends OutputChannel {
  constructor(
    private readonly http: HttpClient,
    private readonly target: SlackTarget,
  ) {
    super();
  }

  override name(): string {
    return 'slack';
  }

  /** `channel` (and `thread_ts`) first, so a custom payload can override them. */
  private base(recipientId: string): Record<string, unknown> {
    return { channel: this.target.channel ?? recipientId, ...(this.target.threadTs ? { thread_ts: this.target.threadTs } : {}) };
  }

  /** Calls a Web API method; a `chat.postMessage` that made a message reports it (`text`: it shows editable text). */
  private async postMessage(recipientId: string, body: Record<string, unknown>, method = 'chat.postMessage', text = true): Promise<unknown> {
    const response = await this.http.post(`${this.target.apiUrl}/${method}`, body, {
      bearer: this.target.token,
      channel: 'slack',
      recipient: recipientId,
      check: slackCheck,
      retryAfter: slackRetryAfter,
    });
    const answer = response.body as { channel?: unknown; ts?: unknown } | undefined;
    if (method === 'chat.postMessage' && typeof answer?.ts === 'string') {
      this.reportSent({ id: answer.ts, conversation: typeof answer.channel === 'string' ? answer.channel : String(body.channel), text });
    }
    return response.body;
  }

  /** What Slack advises as a message's longest text. */
  override maxTextLength = 4_000;

  /** `chat.update` of the message by its channel and `ts`: the new text alone (its blocks and attachments removed). */
  override async editMessage(recipientId: string, message: SentMessage, text: string): Promise<void> {
    await this.postMessage(recipientId, { channel: message.conversation ?? recipientId, ts: message.id, text, blocks: [], attachments: [] }, 'chat.update');
  }

  /** `chat.delete` of the message by its channel and `ts`. */
  override async deleteMessage(recipientId: string, message: SentMessage): Promise<void> {
    await this.postMessage(recipientId, { channel: message.conversation ?? recipientId, ts: message.id }, 'chat.delete');
  }

  /** `chat.update` is a Tier 3 method (about 50 calls a minute): one edit every 1.2 s at most. */
  override streamIntervalMs = 1_200;

  /**
   * A streamed text: `chat.postMessage` with the first piece, then `chat.update` of that message (by the `channel`
   * and `ts` Slack answered) as it grows.
   */
  override streamText(recipientId: string): StreamingText {
    let channel: string | undefined;
    return editInPlace({
      // Slack truncates a message's text past 40,000 characters; it advises keeping one under 4,000.
      limit: 4_000,
      post: async (text) => {
        const answer = (await this.postMessage(recipientId, { ...this.base(recipientId), text })) as { channel?: unknown; ts?: unknown } | undefined;
        if (typeof answer?.ts !== 'string') return undefined;
        channel = typeof answer.channel === 'string' ? answer.channel : String(this.base(recipientId).channel);
        return answer.ts;
      },
      edit: async (ts, text) => {
        await this.postMessage(recipientId, { channel, ts, text }, 'chat.update');
      },
      send: (answer: BotMessage) => this.sendResponse(recipientId, answer),
    });
  }

  async sendTextMessage(recipientId: string, text: string): Promise<void> {
    await this.postMessage(recipientId, { ...this.base(recipientId), text });
  }

  override async sendImageUrl(recipientId: string, image: string): Promise<void> {
    await this.postMessage(recipientId, {
      ...this.base(recipientId),
      text: image,
      blocks: [{ type: 'image', image_url: image, alt_text: image }],
    }, undefined, false);
  }

  override async sendAttachment(recipientId: string, attachment: unknown, options?: SendOptions): Promise<void> {
    // Slack's (legacy) attachments are objects; anything else is shown as text by the base class.
    if (attachment === null || typeof attachment !== 'object') return super.sendAttachment(recipientId, attachment, options);
    await this.postMessage(recipientId, { ...this.base(recipientId), attachments: Array.isArray(attachment) ? attachment : [attachment] }, undefined, false);
  }

  override async sendTextWithButtons(recipientId: string, text: string, buttons: Button[]): Promise<void> {
    const blocks: Block[] = [];
    // A section with empty text is refused by Slack (invalid_blocks).
    if (text.trim() !== '') blocks.push({ type: 'section', text: plain(text) });
    blocks.push(...actionsBlocks(buttons));
    // `text` is the notification's fallback; Slack wants one whenever there are blocks.
    const fallback = text.trim() !== '' ? text : buttons.map((b) => b.title).join(' | ');
    await this.postMessage(recipientId, { ...this.base(recipientId), text: fallback, blocks });
  }

  /** Each card as a section (title and subtitle, its image as the accessory) followed by its buttons. */
  override async sendElements(recipientId: string, elements: Element[]): Promise<void> {
    const blocks: Block[] = [];
    for (const element of elements) {
      const lines = [`*${element.title}*`, ...(element.subtitle ? [element.subtitle] : [])];
      const section: Block = { type: 'section', text: { type: 'mrkdwn', text: lines.join('\n') } };
      if (typeof element.image_url === 'string' && element.image_url !== '') {
        section.accessory = { type: 'image', image_url: element.image_url, alt_text: element.title };
      }
      blocks.push(section, ...actionsBlocks(element.buttons ?? []));
    }
    const text = elements.map((e) => (e.subtitle ? `${e.title} : ${e.subtitle}` : e.title)).join('\n');
    await this.postMessage(recipientId, { ...this.base(recipientId), text, blocks }, undefined, false);
  }

  /** The custom JSON is the call's body: its own `channel` or `thread_ts` wins over ours. */
  override async sendCustomJson(recipientId: string, json: unknown, options?: SendOptions): Promise<void> {
    if (json === null || typeof json !== 'object' || Array.isArray(json)) return super.sendCustomJson(recipientId, json, options);
    const body = json as Record<string, unknown>;
    await this.postMessage(recipientId, { ...this.base(recipientId), ...body }, undefined, typeof body.text === 'string' && body.text !== '');
  }
}
