/**
 * Messages sent first: `POST /api/v1/conversations/{channel}/{recipient}/messages` with a JSON array of answers in
 * Rasa's format sends them through that channel, to that recipient, as if the bot had answered (in the recipient's
 * turn, through the outbox, kept in the shared inbox under `--redis`). Bearer-token authenticated (`--api-token`);
 * without a token the route does not exist.
 */
import type { Context } from 'koa';
import { z } from 'zod';
import type { InputChannel } from './channel.js';
import { BacklogFullError, ConflictError, HttpError, NotFoundError, UnauthorizedError } from './errors.js';
import type { Logger } from './logger.js';
import { UserMessage, type BotMessage } from './message.js';
import type { ServerMetrics } from './metrics.js';
import type { Pipeline } from './pipeline.js';
import { bearerToken, safeEqual } from './signature.js';

/** The route, as Koa's router writes it. */
export const PROACTIVE_ROUTE = '/api/v1/conversations/:channel/:recipient/messages';

/** Answers one request may carry. */
export const MAX_PROACTIVE_ANSWERS = 50;

const answersSchema = z
  .array(z.record(z.string(), z.unknown()), { error: 'the body must be a JSON array of answers in Rasa\'s format (objects with text, buttons, image, custom...)' })
  .min(1, { error: 'the body must hold at least one answer' })
  .max(MAX_PROACTIVE_ANSWERS, { error: `at most ${MAX_PROACTIVE_ANSWERS} answers per request` });

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
    if (typeof channel.outputChannel !== 'function') {
      metrics?.countProactive(name, 'unsupported');
      throw new ConflictError(`the ${name} channel cannot send first: it answers only within the request a user makes`);
    }
    const parsed = answersSchema.safeParse((ctx.request as { body?: unknown }).body);
    if (!parsed.success) throw new HttpError(400, parsed.error.issues[0]?.message ?? 'invalid answers');
    const answers = parsed.data as BotMessage[];
    const replyTo = await pipeline.addressOf(name, channel, recipient);
    if (replyTo === undefined) {
      metrics?.countProactive(name, 'unsupported');
      throw new ConflictError(`the ${name} channel cannot reach "${recipient.slice(0, 64)}" first: it needs an earlier message of that user (none seen)`);
    }
    const log = (channel.logger as Logger | undefined) ?? logger;
    let accepted;
    try {
      accepted = await pipeline.enqueueAnswers(new UserMessage({ text: '', senderId: recipient, replyTo, inputChannel: name }), answers, channel, log);
    } catch (error) {
      if (error instanceof BacklogFullError) metrics?.countProactive(name, 'shed');
      throw error;
    }
    metrics?.countProactive(name, 'accepted');
    void accepted.done.then((outcome) => {
      if (outcome === 'failed') metrics?.countProactive(name, 'failed');
    });
    log.info({ recipient, answers: answers.length }, 'message sent first: accepted');
    ctx.status = 202;
    ctx.body = { status: 'accepted', channel: name, recipient, messages: answers.length };
  };
}
