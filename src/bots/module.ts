import type { Bot, BotContext, BotFunction } from '../bot.js';
import type { UserMessage } from '../message.js';

/** True for an object (or instance) with a `handle(message)` method. */
function isBotObject(value: unknown): value is Bot {
  return value !== null && typeof value === 'object' && typeof (value as { handle?: unknown }).handle === 'function';
}

function isClass(value: unknown): value is new () => unknown {
  return typeof value === 'function' && /^class[\s{]/.test(Function.prototype.toString.call(value));
}

/** Wraps a plain function as a bot. */
export function botFromFunction(fn: BotFunction): Bot {
  return { handle: (message: UserMessage, context?: BotContext) => fn(message, context) };
}

/**
 * What a bot module may export: an object with `handle(message)`, a class whose instances have one (constructed
 * without arguments), or a plain (async) function. Returns the bot, or why the value is none of these.
 */
export function toBot(value: unknown): Bot | string {
  if (isBotObject(value)) return value;
  if (isClass(value)) {
    // Constructed first: `handle` may be an instance field (`handle = async (message) => ...`), not on the prototype.
    let instance: unknown;
    try {
      instance = new value();
    } catch (error) {
      return `constructing the class without arguments failed: ${(error as Error)?.message ?? String(error)}`;
    }
    return isBotObject(instance) ? instance : 'the class has no handle(message) method';
  }
  if (typeof value === 'function') return botFromFunction(value as BotFunction);
  return `it is ${value === null ? 'null' : typeof value}, not a bot (an object with handle(message), a class, or a function)`;
}

/** Picks the bot from a module: the named export, else the default export, else an export named `bot`. */
export function pickBot(module: Record<string, unknown>, exportName: string | undefined): Bot | string {
  if (exportName !== undefined) {
    // A CommonJS module's exports object arrives as the default export, its names not always detected by Node.
    const cjs = module.default !== null && typeof module.default === 'object' ? (module.default as Record<string, unknown>) : undefined;
    const value = exportName in module ? module[exportName] : cjs?.[exportName];
    if (value === undefined) return `it has no export "${exportName}" (it exports: ${Object.keys(module).join(', ') || 'nothing'})`;
    const bot = toBot(value);
    return typeof bot === 'string' ? `its export "${exportName}" is not a bot: ${bot}` : bot;
  }
  const problems: string[] = [];
  for (const name of ['default', 'bot']) {
    if (module[name] === undefined) continue;
    const bot = toBot(module[name]);
    if (typeof bot !== 'string') return bot;
    // A default export that is not a bot (a config object) must not hide a valid `bot` export.
    problems.push(`its ${name} export is not a bot: ${bot}`);
  }
  if (problems.length > 0) return problems.join('; ');
  return `it has no default export and no export named "bot" (it exports: ${Object.keys(module).join(', ') || 'nothing'})`;
}
