/**
 * The embedded rules bot: a `bot.yml` file declares intents (example phrases and answers) and a fallback. A message
 * is matched to the intent with the most similar example, or selects an intent directly as a Rasa button payload
 * (`/intent` or `/intent{"entity": "value"}`). See docs/rules-bot.md for the file format and the matching algorithm.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import yaml from 'js-yaml';
import type { Bot } from '../bot.js';
import { ConfigError } from '../errors.js';
import type { BotMessage, Button, Element, UserMessage } from '../message.js';

/** The path of the built-in moodbot (`examples/moodbot/bot.yml` of the package), the answer when no `--bot` is given. */
export function defaultBotPath(): string {
  // dist/bots/rules.js (and src/bots/rules.ts) → <package root>/examples/moodbot/bot.yml
  return fileURLToPath(new URL('../../examples/moodbot/bot.yml', import.meta.url));
}

/** The score a message must reach against an example to select its intent, unless the file sets `threshold`. */
export const DEFAULT_THRESHOLD = 0.65;

/** How the bot understood one text: its best intent and example, the score, and whether the score is enough. */
export interface Classification {
  /** The intent of the most similar example, or null when no example shares a word with the text. */
  intent: string | null;
  /** That example, as written in the file. */
  example: string | null;
  /** Its similarity, from 0 (nothing in common) to 1 (the same words). */
  score: number;
  /** Whether `score` reaches the threshold, so that the intent answers rather than the fallback. */
  accepted: boolean;
}

// ---------------------------------------------------------------------------------------------------------------------
// Text normalization and similarity

/** Function words: they count, but a quarter as much as the words that carry the meaning. */
const STOP_WORDS = new Set(
  (
    'a an the i im me my mine myself you youre your yours u we us our he she it its they them their this that these ' +
    'those there here is am are was were be been being do does did to of in on at for with from and or but so very ' +
    'just too please what how who which can could would will shall should may might must have has had ive id ill'
  ).split(' '),
);
const STOP_WEIGHT = 0.25;

/** Words that turn a sentence around: a text and an example match only if both or neither contain one. */
const NEGATIONS = new Set(
  (
    'no not never nope nah none nothing nobody neither nor cannot dont doesnt didnt isnt arent wasnt werent cant ' +
    'wont wouldnt shouldnt couldnt havent hasnt hadnt aint mustnt neednt'
  ).split(' '),
);

/** The similarity of two words that differ by one typo. */
const FUZZY_SIMILARITY = 0.8;

