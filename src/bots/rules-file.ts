/**
 * The `bot.yml` format of the rules bot: reading the YAML, one zod schema for its shape, and the checks across the
 * file (payloads name intents, every intent can be reached, no example in two intents). Errors read like credentials
 * errors (`missing "intents.bye.answers"`, `"threshold": must be above 0 and at most 1`), prefixed by the file and
 * the line: `bot.yml:5: missing "intents.bye.answers"`. The format is documented in docs/rules-bot.md.
 */
import { readFileSync } from 'node:fs';
import yaml from 'js-yaml';
import { ConfigError } from '../errors.js';
import type { BotMessage } from '../message.js';
import { describeIssue, z } from '../schema.js';
import { parsePayload, tokenize } from './rules-match.js';

/** The score a message must reach against an example to select its intent, unless the file sets `threshold`. */
export const DEFAULT_THRESHOLD = 0.65;

/** A rules file, checked. Answers are as the file writes them (a bare string is already `{text}`). */
export interface RulesFile {
  threshold: number;
  intents: Array<{ name: string; examples: string[]; answers: BotMessage[] }>;
  fallback: BotMessage[];
}

// ---------------------------------------------------------------------------------------------------------------------
// The schema

const INTENT_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;

/** Whether a value can travel as JSON (CORE_SCHEMA yields only JSON types, except .inf and .nan). */
function isJson(value: unknown): boolean {
  if (typeof value === 'number') return Number.isFinite(value);
  if (Array.isArray(value)) return value.every(isJson);
  if (typeof value === 'object' && value !== null) return Object.values(value).every(isJson);
  return value === null || typeof value === 'string' || typeof value === 'boolean';
}

const text = z.string().refine((s) => s.trim() !== '', 'is empty');
const nonEmptyList = <T extends z.ZodType>(item: T) => z.array(item).min(1, 'is empty');
const json = z
  .unknown()
  .refine((value) => value !== null, 'is empty')
  .refine(isJson, 'must be JSON (no .inf or .nan)')
  .optional();

const buttonShape = { title: text, payload: text.optional(), url: text.optional(), type: text.optional() };
const button = z.strictObject(buttonShape).superRefine((b, ctx) => {
  if (b.payload === undefined && b.url === undefined) {
    ctx.addIssue({ code: 'custom', message: 'has no "payload" (or "url" for a link button)' });
  }
});
const quickReply = z.strictObject({ ...buttonShape, payload: text });
const element = z.strictObject({
  title: text,
  subtitle: text.optional(),
  image_url: text.optional(),
  buttons: nonEmptyList(button).optional(),
});

/** What an answer can send; `button_type` only says how to show its buttons. */
const SENDABLE = ['text', 'image', 'buttons', 'quick_replies', 'elements', 'attachment', 'custom'] as const;
const answerObject = z
  .strictObject({
    text: text.optional(),
    image: text.optional(),
    buttons: nonEmptyList(button).optional(),
    quick_replies: nonEmptyList(quickReply).optional(),
    elements: nonEmptyList(element).optional(),
    attachment: json,
    custom: json,
    button_type: text.optional(),
  })
  .superRefine((answer, ctx) => {
    if (!SENDABLE.some((key) => answer[key] !== undefined)) {
      const keys = SENDABLE.map((key) => `"${key}"`);
      ctx.addIssue({ code: 'custom', message: `has nothing to send: give ${keys.slice(0, -1).join(', ')} or ${keys.at(-1)!}` });
    }
  });
/** An answer; a bare string is short for `{text: ...}`. */
const answer = z.preprocess((value) => (typeof value === 'string' ? { text: value } : value), answerObject);
const answers = nonEmptyList(answer);

