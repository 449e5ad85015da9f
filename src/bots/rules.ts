/**
 * The embedded rules bot: a `bot.yml` file declares intents (example phrases and answers) and a fallback. A message
 * is matched to the intent with the most similar example, or selects an intent directly as a Rasa button payload
 * (`/intent` or `/intent{"entity": "value"}`). The file format is in rules-file.ts, the matching in rules-match.ts;
 * both are described in docs/rules-bot.md.
 */
import { fileURLToPath } from 'node:url';
import type { Bot } from '../bot.js';
import type { BotMessage, UserMessage } from '../message.js';
import { parseRulesFile, readRulesFile, type RulesFile } from './rules-file.js';
import { Matcher, parsePayload, type Classification } from './rules-match.js';

export { DEFAULT_THRESHOLD } from './rules-file.js';
export { parsePayload, tokenize, type Classification } from './rules-match.js';

/** The path of the built-in moodbot (`examples/moodbot/bot.yml` of the package), the answer when no `--bot` is given. */
export function defaultBotPath(): string {
  // dist/bots/rules.js (and src/bots/rules.ts) → <package root>/examples/moodbot/bot.yml
  return fileURLToPath(new URL('../../examples/moodbot/bot.yml', import.meta.url));
}

/**
 * A copy of answers (plain JSON data, as the schema checked them). Three times faster than `JSON.parse` of a string
 * and seven times faster than `structuredClone`, which matters once per message.
 */
function copy<T>(value: T): T {
  if (typeof value !== 'object' || value === null) return value;
  if (Array.isArray(value)) {
    const items = new Array<unknown>(value.length);
    for (let i = 0; i < value.length; i += 1) items[i] = copy(value[i]);
    return items as T;
  }
  const object: Record<string, unknown> = {};
  for (const key of Object.keys(value)) {
    const item = copy((value as Record<string, unknown>)[key]);
    // An own "__proto__" key (from a custom payload) stays a key; assigning it would set the prototype.
    if (key === '__proto__') Object.defineProperty(object, key, { value: item, enumerable: true, writable: true, configurable: true });
    else object[key] = item;
  }
  return object as T;
}

/** A bot answering from a `bot.yml` rules file. */
export class RulesBot implements Bot {
  readonly threshold: number;
  readonly #names: string[];
  readonly #matcher: Matcher;
  /** The answers of each intent; each reply gets its own copy. */
  readonly #answers: Map<string, BotMessage[]>;
  readonly #fallback: BotMessage[];

  private constructor(file: RulesFile) {
    this.threshold = file.threshold;
    this.#names = file.intents.map((intent) => intent.name);
    this.#matcher = new Matcher(file.intents);
    this.#answers = new Map(file.intents.map((intent) => [intent.name, copy(intent.answers)]));
    this.#fallback = copy(file.fallback);
  }

  /** Reads and checks a rules file (synchronously: it runs once, at startup). Throws a `ConfigError`. */
  static fromFile(path: string): RulesBot {
    return new RulesBot(readRulesFile(path));
  }

  /** Checks the text of a rules file; `fileName` prefixes the messages of the `ConfigError`s it throws. */
  static fromYaml(text: string, fileName: string): RulesBot {
    return new RulesBot(parseRulesFile(text, fileName));
  }

  /** The names of the intents, in the order of the file. */
  get intents(): string[] {
    return [...this.#names];
  }

  /** The intent whose example is most similar to the text (ties go to the earlier example in the file). */
  classify(text: string): Classification {
    return this.#matcher.classify(text, this.threshold);
  }

  /** The answers of an intent (fresh copies), or undefined for an unknown intent. */
  answersOf(intent: string): BotMessage[] | undefined {
    const answers = this.#answers.get(intent);
    return answers === undefined ? undefined : copy(answers);
  }

  /** The fallback answers (fresh copies). */
  fallback(): BotMessage[] {
    return copy(this.#fallback);
  }

  /** The intent a text selects: its payload's intent, or its best match above the threshold; null for the fallback. */
  intentOf(text: string): string | null {
    const payload = parsePayload(text);
    if (payload !== null) return this.#answers.has(payload) ? payload : null;
    const classification = this.classify(text);
    return classification.accepted ? classification.intent : null;
  }

  async handle(message: UserMessage): Promise<BotMessage[]> {
    const intent = this.intentOf(message.text);
    return (intent === null ? undefined : this.answersOf(intent)) ?? this.fallback();
  }
}