/** Lowercase, without diacritics and apostrophes ("I'm" → "im"), every other non-letter/digit a space; its words. */
export function tokenize(text: string): string[] {
  return text
    .normalize('NFKD')
    .replace(/\p{M}/gu, '')
    .toLowerCase()
    .replace(/['’‘`´]/g, '')
    .replace(/[^\p{L}\p{N}]+/gu, ' ')
    .trim()
    .split(' ')
    .filter((token) => token !== '');
}

/** Whether two strings are at most one edit apart (insertion, deletion, substitution, or swap of neighbours). */
function withinOneEdit(a: string, b: string): boolean {
  if (a === b) return true;
  if (Math.abs(a.length - b.length) > 1) return false;
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i += 1;
  if (a.length === b.length) {
    if (a.slice(i + 1) === b.slice(i + 1)) return true; // substitution
    return a[i] === b[i + 1] && a[i + 1] === b[i] && a.slice(i + 2) === b.slice(i + 2); // swap
  }
  return a.length > b.length ? a.slice(i + 1) === b.slice(i) : a.slice(i) === b.slice(i + 1); // deletion/insertion
}

function isPlural(a: string, b: string): boolean {
  const [short, long] = a.length < b.length ? [a, b] : [b, a];
  return short.length >= 3 && (long === `${short}s` || long === `${short}es`);
}

/** 1 for the same word or its plural, 0.8 for one typo (words of 4+ letters, same first letter), else 0. */
function wordSimilarity(a: string, b: string): number {
  if (a === b || isPlural(a, b)) return 1;
  if (Math.min(a.length, b.length) >= 4 && a[0] === b[0] && withinOneEdit(a, b)) return FUZZY_SIMILARITY;
  return 0;
}

interface Words {
  tokens: string[];
  weights: number[];
  total: number;
  /** The words without spaces, so that "good bye" and "goodbye" are the same. */
  joined: string;
  negated: boolean;
}

function words(text: string): Words {
  const tokens = tokenize(text);
  const weights = tokens.map((token) => (STOP_WORDS.has(token) ? STOP_WEIGHT : 1));
  return {
    tokens,
    weights,
    total: weights.reduce((sum, weight) => sum + weight, 0),
    joined: tokens.join(''),
    negated: tokens.some((token) => NEGATIONS.has(token)),
  };
}

/**
 * The similarity of a text and an example, from 0 to 1: a weighted Dice coefficient over their words, where each
 * word of the example is paired with the most similar unpaired word of the text, in any order.
 */
function similarity(text: Words, example: Words): number {
  if (text.tokens.length === 0 || example.tokens.length === 0) return 0;
  if (text.joined === example.joined) return 1;
  if (text.negated !== example.negated) return 0;
  const used = new Array<boolean>(text.tokens.length).fill(false);
  let shared = 0;
  example.tokens.forEach((exampleToken, i) => {
    let best = 0;
    let bestIndex = -1;
    text.tokens.forEach((textToken, j) => {
      if (used[j]) return;
      const s = wordSimilarity(exampleToken, textToken);
      if (s > best) {
        best = s;
        bestIndex = j;
      }
    });
    if (bestIndex >= 0) {
      used[bestIndex] = true;
      shared += best * (example.weights[i]! + text.weights[bestIndex]!);
    }
  });
  return shared / (text.total + example.total);
}

/** The intent named by a Rasa payload (`/greet`, `/greet{"name": "x"}`, `/greet@0.9`), or null for other text. */
export function parsePayload(text: string): string | null {
  if (!text.startsWith('/')) return null;
  const end = text.search(/[{@]/);
  return (end === -1 ? text.slice(1) : text.slice(1, end)).trim();
}

// ---------------------------------------------------------------------------------------------------------------------
// YAML with line numbers

type Path = ReadonlyArray<string | number>;

/** A node of the YAML document as js-yaml's listener reports it: where it starts and what it holds. */
interface YamlNode {
  line: number;
  kind: string | null;
  result: unknown;
  /** Whether a ":" follows the node on its line, i.e. it is the key of a mapping entry. */
  isKey: boolean;
  children: YamlNode[];
}

interface Parsed {
  value: unknown;
  /** The 1-based line of a path: the line of its key for a mapping entry, of its item for a list item. */
  lineOf(path: Path): number;
}

function parseYaml(text: string, fileName: string): Parsed {
  const lineStarts = [0];
  for (let i = 0; i < text.length; i += 1) if (text[i] === '\n') lineStarts.push(i + 1);
  const lineAt = (position: number): number => {
    let low = 0;
    let high = lineStarts.length - 1;
    while (low < high) {
      const mid = (low + high + 1) >> 1;
      if (lineStarts[mid]! <= position) low = mid;
      else high = mid - 1;
    }
    return low + 1;
  };
  /** The first position at or after `position` that is not blank, a comment or a document marker. */
  const contentStart = (position: number): number => {
    let p = position;
    for (;;) {
      const ch = text[p];
      if (ch === ' ' || ch === '\t' || ch === '\r' || ch === '\n' || ch === '\ufeff') p += 1;
      else if (ch === '#') while (p < text.length && text[p] !== '\n') p += 1;
      else if ((p === 0 || text[p - 1] === '\n') && /^---(\s|$)/.test(text.slice(p, p + 4))) p += 3;
      else return p;
    }
  };
  const followedByColon = (position: number): boolean => {
    let p = position;
    while (text[p] === ' ' || text[p] === '\t') p += 1;
    return text[p] === ':';
  };

  const root: YamlNode = { line: 1, kind: null, result: undefined, isKey: false, children: [] };
  const stack: YamlNode[] = [root];
  let value: unknown;
  try {
    value = yaml.load(text, {
      filename: fileName,
      schema: yaml.CORE_SCHEMA,
      listener(event, state) {
        if (event === 'open') {
          const node: YamlNode = {
            line: lineAt(contentStart(state.position)),
            kind: null,
            result: undefined,
            isKey: false,
            children: [],
          };
          stack[stack.length - 1]!.children.push(node);
          stack.push(node);
        } else {
          const node = stack.pop()!;
          node.kind = state.kind;
          node.result = state.result;
          node.isKey = followedByColon(state.position);
        }
      },
    });
  } catch (error) {
    if (error instanceof yaml.YAMLException) {
      const mark = error.mark as { line?: number; column?: number } | undefined;
      const where = mark?.line != null ? `${mark.line + 1}:${(mark.column ?? 0) + 1}` : '1';
      throw new ConfigError(`${fileName}:${where}: ${error.reason}`, { cause: error });
    }
    throw error;
  }

  const documentNode = root.children[0];
  const lineOf = (path: Path): number => {
    let node: YamlNode | undefined = documentNode;
    let line = documentNode?.line ?? 1;
    for (const segment of path) {
      if (node === undefined) break;
      let next: YamlNode | undefined;
      if (typeof segment === 'number') {
        if (node.kind !== 'sequence') break;
        next = node.children[segment];
        if (next === undefined) break;
        line = next.line;
      } else {
        if (node.kind !== 'mapping') break;
        let keyLine: number | undefined;
        for (let i = 0; i < node.children.length; i += 1) {
          const child = node.children[i]!;
          if (child.isKey && String(child.result) === segment) {
            keyLine = child.line;
            const following = node.children[i + 1];
            next = following !== undefined && !following.isKey ? following : undefined;
          }
        }
        if (keyLine === undefined) break;
        line = keyLine;
      }
      node = next;
    }
    return line;
  };
  return { value, lineOf };
}

// ---------------------------------------------------------------------------------------------------------------------
// Validation

const TOP_LEVEL_FIELDS = ['version', 'threshold', 'intents', 'fallback'] as const;
const INTENT_FIELDS = ['examples', 'answers'] as const;
const ANSWER_FIELDS = ['text', 'image', 'buttons', 'quick_replies', 'elements', 'attachment', 'custom', 'button_type'] as const;
const BUTTON_FIELDS = ['title', 'payload', 'url', 'type'] as const;
const ELEMENT_FIELDS = ['title', 'subtitle', 'image_url', 'buttons'] as const;
const INTENT_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;

type Mapping = Record<string, unknown>;

function isMapping(value: unknown): value is Mapping {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i += 1) {
    let diagonal = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j += 1) {
      const above = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
      diagonal = above;
    }
  }
  return row[b.length]!;
}

function unknownField(key: string, allowed: readonly string[]): string {
  const suggestion = allowed.find((candidate) => editDistance(key, candidate) <= 2);
  return suggestion !== undefined
    ? `unknown field "${key}" (did you mean "${suggestion}"?)`
    : `unknown field "${key}" (expected ${allowed.map((field) => `"${field}"`).join(', ')})`;
}

/** Whether a value can travel as JSON (CORE_SCHEMA yields only JSON types, except .inf and .nan). */
function isJson(value: unknown): boolean {
  if (typeof value === 'number') return Number.isFinite(value);
  if (Array.isArray(value)) return value.every(isJson);
  if (isMapping(value)) return Object.values(value).every(isJson);
  return value === null || typeof value === 'string' || typeof value === 'boolean';
}

interface IntentSpec {
  name: string;
  examples: Array<{ text: string; words: Words }>;
  answers: BotMessage[];
}

interface BotSpec {
  threshold: number;
  intents: IntentSpec[];
  fallback: BotMessage[];
}

class Validator {
  /** Every `/intent` payload of a button or quick reply, with where it is, to check after all intents are known. */
  private readonly payloads: Array<{ intent: string; payload: string; path: Path; context: string }> = [];

  constructor(
    private readonly fileName: string,
    private readonly parsed: Parsed,
  ) {}

  fail(path: Path, context: string, problem: string): never {
    const line = this.parsed.lineOf(path);
    throw new ConfigError(`${this.fileName}:${line}: ${context === '' ? '' : `${context}: `}${problem}`);
  }

  private checkFields(value: Mapping, allowed: readonly string[], path: Path, context: string): void {
    for (const key of Object.keys(value)) {
      if (!allowed.includes(key)) this.fail([...path, key], context, unknownField(key, allowed));
    }
  }

  private string(value: unknown, key: string, path: Path, context: string): string {
    if (typeof value !== 'string') this.fail(path, context, `"${key}" must be a string`);
    if (value.trim() === '') this.fail(path, context, `"${key}" is empty`);
    return value;
  }

  bot(): BotSpec {
    const { value } = this.parsed;
    if (value === undefined || value === null) {
      this.fail([], '', 'the file is empty; expected "intents" and "fallback"');
    }
    if (!isMapping(value)) this.fail([], '', 'the file must be a mapping with "intents" and "fallback"');
    this.checkFields(value, TOP_LEVEL_FIELDS, [], '');

    if (value.version !== undefined && value.version !== 1) this.fail(['version'], '', '"version" must be 1');

    let threshold = DEFAULT_THRESHOLD;
    if (value.threshold !== undefined) {
      const t = value.threshold;
      if (typeof t !== 'number' || !(t > 0 && t <= 1)) {
        this.fail(['threshold'], '', '"threshold" must be a number above 0 and at most 1');
      }
      threshold = t;
    }

    if (value.intents === undefined || value.intents === null) this.fail([], '', 'missing "intents"');
    if (!isMapping(value.intents)) {
      this.fail(['intents'], '', '"intents" must be a mapping of intent names to {examples, answers}');
    }
    const names = Object.keys(value.intents);
    if (names.length === 0) this.fail(['intents'], '', '"intents" is empty');
    const intents = names.map((name) => this.intent(name, (value.intents as Mapping)[name]));

    if (value.fallback === undefined || value.fallback === null) this.fail([], '', 'missing "fallback"');
    const fallback = this.answers(value.fallback, ['fallback'], 'fallback', '"fallback"');

    // Payloads name intents.
    const known = new Set(names);
    for (const { intent, payload, path, context } of this.payloads) {
      if (!known.has(intent)) this.fail(path, context, `payload "${payload}" names no intent of this file`);
    }
    // An intent without examples must be reachable by a button or quick reply of this file.
    const reached = new Set(this.payloads.map((p) => p.intent));
    for (const intent of intents) {
      if (intent.examples.length === 0 && !reached.has(intent.name)) {
        this.fail(
          ['intents', intent.name],
          `intent "${intent.name}"`,
          `no "examples", and no button or quick reply of this file has the payload "/${intent.name}"`,
        );
      }
    }
    // The same example in two intents would make the first one win silently.
    const seen = new Map<string, { intent: string; line: number }>();
    for (const intent of intents) {
      intent.examples.forEach((example, i) => {
        const key = [...example.words.tokens].sort().join(' ');
        const earlier = seen.get(key);
        const path = ['intents', intent.name, 'examples', i];
        if (earlier === undefined) seen.set(key, { intent: intent.name, line: this.parsed.lineOf(path) });
        else if (earlier.intent !== intent.name) {
          this.fail(
            path,
            `intent "${intent.name}"`,
            `example ${i + 1} ${JSON.stringify(example.text)} is also an example of intent "${earlier.intent}" ` +
              `(line ${earlier.line})`,
          );
        }
      });
    }
    return { threshold, intents, fallback };
  }

  private intent(name: string, value: unknown): IntentSpec {
    const path = ['intents', name];
    const context = `intent "${name}"`;
    if (!INTENT_NAME.test(name)) {
      this.fail(path, context, 'an intent name may only contain letters, digits, "_", "-" and "."');
    }
    if (!isMapping(value)) this.fail(path, context, 'must be a mapping with "examples" and "answers"');
    this.checkFields(value, INTENT_FIELDS, path, context);

    const examples: IntentSpec['examples'] = [];
    if (value.examples !== undefined && value.examples !== null) {
      if (!Array.isArray(value.examples)) this.fail([...path, 'examples'], context, '"examples" must be a list');
      value.examples.forEach((example: unknown, i) => {
        const examplePath = [...path, 'examples', i];
        if (typeof example !== 'string') {
          const hint = typeof example === 'number' || typeof example === 'boolean' ? ` (quote it: "${example}")` : '';
          this.fail(examplePath, context, `example ${i + 1} must be a string${hint}`);
        }
        const exampleWords = words(example);
        if (exampleWords.tokens.length === 0) {
          this.fail(examplePath, context, `example ${i + 1} ${JSON.stringify(example)} has no words to match`);
        }
        examples.push({ text: example, words: exampleWords });
      });
    }

    if (value.answers === undefined || value.answers === null) this.fail(path, context, 'missing "answers"');
    const answers = this.answers(value.answers, [...path, 'answers'], context, '"answers"');
    return { name, examples, answers };
  }

  private answers(value: unknown, path: Path, context: string, label: string): BotMessage[] {
    if (!Array.isArray(value)) this.fail(path, context, `${label} must be a list of answers`);
    if (value.length === 0) this.fail(path, context, `${label} is empty`);
    return value.map((answer: unknown, i) => this.answer(answer, [...path, i], `${context}: answer ${i + 1}`));
  }

  private answer(value: unknown, path: Path, context: string): BotMessage {
    if (typeof value === 'string') {
      // Shorthand: a bare string is a text answer.
      return { text: this.string(value, 'text', path, context) };
    }
    if (!isMapping(value)) this.fail(path, context, 'must be a mapping (text, buttons, image, ...) or a string');
    this.checkFields(value, ANSWER_FIELDS, path, context);
    const answer: BotMessage = {};
    for (const [key, field] of Object.entries(value)) {
      const fieldPath = [...path, key];
      switch (key) {
        case 'text':
        case 'image':
        case 'button_type':
          answer[key] = this.string(field, key, fieldPath, context);
          break;
        case 'buttons':
        case 'quick_replies':
          answer[key] = this.buttons(field, key, fieldPath, context);
          break;
        case 'elements':
          answer.elements = this.elements(field, fieldPath, context);
          break;
        case 'attachment':
        case 'custom':
          if (field === null || field === undefined) this.fail(fieldPath, context, `"${key}" is empty`);
          if (!isJson(field)) this.fail(fieldPath, context, `"${key}" must be JSON (no .inf or .nan)`);
          answer[key] = structuredClone(field);
          break;
      }
    }
    if (!ANSWER_FIELDS.some((key) => key !== 'button_type' && key in answer)) {
      this.fail(path, context, 'nothing to send: give "text", "image", "buttons", "quick_replies", "elements", ' +
        '"attachment" or "custom"');
    }
    return answer;
  }

  private buttons(value: unknown, key: 'buttons' | 'quick_replies', path: Path, context: string): Button[] {
    if (!Array.isArray(value)) this.fail(path, context, `"${key}" must be a list`);
    if (value.length === 0) this.fail(path, context, `"${key}" is empty`);
    const noun = key === 'buttons' ? 'button' : 'quick reply';
    return value.map((button: unknown, i) => this.button(button, [...path, i], `${context}: ${noun} ${i + 1}`, key));
  }

  private button(value: unknown, path: Path, context: string, key: 'buttons' | 'quick_replies'): Button {
    if (!isMapping(value)) this.fail(path, context, 'must be a mapping with "title" and "payload"');
    this.checkFields(value, BUTTON_FIELDS, path, context);
    if (value.title === undefined || value.title === null) this.fail(path, context, 'missing "title"');
    const button: Button = { title: '' };
    for (const [field, v] of Object.entries(value)) button[field] = this.string(v, field, [...path, field], context);
    if (key === 'quick_replies' && button.payload === undefined) this.fail(path, context, 'missing "payload"');
    if (button.payload === undefined && button.url === undefined) {
      this.fail(path, context, 'missing "payload" (or "url" for a link button)');
    }
    if (button.payload !== undefined) {
      const intent = parsePayload(button.payload);
      if (intent !== null) this.payloads.push({ intent, payload: button.payload, path: [...path, 'payload'], context });
    }
    return button;
  }

  private elements(value: unknown, path: Path, context: string): Element[] {
    if (!Array.isArray(value)) this.fail(path, context, '"elements" must be a list');
    if (value.length === 0) this.fail(path, context, '"elements" is empty');
    return value.map((element: unknown, i) => {
      const elementPath = [...path, i];
      const elementContext = `${context}: element ${i + 1}`;
      if (!isMapping(element)) this.fail(elementPath, elementContext, 'must be a mapping with "title"');
      this.checkFields(element, ELEMENT_FIELDS, elementPath, elementContext);
      if (element.title === undefined || element.title === null) {
        this.fail(elementPath, elementContext, 'missing "title"');
      }
      const card: Element = { title: '' };
      for (const [field, v] of Object.entries(element)) {
        card[field] =
          field === 'buttons'
            ? this.buttons(v, 'buttons', [...elementPath, field], elementContext)
            : this.string(v, field, [...elementPath, field], elementContext);
      }
      return card;
    });
  }
}

// ---------------------------------------------------------------------------------------------------------------------
// The bot

/** A bot answering from a `bot.yml` rules file. */
export class RulesBot implements Bot {
  readonly threshold: number;
  readonly #intents: IntentSpec[];
  readonly #byName: Map<string, IntentSpec>;
  readonly #fallback: BotMessage[];

  private constructor(spec: BotSpec) {
    this.threshold = spec.threshold;
    this.#intents = spec.intents;
    this.#byName = new Map(spec.intents.map((intent) => [intent.name, intent]));
    this.#fallback = spec.fallback;
  }

  /** Reads and validates a rules file (synchronously: it runs once, at startup). Throws a `ConfigError`. */
  static fromFile(path: string): RulesBot {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (error) {
      const reason = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (error as Error).message;
      throw new ConfigError(`${path}: cannot read the bot file: ${reason}`, { cause: error });
    }
    return RulesBot.fromYaml(text, path);
  }

  /** Validates the text of a rules file; `fileName` prefixes the messages of the `ConfigError`s it throws. */
  static fromYaml(text: string, fileName: string): RulesBot {
    return new RulesBot(new Validator(fileName, parseYaml(text, fileName)).bot());
  }

  /** The names of the intents, in the order of the file. */
  get intents(): string[] {
    return this.#intents.map((intent) => intent.name);
  }

  /** The intent whose example is most similar to the text (ties go to the earlier example in the file). */
  classify(text: string): Classification {
    const message = words(text);
    let best: Classification = { intent: null, example: null, score: 0, accepted: false };
    for (const intent of this.#intents) {
      for (const example of intent.examples) {
        const score = similarity(message, example.words);
        if (score > best.score) best = { intent: intent.name, example: example.text, score, accepted: false };
      }
    }
    best.accepted = best.intent !== null && best.score >= this.threshold;
    return best;
  }

  /** The answers of an intent (fresh copies), or undefined for an unknown intent. */
  answersOf(intent: string): BotMessage[] | undefined {
    const spec = this.#byName.get(intent);
    return spec === undefined ? undefined : structuredClone(spec.answers);
  }

  /** The fallback answers (fresh copies). */
  fallback(): BotMessage[] {
    return structuredClone(this.#fallback);
  }

  /** The intent a text selects: its payload's intent, or its best match above the threshold; null for the fallback. */
  intentOf(text: string): string | null {
    const payload = parsePayload(text);
    if (payload !== null) return this.#byName.has(payload) ? payload : null;
    const classification = this.classify(text);
    return classification.accepted ? classification.intent : null;
  }

  async handle(message: UserMessage): Promise<BotMessage[]> {
    const intent = this.intentOf(message.text);
    return (intent === null ? undefined : this.answersOf(intent)) ?? this.fallback();
  }
}