const example = z.string().refine((s) => tokenize(s).length > 0, {
  error: (issue) => `${JSON.stringify(issue.input)} has no words to match`,
});
const intent = z.strictObject({ examples: z.array(example).nullish(), answers });
const intents = z.record(z.string(), intent).superRefine((value, ctx) => {
  const names = Object.keys(value);
  if (names.length === 0) ctx.addIssue({ code: 'custom', message: 'is empty' });
  for (const name of names) {
    if (!INTENT_NAME.test(name)) {
      ctx.addIssue({ code: 'custom', path: [name], message: 'is not an intent name: use letters, digits, "_", "-" and "."' });
    }
  }
});

/** The whole file. */
export const rulesFileSchema = z.strictObject({
  version: z.literal(1, 'must be 1').optional(),
  threshold: z.number().gt(0, 'must be above 0 and at most 1').lte(1, 'must be above 0 and at most 1').optional(),
  intents,
  fallback: answers,
});

/** The keys a mapping at `path` may have, for "did you mean" hints. */
function knownKeys(path: ReadonlyArray<PropertyKey>): readonly string[] {
  if (path.length === 0) return Object.keys(rulesFileSchema.shape);
  if (path.length === 2 && path[0] === 'intents') return Object.keys(intent.shape);
  const parent = path[path.length - 2];
  if (parent === 'answers' || parent === 'fallback') return Object.keys(answerObject.shape);
  if (parent === 'buttons' || parent === 'quick_replies') return Object.keys(buttonShape);
  if (parent === 'elements') return Object.keys(element.shape);
  return [];
}

// ---------------------------------------------------------------------------------------------------------------------
// YAML with line numbers

type Path = ReadonlyArray<PropertyKey>;

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

