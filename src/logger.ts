import { pino, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

export interface LoggerOptions {
  level?: LevelWithSilent | string;
  /** Where to write; defaults to stdout. Tests pass a stream to read what was logged. */
  destination?: NodeJS.WritableStream;
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

/** The host's one logger. Channels get a child of it (see `channelLogger`). */
export function createLogger(options: LoggerOptions = {}): Logger {
  const pinoOptions = {
    level: options.level ?? process.env.LOG_LEVEL ?? 'info',
    base: undefined,
    redact: { paths: ALWAYS_REDACTED, censor: '[redacted]' },
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
