/**
 * Messages sent first: `POST /api/v1/conversations/{channel}/{recipient}/messages` with a JSON array of answers in
 * Rasa's format sends them through that channel, to that recipient, as if the bot had answered (in the recipient's
 * turn, through the outbox, kept in the shared inbox under `--redis`), and answers each one's id. `PATCH` and
 * `DELETE .../messages/{id}` edit and delete such an answer (or a bot's answer that carried an `id`) on the channels
 * that can. Bearer-token authenticated (`--api-token`); without a token the routes do not exist.
 */
import type { Context } from 'koa';
import { z } from 'zod';
import type { InputChannel } from './channel.js';
import { BacklogFullError, ConflictError, HttpError, NotFoundError, UnauthorizedError } from './errors.js';
import { HttpRequestError } from './http.js';
import type { Logger } from './logger.js';
import { UserMessage, type BotMessage } from './message.js';
import type { ServerMetrics } from './metrics.js';
import type { OutputChannel, SentMessage } from './output.js';
import type { Pipeline } from './pipeline.js';
import { ANSWER_ID, answerId, newAnswerId, type SentRecord } from './sent.js';
import { bearerToken, safeEqual } from './signature.js';

/** The routes, as Koa's router writes them. */
export const PROACTIVE_ROUTE = '/api/v1/conversations/:channel/:recipient/messages';
export const ANSWER_ROUTE = '/api/v1/conversations/:channel/:recipient/messages/:id';

/** The longest text an edit may carry when the output does not say (`OutputChannel.maxTextLength`). */
const DEFAULT_MAX_TEXT = 4096;

/** Answers one request may carry. */
export const MAX_PROACTIVE_ANSWERS = 50;

const answersSchema = z
  .array(z.record(z.string(), z.unknown()), { error: 'the body must be a JSON array of answers in Rasa\'s format (objects with text, buttons, image, custom...)' })
  .min(1, { error: 'the body must hold at least one answer' })
  .max(MAX_PROACTIVE_ANSWERS, { error: `at most ${MAX_PROACTIVE_ANSWERS} answers per request` })
  .refine((answers) => answers.every((answer) => answer.id === undefined || answerId(answer) !== undefined), {
    error: 'an answer\'s "id" must be 1 to 128 letters, digits, ".", "_" or "-"',
  })
  .refine((answers) => new Set(answers.map((answer) => answer.id).filter((id) => id !== undefined)).size === answers.filter((answer) => answer.id !== undefined).length, {
    error: 'two answers have the same "id"',
  });

const editSchema = z.object(
  { text: z.string({ error: 'the body must be {"text": "..."}: the answer\'s new text' }).trim().min(1, { error: 'the new text is empty' }) },
  { error: 'the body must be a JSON object {"text": "..."}' },
);

export interface ProactiveOptions {
  token: string;
  channels: InputChannel[];
  pipeline: Pipeline;
  metrics: ServerMetrics | undefined;
  logger: Logger;
}

