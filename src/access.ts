import type { Context, Next } from 'koa';
import type { Logger } from './logger.js';
import { requestTrace, withTrace } from './trace.js';

/** Routes a load balancer or Prometheus polls every few seconds: logged at debug, not info. */
const PROBES = new Set(['/', '/health', '/health/live', '/health/ready', '/metrics']);

/**
 * The outermost middleware: gives the request its id and trace (see `trace.ts`), answers the id in `X-Request-Id`,
 * runs everything after it inside that trace, and writes one access log line when the response is finished: method,
 * route pattern (never the raw path, which carries ids), status, duration, and the channel (through the channel's
 * logger, which `ctx.state.log` holds for a channel's routes).
 */
export function accessLog(logger: Logger) {
  return async function access(ctx: Context, next: Next): Promise<void> {
    const trace = requestTrace({ requestId: ctx.get('x-request-id') || undefined, traceparent: ctx.get('traceparent') || undefined });
    ctx.set('X-Request-Id', trace.requestId);
    // Channel loggers are children of this one, at its level: with info off (`--log-level warn`), no line is written.
    if (!logger.isLevelEnabled('info')) return withTrace(trace, next);
    const started = process.hrtime.bigint();
    let logged = false;
    const log = () => {
      if (logged) return;
      logged = true;
      ctx.res.off('finish', log);
      ctx.res.off('close', log);
      const route = (ctx as { _matchedRoute?: unknown })._matchedRoute;
      const target = (ctx.state.log as Logger | undefined) ?? logger;
      const probe = typeof route === 'string' && PROBES.has(route);
      // The line is built only when it is written (`--log-level warn` writes none).
      if (!target.isLevelEnabled(probe ? 'debug' : 'info')) return;
      const durationMs = Math.round(Number(process.hrtime.bigint() - started) / 1e4) / 100;
      const line = {
        method: ctx.method,
        route: typeof route === 'string' ? route : null,
        status: ctx.res.headersSent || ctx.res.writableFinished ? ctx.res.statusCode : ctx.status,
        durationMs,
        traceId: trace.traceId,
        // A client that hung up before the answer was written.
        ...(ctx.res.writableFinished ? {} : { aborted: true }),
      };
      withTrace(trace, () => (probe ? target.debug(line, 'request') : target.info(line, 'request')));
    };
    // On `finish` (the whole response handed to the socket, a stream included) or `close` (the client went away).
    ctx.res.once('finish', log);
    ctx.res.once('close', log);
    await withTrace(trace, next);
  };
}
