import { contextField } from './context.js';
import type { BotMessage, Button, CollectedMessage, Element } from './message.js';
import type { BotFailure } from './pipeline.js';

/**
 * A message the platform accepted, as an output reports it (`OutputChannel.reportSent`): what its `editMessage` and
 * `deleteMessage` need to find it again, kept as JSON (in Redis under `--redis`) for as long as the answer can be
 * edited.
 */
export interface SentMessage {
  /** The platform's id of the message: Telegram's `message_id`, Slack's `ts`, a Mattermost post id... */
  id: string;
  /** Where the message is when the id alone does not say (Slack: the channel id it was posted in). */
  conversation?: string;
  /** True when the message shows text (with or without buttons) that an edit can replace; false for an image, a card... */
  text: boolean;
}

/**
 * Where `OutputChannel.reportSent` reports to while the host sends an answer it may edit later: the host's context,
 * one per process even when a channel was built against another copy of the package (the loader accepts those).
 */
const sentMessages = contextField<SentMessage[]>('sentMessages');

/**
 * Runs `send` (one answer through an output) and returns the messages the output reported sending (`reportSent`), in
 * order, even when `send` fails part way (`error` set).
 */
export async function recordSent(send: () => Promise<void>): Promise<{ messages: SentMessage[]; error?: unknown }> {
  const messages: SentMessage[] = [];
  try {
    await sentMessages.run(messages, send);
    return { messages };
  } catch (error) {
    return { messages, error };
  }
}

/** Extra keys of a `BotMessage` that are not one of the answer kinds, passed to the send methods as options. */
export type SendOptions = Record<string, unknown>;

const ANSWER_KEYS = new Set(['text', 'image', 'buttons', 'quick_replies', 'elements', 'attachment', 'custom', 'recipient_id']);

/** Renders one button as a numbered line, the fallback on platforms without buttons: `1: great (/mood_great)`. */
export function buttonToText(button: Button, index: number): string {
  const payload = button.payload ?? button.url;
  return payload != null && payload !== button.title
    ? `${index + 1}: ${button.title} (${String(payload)})`
    : `${index + 1}: ${button.title}`;
}

/**
 * Splits a text longer than a platform's limit into parts of at most `limit` characters: at the last whitespace
 * before the limit, or, inside a word longer than the limit, hard (never between the halves of a surrogate pair).
 * Parts are trimmed; empty ones are dropped.
 */
export function splitText(text: string, limit: number): string[] {
  const parts: string[] = [];
  let rest = text;
  while (rest.length > limit) {
    let cut = limit;
    while (cut > 0 && !/\s/.test(rest[cut]!)) cut--;
    if (cut === 0) {
      cut = limit;
      const code = rest.charCodeAt(cut - 1);
      if (code >= 0xd800 && code <= 0xdbff) cut -= 1;
    }
    const part = rest.slice(0, cut).trimEnd();
    if (part !== '') parts.push(part);
    rest = rest.slice(cut).trimStart();
  }
  if (rest !== '') parts.push(rest);
  return parts;
}

/**
 * A text's paragraphs, as Rasa's output channels split it: the whole text trimmed, then cut at each blank line
 * (`\n\n`), every part keeping its own whitespace (`"a \n\n b "` → `"a "`, `" b"`). Parts with nothing but
 * whitespace are dropped, where Rasa would send them as empty messages.
 */
export function paragraphs(text: string): string[] {
  return text.trim().split('\n\n').filter((part) => part.trim() !== '');
}

/** Text followed by its buttons as a numbered list, one line each. */
export function textWithButtonsToText(text: string, buttons: readonly Button[]): string {
  const lines = buttons.map(buttonToText);
  return [text, ...lines].filter((line) => line !== '').join('\n');
}

/**
 * A text answer shown while the bot is still producing it (a streaming bot's chunks). The host calls `update` with the
 * whole text so far (not the new piece), no more often than the output's `streamIntervalMs`, one call at a time; then
 * `end` once with the finished answer, which must leave the user with exactly that answer (edit the message to its
 * final text, send the rest of a text longer than the platform allows, or send the answer whole if nothing was
 * shown yet). An `update` that fails is logged and the stream goes on; `end` failing fails the answer.
 */
export interface StreamingText {
  update(text: string): Promise<void>;
  end(answer: BotMessage): Promise<void>;
}

