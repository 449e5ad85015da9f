import { randomId } from './trace.js';
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

/** A value that survives `JSON.parse(JSON.stringify(value))` unchanged. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/**
 * Where the answers to one message go, as plain data: what the channel needs, beyond its credentials, to rebuild the
 * output channel (`InputChannel.outputChannel(replyTo)`): Slack's channel and thread, Bot Framework's serviceUrl and
 * conversation, a socket.io room. Never a secret: the channel holds those. Rasa 3's `get_output_channel` is the
 * precedent; here the address travels with the message, so another instance, or this one after a restart, can answer.
 */
export type ReplyAddress = { [key: string]: JsonValue };

export interface UserMessageInit {
  text?: string | null;
  senderId?: string | null;
  /** A live output channel: works in this process only. Prefer `replyTo`. */
  output?: OutputChannel;
  /** The reply address the channel rebuilds its output from (see `ReplyAddress`). */
  replyTo?: ReplyAddress | null;
  inputChannel?: string;
  messageId?: string | null;
  metadata?: Record<string, unknown> | null;
  /** Kept when a message is rebuilt from its data (`UserMessage.fromJSON`); new otherwise. */
  traceId?: string;
}

/** A `UserMessage` as plain data: what `toJSON()` gives and `UserMessage.fromJSON` takes back. */
export interface UserMessageData {
  text: string;
  senderId: string;
  inputChannel: string;
  messageId?: string;
  metadata: Record<string, unknown>;
  replyTo?: ReplyAddress;
  traceId: string;
}

/** The default sender when a platform gives none, as in Rasa. */
export const DEFAULT_SENDER_ID = 'default';

/** One message from a user, as a channel hands it to the host. */
export class UserMessage {
  readonly text: string;
  readonly senderId: string;
  /**
   * A live output channel the channel attached (in-process only; lost in a JSON round trip). When `replyTo` is set
   * too, the host answers through the address (so the in-process path is the durable one).
   */
  readonly output: OutputChannel | undefined;
  /** Where the answers go, as plain data: the host asks the channel for the output (`outputChannel(replyTo)`). */
  readonly replyTo: ReplyAddress | undefined;
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
    this.replyTo = init.replyTo ?? undefined;
    this.inputChannel = init.inputChannel ?? 'unknown';
    this.messageId = init.messageId != null && init.messageId !== '' ? String(init.messageId) : undefined;
    this.metadata = init.metadata ?? {};
    this.traceId = typeof init.traceId === 'string' && init.traceId !== '' ? init.traceId : randomId();
  }

  /** The message as plain data, without its live `output`: what a store or a queue keeps. */
  toJSON(): UserMessageData {
    return {
      text: this.text,
      senderId: this.senderId,
      inputChannel: this.inputChannel,
      ...(this.messageId !== undefined ? { messageId: this.messageId } : {}),
      metadata: this.metadata,
      ...(this.replyTo !== undefined ? { replyTo: this.replyTo } : {}),
      traceId: this.traceId,
    };
  }

  /** Rebuilds a message from `toJSON()`'s data (parsed back from JSON). Throws a `TypeError` on anything else. */
  static fromJSON(data: unknown): UserMessage {
    if (!isRecord(data)) throw new TypeError('a UserMessage is an object');
    const { text, senderId, inputChannel, messageId, metadata, replyTo, traceId } = data;
    if (typeof text !== 'string' || typeof senderId !== 'string' || typeof inputChannel !== 'string') {
      throw new TypeError('a UserMessage needs text, senderId and inputChannel as strings');
    }
    if (messageId !== undefined && typeof messageId !== 'string') throw new TypeError('messageId must be a string');
    if (metadata !== undefined && !isRecord(metadata)) throw new TypeError('metadata must be an object');
    if (replyTo !== undefined && !isRecord(replyTo)) throw new TypeError('replyTo must be an object');
    if (traceId !== undefined && typeof traceId !== 'string') throw new TypeError('traceId must be a string');
    return new UserMessage({ text, senderId, inputChannel, messageId, metadata, replyTo: replyTo as ReplyAddress | undefined, traceId });
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/**
 * One string of a reply address, for a channel's `outputChannel(replyTo)`: throws a `TypeError` naming the key when it
 * is missing (unless `optional`) or not a string, so an address the channel did not make is refused, not guessed at.
 */
export function addressPart(replyTo: ReplyAddress, key: string, optional: true): string | undefined;
export function addressPart(replyTo: ReplyAddress, key: string, optional?: false): string;
export function addressPart(replyTo: ReplyAddress, key: string, optional = false): string | undefined {
  const value = replyTo[key];
  if (value === undefined || value === null) {
    if (optional) return undefined;
    throw new TypeError(`reply address without "${key}"`);
  }
  if (typeof value !== 'string') throw new TypeError(`reply address "${key}" is not a string`);
  return value;
}
