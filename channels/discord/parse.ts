/**
 * Discord interactions → what the bot gets, and how Discord is acknowledged. Pure: no I/O, no clock. Field names are
 * Discord's (Interactions → Receiving and Responding), so the code reads beside the docs.
 */

import { compact, idString as str, isObject } from 'switchboard';

/** Interaction types (`type`). */
export const PING = 1;
export const APPLICATION_COMMAND = 2;
export const MESSAGE_COMPONENT = 3;
export const APPLICATION_COMMAND_AUTOCOMPLETE = 4;
export const MODAL_SUBMIT = 5;

/** Interaction callback types: the body of our answer to Discord's request. */
export const PONG = 1;
export const CHANNEL_MESSAGE_WITH_SOURCE = 4;
export const DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE = 5;
export const DEFERRED_UPDATE_MESSAGE = 6;
export const APPLICATION_COMMAND_AUTOCOMPLETE_RESULT = 8;

/** Component types (`data.component_type`) whose clicks reach the bot. */
const BUTTON = 2;
const STRING_SELECT = 3;

/** Application command types (`data.type`): only slash commands (CHAT_INPUT) carry the user's text. */
const CHAT_INPUT = 1;

/** Message flag: only the user who acted sees the message. */
export const EPHEMERAL = 64;

/** The option of the slash command that holds the user's text. */
export const TEXT_OPTION = 'text';

/** One interaction for the bot, ready to become a `UserMessage`. */
export interface IncomingMessage {
  text: string;
  /** The user who acted (`member.user.id` in a server, `user.id` in a DM). */
  senderId: string;
  /** The interaction's `id`: unique per interaction, so the dedup key. */
  messageId: string;
  metadata: Record<string, unknown>;
}

/** The callback Discord gets at once, in the HTTP answer: `{type, data?}`. */
export interface InteractionCallback {
  type: number;
  data?: Record<string, unknown>;
}

export type ParsedInteraction =
  | { kind: 'ping' }
  | {
      kind: 'message';
      message: IncomingMessage;
      /** The interaction token: the follow-up webhook's path, valid 15 minutes. */
      token: string;
      /** 5 for a command (the user sees "thinking…"), 6 for a component click (the message stays as it is). */
      ack: InteractionCallback;
    }
  | { kind: 'ignored'; reason: string; answer: InteractionCallback };

/** Answered to interactions the bot does not take: only the user who acted sees it, and the interaction does not fail. */
function notHandled(reason: string, text: string): ParsedInteraction {
  return { kind: 'ignored', reason, answer: { type: CHANNEL_MESSAGE_WITH_SOURCE, data: { content: text, flags: EPHEMERAL } } };
}

/** The user who acted: in a server `member.user`, in a DM `user`. */
function actor(body: Record<string, unknown>): Record<string, unknown> | undefined {
  if (isObject(body.member) && isObject(body.member.user)) return body.member.user;
  return isObject(body.user) ? body.user : undefined;
}

/**
 * An interaction (`{id, application_id, type, data, guild_id?, channel_id?, member? | user?, token, message?}`) → what
 * to do with it. `command` is the slash command whose `text` option reaches the bot (without the slash). Interactions
 * the bot does not take (another command, a modal, autocomplete) are answered so that Discord shows no failure.
 */
export function parseInteraction(body: unknown, command: string): ParsedInteraction | { kind: 'invalid'; reason: string } {
  if (!isObject(body)) return { kind: 'invalid', reason: 'interaction is not a JSON object' };
  const type = body.type;
  if (type === PING) return { kind: 'ping' };
  if (typeof type !== 'number') return { kind: 'invalid', reason: 'interaction without a numeric type' };
  if (type === APPLICATION_COMMAND_AUTOCOMPLETE) {
    return { kind: 'ignored', reason: 'autocomplete is not offered', answer: { type: APPLICATION_COMMAND_AUTOCOMPLETE_RESULT, data: { choices: [] } } };
  }
  if (type !== APPLICATION_COMMAND && type !== MESSAGE_COMPONENT) return notHandled(`interaction of type ${type}`, 'This interaction is not supported.');

  const id = str(body.id);
  const token = typeof body.token === 'string' && body.token !== '' ? body.token : undefined;
  const user = actor(body);
  const senderId = user ? str(user.id) : undefined;
  const data = isObject(body.data) ? body.data : undefined;
  if (id === undefined) return { kind: 'invalid', reason: 'interaction without an id' };
  if (token === undefined) return { kind: 'invalid', reason: 'interaction without a token' };
  if (senderId === undefined) return { kind: 'invalid', reason: 'interaction without member.user or user' };
  if (data === undefined) return { kind: 'invalid', reason: 'interaction without data' };

  const base = compact({
    application_id: str(body.application_id),
    guild_id: str(body.guild_id),
    channel_id: str(body.channel_id) ?? (isObject(body.channel) ? str(body.channel.id) : undefined),
    username: typeof user?.username === 'string' ? user.username : undefined,
    locale: typeof body.locale === 'string' ? body.locale : undefined,
  });

  if (type === APPLICATION_COMMAND) {
    const name = typeof data.name === 'string' ? data.name : '';
    if (name !== command || (data.type !== undefined && data.type !== CHAT_INPUT)) {
      return notHandled(`command ${JSON.stringify(name)} is not /${command}`, `/${name} is not handled here; use /${command}.`);
    }
    const options = Array.isArray(data.options) ? data.options : [];
    const option = options.find((o): o is Record<string, unknown> => isObject(o) && o.name === TEXT_OPTION);
    const value = option?.value;
    const text = typeof value === 'string' ? value : typeof value === 'number' || typeof value === 'boolean' ? String(value) : '';
    return {
      kind: 'message',
      message: { text, senderId, messageId: id, metadata: { ...base, type: 'command', command: name } },
      token,
      ack: { type: DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE },
    };
  }

  // A component on one of our messages: a button's custom_id is the payload we gave it; a select menu's chosen value.
  const customId = typeof data.custom_id === 'string' ? data.custom_id : undefined;
  if (customId === undefined) return { kind: 'invalid', reason: 'component interaction without data.custom_id' };
  const componentType = data.component_type;
  const clicked = compact({
    ...base,
    type: 'component',
    component_type: typeof componentType === 'number' ? componentType : undefined,
    custom_id: customId,
    message_id: isObject(body.message) ? str(body.message.id) : undefined,
  });
  if (componentType === STRING_SELECT) {
    const values = Array.isArray(data.values) ? data.values.filter((v): v is string => typeof v === 'string') : [];
    if (values.length === 0) return notHandled('select menu without values', 'Nothing was selected.');
    return { kind: 'message', message: { text: values[0]!, senderId, messageId: id, metadata: { ...clicked, values } }, token, ack: { type: DEFERRED_UPDATE_MESSAGE } };
  }
  if (componentType !== undefined && componentType !== BUTTON) return notHandled(`component of type ${JSON.stringify(componentType)}`, 'This component is not supported.');
  return { kind: 'message', message: { text: customId, senderId, messageId: id, metadata: clicked }, token, ack: { type: DEFERRED_UPDATE_MESSAGE } };
}
