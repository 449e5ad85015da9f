import { randomUUID } from 'node:crypto';
import type { OutputChannel } from './output.js';

/** A button in Rasa's response format: `payload` is what the user "says" when they press it. */
export interface Button {
  title: string;
  payload?: string;
  /** Platform-specific extras (a Messenger `web_url` button's `url`, a Bot Framework `type`). */
  [key: string]: unknown;
}

/** A card of a carousel (`elements`), Messenger's generic template shape. */
export interface Element {
  title: string;
  subtitle?: string;
  image_url?: string;
  buttons?: Button[];
  [key: string]: unknown;
}

/**
 * One answer of the bot, in Rasa's response format. Several keys may be set at once: text with buttons, or text
 * followed by an image. Keys this type does not name reach the output channel as options (Telegram's `button_type`).
 */
export interface BotMessage {
  text?: string;
  image?: string;
  buttons?: Button[];
  quick_replies?: Button[];
  elements?: Element[];
  attachment?: unknown;
  custom?: unknown;
  [key: string]: unknown;
}

/** An answer as the `rest` channel returns it, and as `CollectingOutputChannel` keeps it. */
export type CollectedMessage = BotMessage & { recipient_id: string };

export interface UserMessageInit {
  text?: string | null;
  senderId?: string | null;
  output?: OutputChannel;
  inputChannel?: string;
  messageId?: string | null;
  metadata?: Record<string, unknown> | null;
}

/** The default sender when a platform gives none, as in Rasa. */
export const DEFAULT_SENDER_ID = 'default';

/** One message from a user, as a channel hands it to the host. */
export class UserMessage {
  readonly text: string;
  readonly senderId: string;
  /** The output channel that answers this message; the host sends the bot's answers through it. */
  readonly output: OutputChannel | undefined;
  /** The name (URL prefix) of the channel the message came in on. */
  readonly inputChannel: string;
  /** The platform's id of this message; when set, a second delivery with the same id is not processed again. */
  readonly messageId: string | undefined;
  readonly metadata: Record<string, unknown>;
  /** A unique id for logs, whether or not the platform gave one. */
  readonly traceId: string;

  constructor(init: UserMessageInit = {}) {
    this.text = typeof init.text === 'string' ? init.text.trim() : '';
    this.senderId = init.senderId != null && String(init.senderId) !== '' ? String(init.senderId) : DEFAULT_SENDER_ID;
    this.output = init.output;
    this.inputChannel = init.inputChannel ?? 'unknown';
    this.messageId = init.messageId != null && init.messageId !== '' ? String(init.messageId) : undefined;
    this.metadata = init.metadata ?? {};
    this.traceId = randomUUID();
  }
}