/**
 * Edit-in-place streaming for a platform that can change a message it sent: `post` sends the first text and returns
 * the message's id, `edit` replaces its text. While the bot streams, the text is cut to `limit` (the platform's
 * longest message); at the end the message is edited to the first part of the final text and the other parts are
 * sent as new messages through `send`. When nothing was posted yet (one chunk, then the end), the answer goes through
 * `send` as any answer does. An edit to the text already shown is skipped.
 */
export function editInPlace(options: {
  limit: number;
  post(text: string): Promise<string | undefined>;
  edit(id: string, text: string): Promise<void>;
  send(answer: BotMessage): Promise<void>;
  /** Edits a platform allows per message (Webex: 10): updates stop one short of it, keeping one for the end. */
  maxEdits?: number;
}): StreamingText {
  let id: string | undefined;
  let shown = '';
  let edits = 0;
  const maxEdits = options.maxEdits ?? Infinity;
  return {
    async update(text: string): Promise<void> {
      const visible = text.length > options.limit ? splitText(text, options.limit)[0] ?? '' : text.trim();
      if (visible === '' || visible === shown) return;
      if (id === undefined) {
        id = await options.post(visible);
        if (id === undefined) return;
      } else {
        if (edits >= maxEdits - 1) return;
        edits++;
        await options.edit(id, visible);
      }
      shown = visible;
    },
    async end(answer: BotMessage): Promise<void> {
      const text = typeof answer.text === 'string' ? answer.text : '';
      if (id === undefined) {
        await options.send(answer);
        return;
      }
      const [first = '', ...rest] = splitText(text.trim(), options.limit);
      if (first !== shown && first !== '') await options.edit(id, first);
      shown = first;
      for (const part of rest) await options.send({ text: part });
    },
  };
}

/**
 * How the bot answers on one platform. A channel overrides the methods its platform supports natively; the base
 * class renders everything else as text, so a new channel only has to implement `sendTextMessage`.
 */
export abstract class OutputChannel {
  /** The name of the channel this output belongs to (for logs). */
  name(): string {
    return 'output';
  }

  abstract sendTextMessage(recipientId: string, text: string, options?: SendOptions): Promise<void>;

  /** Fallback: the image's URL as text. */
  async sendImageUrl(recipientId: string, image: string, options?: SendOptions): Promise<void> {
    await this.sendTextMessage(recipientId, `Image: ${image}`, options);
  }

  /** Fallback: the attachment as text. */
  async sendAttachment(recipientId: string, attachment: unknown, options?: SendOptions): Promise<void> {
    const value = typeof attachment === 'string' ? attachment : JSON.stringify(attachment);
    await this.sendTextMessage(recipientId, `Attachment: ${value}`, options);
  }

  /** Fallback: the text, then each button as a numbered line, in one message. */
  async sendTextWithButtons(recipientId: string, text: string, buttons: Button[], options?: SendOptions): Promise<void> {
    await this.sendTextMessage(recipientId, textWithButtonsToText(text, buttons), options);
  }

  /** Fallback: quick replies are shown as buttons. */
  async sendQuickReplies(recipientId: string, text: string, quickReplies: Button[], options?: SendOptions): Promise<void> {
    await this.sendTextWithButtons(recipientId, text, quickReplies, options);
  }

  /** Fallback: each card as `title : subtitle` with its buttons. */
  async sendElements(recipientId: string, elements: Element[], options?: SendOptions): Promise<void> {
    for (const element of elements) {
      const title = element.subtitle ? `${element.title} : ${element.subtitle}` : element.title;
      await this.sendTextWithButtons(recipientId, title, element.buttons ?? [], options);
    }
  }

  /** Fallback: the JSON as text. */
  async sendCustomJson(recipientId: string, json: unknown, options?: SendOptions): Promise<void> {
    await this.sendTextMessage(recipientId, JSON.stringify(json), options);
  }

  /**
   * Shows a typing indicator, where the platform has one. The host calls it when the bot takes longer than about
   * 500 ms, and again every few seconds while it works. The base class has none.
   */
  sendTyping?(recipientId: string): Promise<void>;

  /**
   * Shows a text answer while a streaming bot produces it (see `StreamingText`): edit-in-place (`editInPlace`) on
   * platforms that can edit a sent message, incremental events on socket.io, lines on `rest?stream=true`. Without
   * it, a streamed text is collected and sent whole through `sendResponse` when it is complete.
   */
  streamText?(recipientId: string): StreamingText;

  /** The least time between two `StreamingText.update` calls, in ms: the platform's edit rate limit. Default 1000. */
  streamIntervalMs?: number;

