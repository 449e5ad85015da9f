import type { Bot } from '../bot.js';
import { HttpClient } from '../http.js';
import { loadFromSpec } from '../loader.js';
import { silentLogger, type Logger } from '../logger.js';
import { pickBot } from './module.js';
import { RemoteBot } from './remote.js';
import { RulesBot, defaultBotPath } from './rules.js';

export { RulesBot, defaultBotPath } from './rules.js';
export { RemoteBot, DEFAULT_APOLOGY } from './remote.js';
export type { RemoteBotOptions } from './remote.js';
export { toBot, botFromFunction } from './module.js';

export interface LoadBotOptions {
  cwd?: string;
  logger?: Logger;
  http?: HttpClient;
}

/**
 * `--bot SPEC`: nothing → the built-in moodbot; `*.yml`/`*.yaml` → a rules bot; `http(s)://…` → a remote bot server
 * speaking the REST protocol; anything else → a module, by the same spec forms as channels.
 */
export async function loadBot(spec: string | undefined, options: LoadBotOptions = {}): Promise<Bot> {
  const cwd = options.cwd ?? process.cwd();
  const logger = options.logger ?? silentLogger;
  if (spec === undefined || spec === '') return RulesBot.fromFile(defaultBotPath());
  if (/^https?:\/\//i.test(spec)) return new RemoteBot({ url: spec, logger, http: options.http ?? new HttpClient({ logger }) });
  if (/\.ya?ml$/i.test(spec)) {
    const { resolve } = await import('node:path');
    return RulesBot.fromFile(resolve(cwd, spec));
  }
  return loadFromSpec(spec, 'bot', pickBot, cwd);
}
