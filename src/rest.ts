/**
 * Rasa's REST request shape, `{"sender", "message", "metadata"?, "input_channel"?}`: what the `rest` and `callback`
 * channels take, and what any channel speaking Rasa's REST protocol can read with the same rules.
 */
import type { Context } from 'koa';
import { jsonBody } from './body.js';
import { BadRequestError } from './errors.js';
import { isObject } from './payload.js';

/** A request as Rasa's REST channel takes it. */
export interface RestRequest {
  sender: string;
  message: string;
  metadata: Record<string, unknown>;
  /** Renames the channel the message is attributed to, as in Rasa. */
  inputChannel: string | undefined;
}

/**
 * The sender as a string. Rasa takes any JSON value and converts it with Python's `str()`; numbers are common (phone
 * numbers, database ids), so whole numbers are converted the same way. Others are refused: a fraction or an integer
 * beyond 2^53 would not come out as Python writes it, and `true` or an object is a client bug.
 */
function senderString(sender: unknown): string | undefined {
  if (typeof sender === 'number') return Number.isSafeInteger(sender) ? String(sender) : undefined;
  return typeof sender === 'string' && sender.trim() !== '' ? sender : undefined;
}

/** `{"sender", "message", "metadata"?, "input_channel"?}` → the request, or what is wrong with it. */
export function parseRestRequest(body: Record<string, unknown>): RestRequest | string {
  const { sender, message, metadata } = body;
  const inputChannel = body.input_channel;
  if (sender === undefined || sender === null) return 'missing "sender": the id of the user who sends the message';
  const senderId = senderString(sender);
  if (senderId === undefined) {
    return typeof sender === 'number'
      ? '"sender" as a number must be a whole number below 2^53; send other ids as strings'
      : '"sender" must be a non-empty string or a whole number';
  }
  if (message === undefined || message === null) return 'missing "message": the text the user sent';
  if (typeof message !== 'string') return `"message" must be a string${typeof message === 'number' ? ` ("${String(message)}", not ${String(message)})` : ''}`;
  if (metadata !== undefined && metadata !== null && !isObject(metadata)) return '"metadata" must be a JSON object';
  if (inputChannel !== undefined && inputChannel !== null && typeof inputChannel !== 'string') return '"input_channel" must be a string';
  return {
    sender: senderId,
    message,
    metadata: (metadata as Record<string, unknown> | null | undefined) ?? {},
    inputChannel: typeof inputChannel === 'string' && inputChannel !== '' ? inputChannel : undefined,
  };
}

/** The request's body read as a REST request; anything else is a `BadRequestError` (400) saying what is wrong. */
export function restRequest(ctx: Context): RestRequest {
  const request = parseRestRequest(jsonBody(ctx));
  if (typeof request === 'string') throw new BadRequestError(request);
  return request;
}
