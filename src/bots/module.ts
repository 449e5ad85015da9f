import type { Bot, BotFunction } from '../bot.js';
import type { BotMessage, UserMessage } from '../message.js';

/** True for an object (or instance) with a `handle(message)` method. */
function isBotObject(value: unknown): value is Bot {
  return value !== null && typeof value === 'object' && typeof (value as { handle?: unknown }).handle === 'function';
}

function isClass(value: unknown): value is new () => unknown {
  return typeof value === 'function' && /^class[\s{]/.test(Function.prototype.toString.call(value));
}

/** Wraps a plain function as a bot. */
export function botFromFunction(fn: BotFunction): Bot {
  return { handle: (message: UserMessage) => fn(message) };
}

/**
 * What a bot module may export: an object with `handle(message)`, a class whose instances have one (constructed
 * without arguments), or a plain (async) function. Returns the bot, or why the value is none of these.
 */
export function toBot(value: unknown): Bot | string {
  if (isBotObject(value)) return value;
  if (isClass(value)) {
    if (typeof (value as { prototype?: { handle?: unknown } }).prototype?.handle !== 'function') return 'the class has no handle(message) method';
    return new value() as Bot;
  }
  if (typeof value === 'function') return botFromFunction(value as (m: UserMessage) => Promise<BotMessage[]>);
  return `it is ${value === null ? 'null' : typeof value}, not a bot (an object with handle(message), a class, or a function)`;
}

/** Picks the bot from a module: the named export, else the default export, else an export named `bot`. */
export function pickBot(module: Record<string, unknown>, exportName: string | undefined): Bot | string {
  if (exportName !== undefined) {
    if (!(exportName in module)) return `it has no export "${exportName}"`;
    const bot = toBot(module[exportName]);
    return typeof bot === 'string' ? `its export "${exportName}" is not a bot: ${bot}` : bot;
  }
  for (const name of ['default', 'bot']) {
    if (module[name] === undefined) continue;
    const bot = toBot(module[name]);
    if (typeof bot !== 'string') return bot;
    return `its ${name} export is not a bot: ${bot}`;
  }
  return `it has no default export and no export named "bot" (it exports: ${Object.keys(module).join(', ') || 'nothing'})`;
}
