import { z } from 'zod';
import { CredentialsError } from './errors.js';

export { z };

/** What a credentials key declares besides its type. */
export interface KeyMeta {
  /** Never logged, masked in outgoing-call logs. */
  secret?: boolean;
  /** The key that verifies requests: required unless the section says `allow_unverified: true`. */
  verification?: boolean;
  description?: string;
}

/** A credentials schema: a zod object whose keys are the channel's `credentials.yml` keys. */
export type CredentialsSchema = z.ZodObject<z.ZodRawShape>;

/** Marks a key secret: `slack_token: secret(z.string(), 'bot token (xoxb-…)')`. */
export function secret<T extends z.ZodType>(schema: T, description?: string): T {
  return schema.meta({ secret: true, ...(description ? { description } : {}) }) as T;
}

/**
 * Declares the key that verifies incoming requests (a signing secret, a webhook token). It is optional in the
 * schema, but the host refuses to start the channel without it unless `allow_unverified: true` (DESIGN §7).
 */
export function verificationSecret(description?: string): z.ZodOptional<z.ZodString> {
  return z
    .string()
    .min(1)
    .meta({ secret: true, verification: true, ...(description ? { description } : {}) })
    .optional();
}

/** Declares a channel's credentials once; validation, redaction and the documented keys derive from it. */
export function credentialsSchema<S extends z.ZodRawShape>(shape: S) {
  return z.object(shape);
}

type AnyDef = { type: string; innerType?: z.ZodType; defaultValue?: unknown; in?: z.ZodType };

function defOf(schema: z.ZodType): AnyDef {
  return (schema as unknown as { _zod: { def: AnyDef } })._zod.def;
}

/** The metadata of a key, collected through `.optional()`, `.default()` and `.nullable()` wrappers. */
export function keyMeta(schema: z.ZodType): KeyMeta & { type: string; optional: boolean; default?: unknown } {
  let current: z.ZodType | undefined = schema;
  const meta: KeyMeta & { type: string; optional: boolean; default?: unknown } = { type: 'unknown', optional: false };
  while (current) {
    // The outermost declaration wins: `secret(z.string()).optional().meta({description})` keeps both.
    const declared = (z.globalRegistry.get(current) ?? {}) as KeyMeta;
    meta.secret ??= declared.secret;
    meta.verification ??= declared.verification;
    meta.description ??= declared.description;
    const def = defOf(current);
    if (def.type === 'optional' || def.type === 'nullable') meta.optional = true;
    if (def.type === 'default') {
      meta.optional = true;
      meta.default = typeof def.defaultValue === 'function' ? (def.defaultValue as () => unknown)() : def.defaultValue;
    }
    if (def.innerType) current = def.innerType;
    else if (def.type === 'pipe' && def.in) current = def.in;
    else {
      meta.type = def.type;
      current = undefined;
    }
  }
  return meta;
}

/** The keys of a schema that are secret. */
export function secretKeys(schema: CredentialsSchema | undefined): string[] {
  if (!schema) return [];
  return Object.entries(schema.shape)
    .filter(([, value]) => keyMeta(value as z.ZodType).secret)
    .map(([key]) => key);
}

/** Keys every channel section may have, whatever its schema. */
const HOST_KEYS = new Set(['channel', 'allow_unverified']);

export interface ParsedCredentials<T> {
  values: T & { allow_unverified: boolean };
  /** Keys in the section that the schema does not know (typos, Rasa keys we do not use): logged as warnings. */
  unknownKeys: string[];
  /** True when the channel runs without request verification because the section allows it. */
  unverified: boolean;
}

function typeName(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  return `${typeof value} ${JSON.stringify(value)?.slice(0, 40)}`;
}

const EXPECTED: Record<string, string> = {
  string: 'a string',
  boolean: 'true or false',
  number: 'a number',
  int: 'an integer',
  array: 'a list',
  object: 'a mapping',
  record: 'a mapping',
};

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

