/** Telegram Bot API objects, with the fields this channel reads (names as in https://core.telegram.org/bots/api). */

import { isObject } from 'switchboard';
export interface TelegramUser {
  id: number;
  is_bot?: boolean;
  first_name?: string;
  last_name?: string;
  username?: string;
  language_code?: string;
}

export interface TelegramChat {
  id: number | string;
  type: string;
  title?: string;
  username?: string;
}

export interface TelegramMessage {
  message_id: number;
  from?: TelegramUser;
  chat: TelegramChat;
  date?: number;
  text?: string;
  location?: { latitude: number; longitude: number };
  reply_to_message?: TelegramMessage;
}

export interface TelegramCallbackQuery {
  id: string;
  from: TelegramUser;
  message?: TelegramMessage;
  inline_message_id?: string;
  data?: string;
}

export interface TelegramUpdate {
  update_id?: number;
  message?: TelegramMessage;
  edited_message?: TelegramMessage;
  callback_query?: TelegramCallbackQuery;
}

export interface ParseOptions {
  /** The bot's username, without `@` (the `verify` key). */
  botUsername: string;
  /** Process `edited_message` updates (Rasa does). */
  editedMessages: boolean;
}

/** One message for the bot. */
export interface IncomingMessage {
  text: string;
  senderId: string;
  /** `update_id`, so a redelivered update is processed once. */
  messageId: string | undefined;
  metadata: Record<string, unknown>;
}

export interface ParsedUpdate {
  messages: IncomingMessage[];
  /** A button press to acknowledge with `answerCallbackQuery` (stops the spinner on the user's button). */
  callbackQueryId?: string;
}

const GROUP_TYPES = new Set(['group', 'supergroup']);
/** `/command` or `/command@botname` at the start of the text. */
const COMMAND = /^\/([A-Za-z0-9_]+)(?:@([A-Za-z0-9_]+))?(?=\s|$)/;

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}


function isMessage(value: unknown): value is TelegramMessage {
  return isObject(value) && isObject(value.chat) && (typeof value.chat.id === 'number' || typeof value.chat.id === 'string');
}

function sameUsername(a: string | undefined, b: string): boolean {
  // Telegram usernames are case-insensitive.
  return typeof a === 'string' && a.toLowerCase() === b.toLowerCase();
}

/**
 * The text the bot gets from a message's text, and whether the message is addressed to the bot: `/command@verify`
 * loses its `@verify`, a mention of `@verify` is removed, and Rasa's `/bot` prefix is dropped (`/bot hi` → `hi`).
 */
export function readText(raw: string, botUsername: string): { text: string; command: boolean; mentioned: boolean; otherBot: boolean } {
  let text = raw;
  let command = false;
  let otherBot = false;
  const match = COMMAND.exec(text);
  if (match) {
    const [whole, name, target] = match;
    if (target !== undefined && !sameUsername(target, botUsername)) {
      otherBot = true;
    } else {
      command = true;
      const rest = text.slice(whole!.length);
      // Rasa strips "/bot" so that `/bot hello` in a group reaches the bot as `hello`.
      text = name === 'bot' ? rest : `/${name}${rest}`;
    }
  }
  // Most messages mention nobody: no regex runs for them.
  let mentioned = false;
  if (text.includes('@')) {
    const mention = mentionOf(botUsername);
    mention.lastIndex = 0;
    mentioned = mention.test(text);
    if (mentioned) text = text.replace(mention, '$1');
  }
  return { text: text.trim(), command, mentioned, otherBot };
}

/** The mention of the bot, `@verify` as a word, built once per bot name (a process usually has one). */
const mentions = new Map<string, RegExp>();
function mentionOf(botUsername: string): RegExp {
  let mention = mentions.get(botUsername);
  if (!mention) {
    mention = new RegExp(`(^|[^A-Za-z0-9_])@${escapeRegExp(botUsername)}(?![A-Za-z0-9_])[ \\t]*`, 'gi');
    if (mentions.size >= 16) mentions.clear();
    mentions.set(botUsername, mention);
  }
  return mention;
}