/** The route's handler. */
export function proactiveHandler(options: ProactiveOptions) {
  const { token, pipeline, metrics, logger } = options;
  const byName = new Map(options.channels.map((channel) => [channel.name(), channel]));
  return async (ctx: Context): Promise<void> => {
    const { name, recipient, channel } = target(ctx, token, byName);
    if (typeof channel.outputChannel !== 'function') {
      metrics?.countProactive(name, 'unsupported');
      throw new ConflictError(`the ${name} channel cannot send first: it answers only within the request a user makes`);
    }
    const parsed = answersSchema.safeParse((ctx.request as { body?: unknown }).body);
    if (!parsed.success) throw new HttpError(400, parsed.error.issues[0]?.message ?? 'invalid answers');
    // Every answer gets an id (its own, else a new one), recorded as pending until it is sent: it can be edited later.
    const answers = (parsed.data as BotMessage[]).map((answer) => (answerId(answer) === undefined ? { ...answer, id: newAnswerId() } : answer));
    const ids = answers.map((answer) => answer.id as string);
    const replyTo = await pipeline.addressOf(name, channel, recipient);
    if (replyTo === undefined) {
      metrics?.countProactive(name, 'unsupported');
      throw new ConflictError(`the ${name} channel cannot reach "${recipient.slice(0, 64)}" first: it needs an earlier message of that user (none seen)`);
    }
    const log = (channel.logger as Logger | undefined) ?? logger;
    try {
      await Promise.all(ids.map((id) => pipeline.sentLog.set(name, recipient, id, { state: 'pending' })));
    } catch (error) {
      log.warn({ err: error }, 'could not record the answers as pending: they are sent, but cannot be edited before they are');
    }
    let accepted;
    try {
      accepted = await pipeline.enqueueAnswers(new UserMessage({ text: '', senderId: recipient, replyTo, inputChannel: name }), answers, channel, log);
    } catch (error) {
      if (error instanceof BacklogFullError) metrics?.countProactive(name, 'shed');
      // Not sent, and never will be: an edit says so rather than "not sent yet".
      await Promise.all(ids.map((id) => pipeline.sentLog.set(name, recipient, id, { state: 'failed' }))).catch(() => undefined);
      throw error;
    }
    metrics?.countProactive(name, 'accepted');
    void accepted.done.then((outcome) => {
      if (outcome === 'failed') metrics?.countProactive(name, 'failed');
    });
    log.info({ recipient, answers: answers.length }, 'message sent first: accepted');
    ctx.status = 202;
    ctx.body = { status: 'accepted', channel: name, recipient, messages: answers.length, ids };
  };
}

/** Checks the token and the channel and recipient a request names. */
function target(ctx: Context, token: string, byName: Map<string, InputChannel>): { name: string; recipient: string; channel: InputChannel } {
  const given = bearerToken(ctx.headers);
  if (given === undefined || !safeEqual(given, token)) {
    ctx.set('WWW-Authenticate', 'Bearer realm="switchboard"');
    throw new UnauthorizedError(given === undefined ? 'an API token is required: Authorization: Bearer <token>' : 'wrong API token');
  }
  const name = String(ctx.params.channel ?? '');
  const recipient = String(ctx.params.recipient ?? '');
  const channel = byName.get(name);
  if (!channel) throw new NotFoundError(`no channel "${name.slice(0, 64)}" here (channels: ${[...byName.keys()].join(', ')})`);
  if (recipient === '' || recipient.length > 256) throw new HttpError(400, 'the recipient must be 1 to 256 characters');
  return { name, recipient, channel };
}

/** An edit or a delete the platform refused, as the API's answer: 502, the platform's status named (never its body). */
class PlatformRefusedError extends HttpError {
  constructor(action: string, error: unknown) {
    const status = error instanceof HttpRequestError && error.status !== undefined ? ` (HTTP ${error.status})` : '';
    super(502, `the platform refused to ${action} the message${status}`);
    this.name = 'PlatformRefusedError';
  }
}

/**
 * `PATCH` (`action` edit: the body `{"text": ...}` replaces the answer's text) and `DELETE` (`action` delete) of
 * `/api/v1/conversations/{channel}/{recipient}/messages/{id}`: the answer's platform messages are found in the sent
 * log and changed through the channel's output, rebuilt from the recipient's address. An edit replaces the text of
 * the answer's first text message and deletes its other text messages (the parts of a long text, its paragraphs);
 * images and cards stay. A delete removes every message of the answer.
 */