/** ` (did you mean "answers"?)` for a near miss, else the list of known keys; nothing when none are known. */
function knownKeyHint(key: string, known: readonly string[]): string {
  if (known.length === 0) return '';
  const suggestion = known.find((candidate) => editDistance(key, candidate) <= 2);
  return suggestion !== undefined
    ? ` (did you mean "${suggestion}"?)`
    : ` (expected ${known.map((k) => `"${k}"`).join(', ')})`;
}

/** A key path as messages write it: `slack_token`, `users.0.name`. */
export function formatPath(path: ReadonlyArray<PropertyKey>): string {
  return path.map(String).join('.');
}

/** The value at `path` in `input`, or undefined where the path leaves it. */
function valueAt(input: unknown, path: ReadonlyArray<PropertyKey>): unknown {
  let value = input;
  for (const step of path) value = value !== null && typeof value === 'object' ? (value as Record<PropertyKey, unknown>)[step] : undefined;
  return value;
}

/**
 * One zod issue as the product words its configuration errors, relative to the file or section that `input` is:
 * `missing "where"`, `"where" must be a list (got a mapping)`, `unknown key "where"`, else `"where": <the schema's
 * message>` (so a schema's own messages read as a predicate: `is empty`, `must be 1`). `where` is the key path, dotted. `hideValue` (secrets) says only the type
 * of a wrong value; `root` names the whole input, for an issue at the empty path.
 */
export function describeIssue(
  issue: z.core.$ZodIssue,
  input: unknown,
  options: { hideValue?: boolean; root?: string; knownKeys?: (path: ReadonlyArray<PropertyKey>) => readonly string[] } = {},
): string {
  const where = formatPath(issue.path);
  const subject = where === '' ? (options.root ?? 'the value') : `"${where}"`;
  // What was given at the issue's path (an item of a list, a value of a mapping), not the whole key's value.
  const value = valueAt(input, issue.path);
  const got = (): string => (options.hideValue ? typeof value : typeName(value));
  switch (issue.code) {
    case 'invalid_type':
      if (where === '' && (value === undefined || value === null)) return `${subject} is empty`;
      if (value === undefined) return `missing ${subject}`;
      return `${subject} must be ${EXPECTED[issue.expected] ?? issue.expected} (got ${got()})`;
    case 'unrecognized_keys': {
      const known = options.knownKeys?.(issue.path) ?? [];
      return issue.keys.map((key) => `unknown key "${formatPath([...issue.path, key])}"${knownKeyHint(key, known)}`).join('; ');
    }
  }
  return `${subject}: ${issue.message}`;
}

/** YAML and `${ENV}` give strings, numbers and booleans loosely: coerce scalars to what the key declares. */
function coerce(value: unknown, type: string): unknown {
  if (value === undefined || value === null) return value;
  if (type === 'string' && (typeof value === 'number' || typeof value === 'boolean')) return String(value);
  if (type === 'boolean' && typeof value === 'string') {
    if (/^(true|yes|on|1)$/i.test(value.trim())) return true;
    if (/^(false|no|off|0)$/i.test(value.trim())) return false;
  }
  if (type === 'number' && typeof value === 'string' && value.trim() !== '' && !Number.isNaN(Number(value))) return Number(value);
  return value;
}

/** A string of only whitespace, or a mapping (id → secret, user/password) holding one. */
function blankSecret(value: unknown): boolean {
  if (typeof value === 'string') return value !== '' && value.trim() === '';
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) return Object.values(value).some((v) => typeof v === 'string' && v !== '' && v.trim() === '');
  return false;
}

/**
 * Validates one channel's section against its schema. Throws `CredentialsError` with a message relative to the
 * section (`missing "slack_token"`); the loader prefixes the file and channel.
 */
