import { existsSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import type { Bot } from '../bot.js';
import { ConfigError } from '../errors.js';
import { HttpClient } from '../http.js';
import { loadFromSpec } from '../loader.js';
import { silentLogger, type Logger } from '../logger.js';
import { pickBot } from './module.js';
import { RemoteBot } from './remote.js';
import { RulesBot, defaultBotPath } from './rules.js';

export { RulesBot, defaultBotPath } from './rules.js';
export { RemoteBot, BotServerError } from './remote.js';
export type { RemoteBotOptions } from './remote.js';
export { CircuitBreaker } from '../breaker.js';
export type { CircuitBreakerOptions, CircuitState } from '../breaker.js';
export { toBot, botFromFunction } from './module.js';

export interface LoadBotOptions {
  cwd?: string;
  logger?: Logger;
  http?: HttpClient;
  /** For a remote bot: the timeout of each attempt (the host's `--bot-timeout`). */
  timeoutMs?: number;
}

/**
 * `my-bot.js` (no `./`) names a file in the working directory when there is one, as `bot.yml` does; otherwise the spec
 * is left as it is (a package name). A `.ExportName` suffix is kept: `my-bot.js.myBot` → `./my-bot.js.myBot`.
 */
function localModuleSpec(spec: string, cwd: string): string {
  if (spec.startsWith('.') || isAbsolute(spec) || spec.startsWith('file:')) return spec;
  const file = /^(.+\.[cm]?js)(?:\.[A-Za-z_$][\w$]*)?$/.exec(spec)?.[1];
  return file !== undefined && existsSync(resolve(cwd, file)) ? `./${spec}` : spec;
}

/**
 * `--bot SPEC`: nothing → the built-in moodbot; `*.yml`/`*.yaml` → a rules bot; `http(s)://…` → a remote bot server
 * speaking the REST protocol; anything else → a module, by the same spec forms as channels.
 */
export async function loadBot(spec: string | undefined, options: LoadBotOptions = {}): Promise<Bot> {
  const cwd = options.cwd ?? process.cwd();
  const logger = options.logger ?? silentLogger;
  if (spec === undefined || spec === '') return RulesBot.fromFile(defaultBotPath());
  if (/^https?:\/\//i.test(spec)) {
    // Checked at startup: otherwise every message would fail, each answered with the apology.
    if (!URL.canParse(spec) || new URL(spec).hostname === '') throw new ConfigError(`bot server URL "${spec}" is not a valid URL`);
    return new RemoteBot({
      url: spec,
      logger,
      http: options.http ?? new HttpClient({ logger }),
      timeoutMs: options.timeoutMs,
    });
  }
  if (/\.ya?ml$/i.test(spec)) return RulesBot.fromFile(resolve(cwd, spec));
  return loadFromSpec(localModuleSpec(spec, cwd), 'bot', pickBot, cwd);
}