function parseYaml(source: string, fileName: string): Parsed {
  const lineStarts = [0];
  for (let i = 0; i < source.length; i += 1) if (source[i] === '\n') lineStarts.push(i + 1);
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
      const ch = source[p];
      if (ch === ' ' || ch === '\t' || ch === '\r' || ch === '\n' || ch === '\ufeff') p += 1;
      else if (ch === '#') while (p < source.length && source[p] !== '\n') p += 1;
      else if ((p === 0 || source[p - 1] === '\n') && /^---(\s|$)/.test(source.slice(p, p + 4))) p += 3;
      else return p;
    }
  };
  const followedByColon = (position: number): boolean => {
    let p = position;
    while (source[p] === ' ' || source[p] === '\t') p += 1;
    return source[p] === ':';
  };

  const root: YamlNode = { line: 1, kind: null, result: undefined, isKey: false, children: [] };
  const stack: YamlNode[] = [root];
  let value: unknown;
  try {
    value = yaml.load(source, {
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
          if (child.isKey && String(child.result) === String(segment)) {
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
// Loading

type Raw = Record<string, unknown>;

/** The answers as the file writes them. The schema has checked them, and it transforms nothing but bare strings. */
function answersOf(value: unknown): BotMessage[] {
  return (value as unknown[]).map((a) => (typeof a === 'string' ? { text: a } : (a as BotMessage)));
}

/** Every button or quick reply payload of the file that names an intent, with its path. */
function* payloads(file: Raw): Generator<{ intent: string; payload: string; path: Path }> {
  function* ofButtons(list: unknown, path: Path): Generator<{ intent: string; payload: string; path: Path }> {
    if (!Array.isArray(list)) return;
    for (const [i, b] of list.entries()) {
      const payload = (b as { payload?: string }).payload;
      const intentName = payload === undefined ? null : parsePayload(payload);
      if (intentName !== null) yield { intent: intentName, payload: payload!, path: [...path, i, 'payload'] };
    }
  }
  function* ofAnswers(list: unknown, path: Path): Generator<{ intent: string; payload: string; path: Path }> {
    for (const [i, a] of (list as unknown[]).entries()) {
      if (typeof a === 'string') continue;
      const { buttons, quick_replies: quickReplies, elements } = a as Raw;
      yield* ofButtons(buttons, [...path, i, 'buttons']);
      yield* ofButtons(quickReplies, [...path, i, 'quick_replies']);
      if (Array.isArray(elements)) {
        for (const [k, e] of elements.entries()) yield* ofButtons((e as Raw).buttons, [...path, i, 'elements', k, 'buttons']);
      }
    }
  }
  for (const [name, spec] of Object.entries(file.intents as Raw)) yield* ofAnswers((spec as Raw).answers, ['intents', name, 'answers']);
  yield* ofAnswers(file.fallback, ['fallback']);
}

/** The problems zod cannot see one value at a time: they need the whole file. */
function crossCheck(file: Raw, lineOf: (path: Path) => number): z.core.$ZodIssue | undefined {
  const problem = (path: Path, message: string): z.core.$ZodIssue =>
    ({ code: 'custom', path: [...path], message, input: undefined }) as z.core.$ZodIssue;
  const names = Object.keys(file.intents as Raw);
  const known = new Set(names);
  const reached = new Set<string>();
  for (const { intent: name, payload, path } of payloads(file)) {
    if (!known.has(name)) return problem(path, `${JSON.stringify(payload)} names no intent of this file`);
    reached.add(name);
  }
  // The same example in two intents would make the first one win silently.
  const seen = new Map<string, { intent: string; line: number }>();
  for (const name of names) {
    const examples = ((file.intents as Raw)[name] as Raw).examples as string[] | null | undefined;
    if (examples == null || examples.length === 0) {
      // Without examples, only a payload can select the intent.
      if (!reached.has(name)) {
        return problem(['intents', name], `has no "examples", and no button or quick reply of this file has the payload "/${name}"`);
      }
      continue;
    }
    for (const [i, exampleText] of examples.entries()) {
      const key = tokenize(exampleText).sort().join(' ');
      const path = ['intents', name, 'examples', i];
      const earlier = seen.get(key);
      if (earlier === undefined) seen.set(key, { intent: name, line: lineOf(path) });
      else if (earlier.intent !== name) {
        return problem(path, `${JSON.stringify(exampleText)} is also an example of intent "${earlier.intent}" (line ${earlier.line})`);
      }
    }
  }
  return undefined;
}

/** Checks the text of a rules file; `fileName` prefixes the messages of the `ConfigError` it throws. */
export function parseRulesFile(source: string, fileName: string): RulesFile {
  const { value, lineOf } = parseYaml(source, fileName);
  const fail = (issue: z.core.$ZodIssue): never => {
    // One unknown key per message, on its own line.
    const one = issue.code === 'unrecognized_keys' ? { ...issue, keys: issue.keys.slice(0, 1) } : issue;
    const path = one.code === 'unrecognized_keys' ? [...one.path, one.keys[0]!] : one.path;
    throw new ConfigError(`${fileName}:${lineOf(path)}: ${describeIssue(one, value, { root: 'the file', knownKeys })}`);
  };
  const result = rulesFileSchema.safeParse(value, { jitless: true });
  if (!result.success) {
    // The first problem stops the load. A misspelt key comes first: the other problems are often its consequence
    // (`answer:` for `answers:` leaves "answers" missing).
    const issues = result.error.issues;
    fail(issues.find((issue) => issue.code === 'unrecognized_keys') ?? issues[0]!);
  }
  const file = value as Raw;
  const problem = crossCheck(file, lineOf);
  if (problem !== undefined) fail(problem);
  const parsed = result.data!;
  return {
    threshold: parsed.threshold ?? DEFAULT_THRESHOLD,
    intents: Object.entries(file.intents as Raw).map(([name, spec]) => ({
      name,
      examples: ((spec as Raw).examples as string[] | null | undefined) ?? [],
      answers: answersOf((spec as Raw).answers),
    })),
    fallback: answersOf(file.fallback),
  };
}

/** Reads and checks a rules file (synchronously: it runs once, at startup). Throws a `ConfigError`. */
export function readRulesFile(path: string): RulesFile {
  let source: string;
  try {
    source = readFileSync(path, 'utf8');
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (error as Error).message;
    throw new ConfigError(`${path}: cannot read the bot file: ${reason}`, { cause: error });
  }
  return parseRulesFile(source, path);
}