export function parseCredentials<S extends CredentialsSchema>(schema: S | undefined, raw: unknown): ParsedCredentials<z.output<S>> {
  if (raw === undefined || raw === null) raw = {};
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    throw new CredentialsError(`the section must be a mapping of keys to values, got ${typeName(raw)}`);
  }
  const section = { ...(raw as Record<string, unknown>) };
  // An empty YAML value (`allow_unverified:`) is null: as if the key were absent.
  if (section.allow_unverified === null) delete section.allow_unverified;
  const allowUnverified = coerce(section.allow_unverified, 'boolean');
  if (allowUnverified !== undefined && typeof allowUnverified !== 'boolean') {
    throw new CredentialsError(`"allow_unverified" must be true or false (got ${typeName(section.allow_unverified)})`, 'allow_unverified');
  }
  const shape = schema?.shape ?? {};
  for (const [key, keySchema] of Object.entries(shape)) {
    if (!(key in section)) continue;
    const meta = keyMeta(keySchema as z.ZodType);
    // An empty YAML value (`slack_channel:`) is null: as if the key were absent (so a default applies, and a required
    // key is reported missing), unless the key accepts null. An empty verification secret (`${SECRET:-}`) is missing
    // too, so the allow_unverified policy below decides, not a length check.
    // An empty secret (`${SECRET:-}`) is missing too: a required one is reported, an optional one is off.
    if ((section[key] === null && !(keySchema as z.ZodType).safeParse(null).success) || (meta.secret && section[key] === '')) {
      delete section[key];
      continue;
    }
    // A secret of only whitespace is a mistake (a stray space, a quoted blank), never a key: refused, not trimmed.
    if (meta.secret && blankSecret(section[key])) {
      throw new CredentialsError(`"${key}" is blank (only whitespace); give the secret or remove the key`, key);
    }
    section[key] = coerce(section[key], meta.type);
  }

  const result = (schema ?? z.object({})).safeParse(section, { jitless: true });
  if (!result.success) {
    const problems = result.error.issues.map((issue) => {
      const key = String(issue.path[0] ?? '');
      const hideValue = keyMeta((shape[key] as z.ZodType | undefined) ?? z.unknown()).secret === true;
      return { key, text: describeIssue(issue, section, { hideValue }) };
    });
    throw new CredentialsError(problems.map((p) => p.text).join('; '), problems[0]?.key);
  }

  const values = result.data as Record<string, unknown>;
  let unverified = false;
  for (const [key, keySchema] of Object.entries(shape)) {
    const meta = keyMeta(keySchema as z.ZodType);
    if (!meta.verification) continue;
    if (values[key] === undefined || values[key] === '') {
      if (allowUnverified === true) {
        unverified = true;
      } else {
        throw new CredentialsError(
          `missing "${key}", needed to verify that requests come from the platform (or set allow_unverified: true to accept unverified requests)`,
          key,
        );
      }
    }
  }
  if (allowUnverified === true) unverified = true;
  values.allow_unverified = allowUnverified === true;
  const unknownKeys = Object.keys(section).filter((key) => !(key in shape) && !HOST_KEYS.has(key));
  return { values: values as z.output<S> & { allow_unverified: boolean }, unknownKeys, unverified };
}

export interface KeyDoc {
  key: string;
  type: string;
  required: boolean;
  secret: boolean;
  verification: boolean;
  default?: unknown;
  description?: string;
}

/** The documented keys of a schema, in declaration order: what `credentials.example.yml` is generated from. */
export function describeCredentials(schema: CredentialsSchema | undefined): KeyDoc[] {
  if (!schema) return [];
  return Object.entries(schema.shape).map(([key, value]) => {
    const meta = keyMeta(value as z.ZodType);
    return {
      key,
      type: meta.type,
      required: !meta.optional,
      secret: Boolean(meta.secret),
      verification: Boolean(meta.verification),
      ...(meta.default !== undefined ? { default: meta.default } : {}),
      ...(meta.description ? { description: meta.description } : {}),
    };
  });
}