export function answerChangeHandler(options: ProactiveOptions, action: 'edit' | 'delete') {
  const { token, pipeline, metrics, logger } = options;
  const byName = new Map(options.channels.map((channel) => [channel.name(), channel]));
  const verb = action === 'edit' ? 'edit' : 'delete';
  return async (ctx: Context): Promise<void> => {
    const { name, recipient, channel } = target(ctx, token, byName);
    const count = (outcome: 'done' | 'unsupported' | 'not_found' | 'failed') => metrics?.countChange(name, action, outcome);
    const id = String(ctx.params.id ?? '');
    if (!ANSWER_ID.test(id)) throw new HttpError(400, 'the answer id must be 1 to 128 letters, digits, ".", "_" or "-"');
    let text = '';
    if (action === 'edit') {
      const parsed = editSchema.safeParse((ctx.request as { body?: unknown }).body);
      if (!parsed.success) throw new HttpError(400, parsed.error.issues[0]?.message ?? 'invalid edit');
      text = parsed.data.text;
    }
    const replyTo = typeof channel.outputChannel === 'function' ? await pipeline.addressOf(name, channel, recipient) : undefined;
    const output: OutputChannel | undefined = replyTo === undefined ? undefined : channel.outputChannel!(replyTo);
    const change = action === 'edit' ? output?.editMessage : output?.deleteMessage;
    if (!output || typeof change !== 'function') {
      count('unsupported');
      throw new ConflictError(`the ${name} channel cannot ${verb} a message it sent`);
    }
    if (action === 'edit' && text.length > (output.maxTextLength ?? DEFAULT_MAX_TEXT)) {
      throw new HttpError(400, `the new text is longer than one ${name} message can be (${output.maxTextLength ?? DEFAULT_MAX_TEXT} characters)`);
    }
    const record = await pipeline.sentLog.get(name, recipient, id);
    if (record === undefined) {
      count('not_found');
      throw new NotFoundError(`no answer "${id}" sent to "${recipient.slice(0, 64)}" on ${name} (or more than a week ago)`);
    }
    if (record.state === 'pending') {
      throw new HttpError(409, `the answer "${id}" has not been sent yet; try again`, { 'Retry-After': '1' });
    }
    if (record.state === 'deleted') {
      count('not_found');
      throw new HttpError(410, `the answer "${id}" was deleted`);
    }
    if (record.state === 'failed' || !record.messages || record.messages.length === 0) {
      count('not_found');
      throw new ConflictError(`the answer "${id}" could not be sent: there is nothing to ${verb}`);
    }
    const log = (channel.logger as Logger | undefined) ?? logger;
    const messages = record.messages;
    const remaining: SentMessage[] = [...messages];
    const save = (next: SentRecord) => pipeline.sentLog.set(name, recipient, id, next).catch((error: unknown) => {
      log.warn({ err: error, id }, 'could not record the change of an answer');
    });
    try {
      if (action === 'edit') {
        const texts = messages.filter((message) => message.text);
        if (texts.length === 0) {
          count('unsupported');
          throw new ConflictError(`the answer "${id}" shows no text to edit (an image or a card): delete it and send another`);
        }
        await output.editMessage!(recipient, texts[0]!, text);
        for (const extra of texts.slice(1)) {
          if (!output.deleteMessage) break;
          await output.deleteMessage(recipient, extra);
          remaining.splice(remaining.indexOf(extra), 1);
        }
        await save({ state: 'sent', messages: remaining });
      } else {
        for (const message of messages) {
          await output.deleteMessage!(recipient, message);
          remaining.shift();
        }
        await save({ state: 'deleted' });
      }
    } catch (error) {
      if (error instanceof HttpError) throw error;
      count('failed');
      log.error({ err: error, recipient, id }, `could not ${verb} an answer`);
      // What was deleted before the failure stays deleted: the record says what is left.
      if (remaining.length < messages.length) await save({ state: 'sent', messages: remaining });
      throw new PlatformRefusedError(verb, error);
    }
    count('done');
    log.info({ recipient, id, messages: messages.length }, action === 'edit' ? 'answer edited' : 'answer deleted');
    ctx.body = { status: action === 'edit' ? 'edited' : 'deleted', channel: name, recipient, id };
  };
}
