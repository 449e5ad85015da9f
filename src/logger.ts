import { pino, type Logger, type LevelWithSilent, type LogFn } from 'pino';
import { currentTrace, outsideTrace } from './trace.js';

export type { Logger };

export interface LoggerOptions {
  level?: LevelWithSilent | string;
  /** Where to write; defaults to stdout. Tests pass a stream to read what was logged. */
  destination?: NodeJS.WritableStream;
  /**
   * Repeated warnings (one channel, one message: a flood of rejected signatures) are written at most `max` times per
   * `windowMs`; the rest are counted and reported in one `suppressed` line. Default 10 per minute; `false`: all.
   */
  warnLimit?: WarnLimit | false;
}

export interface WarnLimit {
  max: number;
  windowMs: number;
  /** The clock (tests pass their own). */
  now?: () => number;
}

export const DEFAULT_WARN_LIMIT: WarnLimit = { max: 10, windowMs: 60_000 };

/** Keys tracked at once; a warning whose text varies without end must not grow the table without end. */
const WARN_KEYS = 1_000;
const WARN_LEVEL = 40;

interface WarnWindow {
  start: number;
  count: number;
  suppressed: number;
  timer: NodeJS.Timeout | undefined;
}

/**
 * pino's `logMethod` hook: counts warnings by channel and message in fixed windows. The first suppressed one arms a
 * timer (unref'd) for the end of the window, so the count is reported even when the flood stops.
 */
function warnLimiter(limit: WarnLimit) {
  const now = limit.now ?? Date.now;
  const windows = new Map<string, WarnWindow>();
  return function logMethod(this: Logger, args: Parameters<LogFn>, method: LogFn, level: number): void {
    if (level !== WARN_LEVEL) return method.apply(this, args);
    const msg = typeof args[0] === 'string' ? args[0] : typeof args[1] === 'string' ? args[1] : '';
    const channel = (this.bindings() as { channel?: unknown }).channel;
    const key = `${typeof channel === 'string' ? channel : ''}\u0000${msg}`;
    const time = now();
    let window = windows.get(key);
    const report = (w: WarnWindow) => {
      if (w.timer) clearTimeout(w.timer);
      w.timer = undefined;
      if (w.suppressed === 0) return;
      const suppressed = w.suppressed;
      w.suppressed = 0;
      // A count over many requests: it carries none of their ids.
      outsideTrace(() => method.call(this, { suppressed, windowMs: limit.windowMs }, `suppressed ${suppressed} more of: ${msg}`));
    };
    if (window && time - window.start >= limit.windowMs) {
      report(window);
      windows.delete(key);
      window = undefined;
    }
    if (!window) {
      if (windows.size >= WARN_KEYS) {
        const oldest = windows.keys().next().value!;
        const evicted = windows.get(oldest)!;
        windows.delete(oldest);
        if (evicted.timer) clearTimeout(evicted.timer);
      }
      window = { start: time, count: 0, suppressed: 0, timer: undefined };
      windows.set(key, window);
    }
    window.count++;
    if (window.count <= limit.max) return method.apply(this, args);
    window.suppressed++;
    if (!window.timer) {
      const w = window;
      w.timer = setTimeout(() => {
        report(w);
        if (windows.get(key) === w) windows.delete(key);
      }, Math.max(0, w.start + limit.windowMs - time));
      w.timer.unref();
    }
  };
}

/** Keys whose values are never logged, whatever the channel: headers that carry credentials. */
const ALWAYS_REDACTED = [
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
  'headers["x-auth-token"]',
  'credentials',
  'password',
  '*.password',
];

/**
 * The host's one logger. Channels get a child of it (see `channelLogger`). Every line written while a request is
 * handled (or a message it brought is processed) carries the request's id as `reqId`.
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  const warnLimit = options.warnLimit === undefined ? DEFAULT_WARN_LIMIT : options.warnLimit;
  const pinoOptions = {
    level: options.level ?? process.env.LOG_LEVEL ?? 'info',
    base: undefined,
    redact: { paths: ALWAYS_REDACTED, censor: '[redacted]' },
    mixin: () => {
      const trace = currentTrace();
      return trace ? { reqId: trace.requestId } : {};
    },
    ...(warnLimit ? { hooks: { logMethod: warnLimiter(warnLimit) } } : {}),
  };
  return options.destination
    ? pino(pinoOptions, options.destination as unknown as pino.DestinationStream)
    : pino(pinoOptions);
}

/**
 * A child logger for one channel, bound to its name, that redacts every credential the channel's schema marks
 * secret wherever it appears as a key (`{slack_token: ...}`, `{credentials: {slack_token: ...}}`).
 */
export function channelLogger(parent: Logger, channel: string, secretKeys: readonly string[]): Logger {
  const paths = [...ALWAYS_REDACTED];
  for (const key of secretKeys) {
    const quoted = /^[A-Za-z_$][\w$]*$/.test(key) ? key : `["${key}"]`;
    const path = (prefix: string) => (quoted.startsWith('[') ? `${prefix}${quoted}` : `${prefix}.${quoted}`);
    paths.push(quoted.startsWith('[') ? quoted : key, path('*'));
  }
  return parent.child({ channel }, { redact: { paths, censor: '[redacted]' } });
}

/** Replaces every occurrence of a secret value in a text (an URL, an error message) before it is logged. */
export function maskSecrets(text: string, secrets: readonly string[]): string {
  let masked = text;
  // Longest first: a secret that contains a shorter one must be masked whole, not around the shorter one.
  const values = secrets.filter((secret) => typeof secret === 'string' && secret.length >= 4).sort((a, b) => b.length - a.length);
  for (const secret of values) {
    // As written, as in a path (encodeURIComponent), and as in a query string or form (`+` for spaces, `!~'()` escaped).
    const forms = new Set([secret, encodeURIComponent(secret), new URLSearchParams([['', secret]]).toString().slice(1)]);
    for (const form of forms) masked = masked.split(form).join('[redacted]');
  }
  return masked;
}

/** A logger that drops everything: the default for channels used outside a host (unit tests). */
export const silentLogger: Logger = pino({ level: 'silent' });

/**
 * One warning when a dependency (Redis) goes away and one line when it is back, however many calls fail meanwhile:
 * an outage is logged once, not once per message.
 */
export class OutageLog {
  private out = false;

  constructor(
    private readonly logger: Logger,
    private readonly lines: { down: string; up: string },
    private readonly fields: Record<string, unknown> = {},
  ) {}

  /** Whether an outage is going on. */
  get active(): boolean {
    return this.out;
  }

  /** A failure: warns when it starts an outage. */
  down(reason: string): void {
    if (this.out) return;
    this.out = true;
    this.logger.warn({ ...this.fields, reason }, this.lines.down);
  }

  /** A success: ends an outage, saying so. */
  up(): void {
    if (!this.out) return;
    this.out = false;
    this.logger.info(this.fields, this.lines.up);
  }
}

/**
 * `parent.child(bindings)`, made on first use: a message's logger is needed only when something about it is logged,
 * which a message answered normally never is (a pino child per message was a measurable share of the request path).
 */
export function lazyChild(parent: Logger, bindings: Record<string, unknown>): Logger {
  let child: Logger | undefined;
  return new Proxy(parent, {
    get(_target, property) {
      child ??= parent.child(bindings);
      const value: unknown = Reflect.get(child, property, child);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(child) : value;
    },
    set(_target, property, value) {
      child ??= parent.child(bindings);
      return Reflect.set(child, property, value, child);
    },
    has(_target, property) {
      child ??= parent.child(bindings);
      return Reflect.has(child, property);
    },
  });
}