  /**
   * Reports a message the platform accepted, with its platform id (call it after each call that created a message),
   * so an answer can be edited or deleted later (`PATCH`/`DELETE /api/v1/conversations/.../messages/{id}`). Costs
   * nothing when the host is not recording: only answers that carry an `id` are recorded.
   */
  protected reportSent(message: SentMessage): void {
    sentMessages.get()?.push(message);
  }

  /**
   * Replaces the text of a message this output reported with `reportSent` (Telegram's `editMessageText`, Slack's
   * `chat.update`...): the message then shows `text` alone, its buttons gone. `text` is at most `maxTextLength`. A
   * channel without it cannot edit: the API answers 409.
   */
  editMessage?(recipientId: string, message: SentMessage, text: string): Promise<void>;

  /** Deletes a message this output reported with `reportSent`. A channel without it cannot delete: the API answers 409. */
  deleteMessage?(recipientId: string, message: SentMessage): Promise<void>;

  /** The longest text one message can show (an edit's text is refused above it). Default 4,096. */
  maxTextLength?: number;

  /**
   * Called by the host after all answers to one message were sent through `sendResponse`, still in the sender's
   * turn: an output that batches (the callback channel) sends the batch here.
   */
  flush?(recipientId: string): Promise<void>;

  /**
   * Called by the host, still in the sender's turn, when the bot failed to answer a message (it threw, or passed
   * `--bot-timeout`), after the apology (if any) was sent through this output. The rest channel answers 5xx with it.
   */
  botFailed?(recipientId: string, failure: BotFailure): Promise<void> | void;

  /**
   * Sends one answer, as Rasa does: quick replies with their text, else buttons with their text, else the text
   * (one message per paragraph, see `paragraphs`); then custom JSON, image, attachment and elements.
   */
  async sendResponse(recipientId: string, message: BotMessage): Promise<void> {
    const options: SendOptions = {};
    for (const [key, value] of Object.entries(message)) if (!ANSWER_KEYS.has(key)) options[key] = value;
    const text = typeof message.text === 'string' ? message.text : '';

    if (Array.isArray(message.quick_replies) && message.quick_replies.length > 0) {
      await this.sendQuickReplies(recipientId, text, message.quick_replies, options);
    } else if (Array.isArray(message.buttons) && message.buttons.length > 0) {
      await this.sendTextWithButtons(recipientId, text, message.buttons, options);
    } else {
      for (const part of paragraphs(text)) await this.sendTextMessage(recipientId, part, options);
    }
    if (message.custom !== undefined && message.custom !== null) await this.sendCustomJson(recipientId, message.custom, options);
    if (typeof message.image === 'string' && message.image !== '') await this.sendImageUrl(recipientId, message.image, options);
    if (message.attachment !== undefined && message.attachment !== null) await this.sendAttachment(recipientId, message.attachment, options);
    if (Array.isArray(message.elements) && message.elements.length > 0) await this.sendElements(recipientId, message.elements, options);
  }
}

/**
 * Keeps the answers in memory instead of sending them: the `rest` channel returns `messages` as its HTTP response,
 * and tests read them.
 */
export class CollectingOutputChannel extends OutputChannel {
  readonly messages: CollectedMessage[] = [];

  override name(): string {
    return 'collector';
  }

  protected collect(message: CollectedMessage): void {
    // Rasa's collecting channel drops keys whose value is empty, so clients never see `"image": null`.
    const clean = Object.fromEntries(Object.entries(message).filter(([, v]) => v !== undefined && v !== null)) as CollectedMessage;
    this.messages.push(clean);
  }

  /** The most recent answer, if any. */
  latestOutput(): CollectedMessage | undefined {
    return this.messages[this.messages.length - 1];
  }

  async sendTextMessage(recipientId: string, text: string): Promise<void> {
    this.collect({ recipient_id: recipientId, text });
  }

  override async sendImageUrl(recipientId: string, image: string): Promise<void> {
    this.collect({ recipient_id: recipientId, image });
  }

  override async sendAttachment(recipientId: string, attachment: unknown): Promise<void> {
    this.collect({ recipient_id: recipientId, attachment });
  }

  override async sendTextWithButtons(recipientId: string, text: string, buttons: Button[]): Promise<void> {
    this.collect({ recipient_id: recipientId, text, buttons });
  }

  override async sendCustomJson(recipientId: string, json: unknown): Promise<void> {
    this.collect({ recipient_id: recipientId, custom: json });
  }
}
