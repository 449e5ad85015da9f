/**
 * Bot Framework activities → messages for the bot. Pure: no I/O, no clock. Field names are the Activity schema's
 * (https://learn.microsoft.com/azure/bot-service/rest-api/bot-framework-rest-connector-api-reference#activity-object).
 */

import { compact, isObject, nonEmptyString as str } from 'switchboard';

type Json = Record<string, unknown>;



/** A channel account (`from`, `recipient`): `{id, name, aadObjectId?, role?}`. */
export interface ChannelAccount {
  id: string;
  name?: string;
  [key: string]: unknown;
}

/** Where and as whom an answer to one activity goes: what the output needs besides the recipient's id. */
export interface ReplyContext {
  serviceUrl: string;
  channelId: string | undefined;
  conversation: Json & { id: string };
  /** The activity's `recipient`: the bot, as this channel knows it; answers come `from` it. */
  bot: ChannelAccount | undefined;
  /** The activity answered: sent as `replyToId`, so channels that thread show the answer under it. */
  replyToId: string | undefined;
}

/** One message ready to become a `UserMessage`. */
export interface IncomingMessage {
  text: string;
  senderId: string | undefined;
  messageId: string | undefined;
  metadata: Json;
  reply: ReplyContext;
}

export type ParsedActivity =
  | { kind: 'message'; message: IncomingMessage }
  | { kind: 'ignored'; reason: string }
  | { kind: 'invalid'; reason: string };

/**
 * The text of a message activity. In Teams channels and group chats the text starts with the bot's mention
 * (`<at>Switchboard</at> hello`), which the `entities` name: it is removed, so rules see `hello`. A card action
 * carries its data in `value`: an `imBack` sends the text itself, an Adaptive Card `Action.Submit` sends only `value`
 * (its `payload`, when the card was built that way, else the inputs as JSON).
 */
export function activityText(activity: Json): string {
  let text = typeof activity.text === 'string' ? activity.text : '';
  const botId = isObject(activity.recipient) ? str(activity.recipient.id) : undefined;
  if (Array.isArray(activity.entities) && botId !== undefined) {
    for (const entity of activity.entities) {
      if (!isObject(entity) || entity.type !== 'mention' || !isObject(entity.mentioned) || entity.mentioned.id !== botId) continue;
      const mention = str(entity.text);
      if (mention !== undefined) text = text.split(mention).join('');
    }
  }
  text = text.trim();
  if (text !== '') return text;
  const value = activity.value;
  if (typeof value === 'string') return value.trim();
  if (isObject(value)) return typeof value.payload === 'string' ? value.payload.trim() : JSON.stringify(value);
  return '';
}


/**
 * An activity (`{type, id, timestamp, serviceUrl, channelId, from, conversation, recipient, text, attachments?,
 * value?, entities?, channelData?}`) → a message for the bot, or why it is not one. Only `message` activities reach
 * the bot; `conversationUpdate`, `typing`, `messageReaction`, `invoke`, `installationUpdate`… are acknowledged and
 * dropped, as in Rasa.
 */
export function parseActivity(body: unknown): ParsedActivity {
  if (!isObject(body) || typeof body.type !== 'string') return { kind: 'invalid', reason: 'not a Bot Framework activity: expected a "type"' };
  if (body.type !== 'message') return { kind: 'ignored', reason: `activity type "${body.type}"` };
  const serviceUrl = str(body.serviceUrl);
  const conversation = isObject(body.conversation) && str(body.conversation.id) !== undefined ? (body.conversation as Json & { id: string }) : undefined;
  if (serviceUrl === undefined || conversation === undefined) {
    return { kind: 'invalid', reason: 'a message activity needs "serviceUrl" and "conversation.id" to be answered' };
  }
  const from = isObject(body.from) ? body.from : {};
  const recipient = isObject(body.recipient) && str(body.recipient.id) !== undefined ? (body.recipient as ChannelAccount) : undefined;
  const channelId = str(body.channelId);
  const attachments = Array.isArray(body.attachments) && body.attachments.length > 0 ? body.attachments : undefined;
  const id = str(body.id);
  return {
    kind: 'message',
    message: {
      text: activityText(body),
      senderId: str(from.id),
      messageId: id,
      metadata: compact({
        id,
        timestamp: str(body.timestamp),
        serviceUrl,
        channelId,
        conversation,
        from: isObject(body.from) ? body.from : undefined,
        recipient,
        attachments,
        value: body.value ?? undefined,
        channelData: isObject(body.channelData) ? body.channelData : undefined,
      }),
      reply: { serviceUrl, channelId, conversation, bot: recipient, replyToId: id },
    },
  };
}
