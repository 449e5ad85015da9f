/**
 * Rocket.Chat outgoing-integration and Omnichannel webhook bodies → messages for the bot. Pure: no I/O.
 * Field names are Rocket.Chat's (docs.rocket.chat: outgoing webhooks; Omnichannel webhooks).
 */

import { compact, isObject, nonEmptyString as str } from 'switchboard';

type Json = Record<string, unknown>;




/** One message ready to become a `UserMessage`. */
export interface IncomingMessage {
  text: string;
  /** The room (`channel_id`, or the Omnichannel room's `_id`): answers go there, as in Rasa. */
  senderId: string;
  messageId: string | undefined;
  metadata: Json;
}

export type Parsed =
  | { kind: 'messages'; messages: IncomingMessage[]; ignored: string[] }
  | { kind: 'ignored'; reason: string }
  | { kind: 'invalid'; reason: string };

/**
 * An outgoing integration (`token, bot, channel_id, channel_name, message_id, timestamp, user_id, user_name, text,
 * siteUrl, tmid`) → one message. The bot's own messages (`user_name` = `user`) and any bot's (`bot` set) are ignored.
 */
export function parseIntegration(body: Json, user: string): Parsed {
  const roomId = str(body.channel_id);
  if (roomId === undefined) return { kind: 'invalid', reason: 'not a Rocket.Chat outgoing integration: expected "channel_id"' };
  if (body.user_name === user) return { kind: 'ignored', reason: "the bot's own message" };
  if (body.bot !== undefined && body.bot !== null && body.bot !== false) return { kind: 'ignored', reason: 'a message from a bot' };
  const text = typeof body.text === 'string' ? body.text : '';
  if (text.trim() === '') return { kind: 'ignored', reason: 'a message without text' };
  return {
    kind: 'messages',
    ignored: [],
    messages: [
      {
        text,
        senderId: roomId,
        messageId: str(body.message_id),
        metadata: compact({
          type: 'integration',
          channel_id: roomId,
          channel_name: str(body.channel_name),
          message_id: str(body.message_id),
          user_id: str(body.user_id),
          user_name: str(body.user_name),
          tmid: str(body.tmid),
          timestamp: str(body.timestamp),
        }),
      },
    ],
  };
}

/**
 * An Omnichannel webhook (`{_id: room, visitor, agent, type, messages: [{_id, msg, u: {username}, ts, agentId}]}`) →
 * one message per visitor message. Only `type: "Message"` deliveries carry new messages: a `LivechatSession`
 * (conversation closed) repeats the whole transcript, and the session start/queue events carry none.
 */
export function parseOmnichannel(body: Json, user: string): Parsed {
  const roomId = str(body._id);
  if (roomId === undefined || !Array.isArray(body.messages)) {
    return { kind: 'invalid', reason: 'not a Rocket.Chat Omnichannel webhook: expected "_id" and "messages"' };
  }
  if (body.type !== undefined && body.type !== 'Message') return { kind: 'ignored', reason: `Omnichannel event "${String(body.type)}"` };
  const visitor = isObject(body.visitor) ? body.visitor : {};
  const messages: IncomingMessage[] = [];
  const ignored: string[] = [];
  for (const item of body.messages) {
    if (!isObject(item)) continue;
    const u = isObject(item.u) ? item.u : {};
    const username = str(item.username) ?? str(u.username);
    if (username === user || item.agentId !== undefined) {
      ignored.push("an agent's (or the bot's own) message");
      continue;
    }
    if (typeof item.msg !== 'string' || item.msg.trim() === '') {
      ignored.push('a message without text');
      continue;
    }
    messages.push({
      text: item.msg,
      senderId: roomId,
      messageId: str(item._id),
      metadata: compact({ type: 'omnichannel', room_id: roomId, message_id: str(item._id), username, visitor: compact({ _id: str(visitor._id), name: str(visitor.name), username: str(visitor.username) }) }),
    });
  }
  if (messages.length === 0) return { kind: 'ignored', reason: ignored[0] ?? 'no messages' };
  return { kind: 'messages', messages, ignored };
}

export function parseRequest(body: Json, user: string): Parsed {
  return 'visitor' in body ? parseOmnichannel(body, user) : parseIntegration(body, user);
}