function chatMetadata(updateType: string, message: TelegramMessage): Record<string, unknown> {
  return {
    update_type: updateType,
    chat_type: message.chat.type,
    ...(message.chat.title !== undefined ? { chat_title: message.chat.title } : {}),
    message_id: message.message_id,
    ...(message.from !== undefined ? { from: message.from } : {}),
  };
}

function messageUpdate(updateType: 'message' | 'edited_message', message: TelegramMessage, updateId: string | undefined, options: ParseOptions): ParsedUpdate | string {
  const group = GROUP_TYPES.has(message.chat.type);
  if (!group && message.chat.type !== 'private') return `${message.chat.type} chats are not answered`;
  const senderId = String(message.chat.id);
  const repliesToBot = sameUsername(message.reply_to_message?.from?.username, options.botUsername);
  const metadata = chatMetadata(updateType, message);

  if (typeof message.text === 'string') {
    const read = readText(message.text, options.botUsername);
    if (group && read.otherBot) return 'a command for another bot';
    if (group && !read.command && !read.mentioned && !repliesToBot) return 'a group message not addressed to the bot';
    if (read.text === '') return 'an empty message';
    const messages: IncomingMessage[] = [{ text: read.text, senderId, messageId: updateId, metadata }];
    // As in Rasa: `/restart` is followed by `/start`, so the conversation begins again at once.
    if (read.text === '/restart' && updateType === 'message') {
      messages.push({ text: '/start', senderId, messageId: updateId === undefined ? undefined : `${updateId}:start`, metadata });
    }
    return { messages };
  }
  // Edits of a location are live-location updates, sent every few seconds: not something to answer.
  if (updateType === 'message' && isObject(message.location)) {
    if (group && !repliesToBot) return 'a group location not addressed to the bot';
    const { longitude, latitude } = message.location;
    if (typeof longitude !== 'number' || typeof latitude !== 'number') return 'a location without coordinates';
    // Rasa's exact text, so bots that parse it keep working.
    return { messages: [{ text: `{"lng":${longitude}, "lat":${latitude}}`, senderId, messageId: updateId, metadata }] };
  }
  return 'a message without text or location (photo, sticker, service message...)';
}

/** An update → the messages for the bot, or why it is ignored. Pure: no I/O. */
export function parseUpdate(update: TelegramUpdate, options: ParseOptions): ParsedUpdate | string {
  const updateId = typeof update.update_id === 'number' || typeof update.update_id === 'string' ? String(update.update_id) : undefined;

  if (update.callback_query !== undefined) {
    const query = update.callback_query;
    if (!isObject(query) || typeof query.id !== 'string') return 'a callback_query without id';
    if (typeof query.data !== 'string' || query.data.trim() === '') return 'a callback_query without data (a game button)';
    const message = isMessage(query.message) ? query.message : undefined;
    // A button of an inline-mode message has no chat: the user who pressed it is the conversation.
    const senderId = message ? String(message.chat.id) : isObject(query.from) ? String(query.from.id) : undefined;
    if (senderId === undefined) return 'a callback_query without chat or sender';
    const metadata: Record<string, unknown> = {
      update_type: 'callback_query',
      ...(message ? { chat_type: message.chat.type, message_id: message.message_id } : {}),
      ...(query.inline_message_id !== undefined ? { inline_message_id: query.inline_message_id } : {}),
      from: query.from,
      callback_query_id: query.id,
    };
    return { messages: [{ text: query.data, senderId, messageId: updateId, metadata }], callbackQueryId: query.id };
  }
  if (update.edited_message !== undefined) {
    if (!options.editedMessages) return 'an edited message (edited_messages: false)';
    if (!isMessage(update.edited_message)) return 'an edited_message without chat';
    return messageUpdate('edited_message', update.edited_message, updateId, options);
  }
  if (update.message !== undefined) {
    if (!isMessage(update.message)) return 'a message without chat';
    return messageUpdate('message', update.message, updateId, options);
  }
  return 'an update of a kind this channel does not handle';
}
