import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { load, YAMLException } from 'js-yaml';
import { ConfigError } from './errors.js';

/** One channel to load: a section of `credentials.yml`, or a bare `--channel` spec. */
export interface ChannelSection {
  /** The section's key (or the `--channel` spec). */
  key: string;
  /** What to load: the section's `channel:` value, else its key. */
  spec: string;
  /** True when `channel:` names the class, so the key is only the URL prefix. */
  aliased: boolean;
  /** The section's values, without `channel:`; empty for a bare spec. */
  values: Record<string, unknown>;
  /** Where it came from, for error messages: the file's name, or `--channel`. */
  source: string;
}

/** `$${` (an escaped `${`, kept literally), or a reference `${NAME}` / `${NAME:-default}`. */
const ENV_REFERENCE = /\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

/**
 * Replaces `${NAME}` and `${NAME:-default}` in a string from the environment. A reference to an unset variable
 * without a default is an error (naming the variable, never its value). `$${` writes a literal `${` (as in Docker
 * Compose): `pa$${x}ss` is `pa${x}ss`.
 */
export function interpolateEnv(text: string, env: NodeJS.ProcessEnv, where: string): string {
  return text.replace(ENV_REFERENCE, (match, name: string | undefined, fallback: string | undefined) => {
    if (name === undefined) return match.slice(1);
    const value = env[name];
    if (value !== undefined && value !== '') return value;
    if (fallback !== undefined) return fallback;
    throw new ConfigError(`${where}: environment variable ${name} is not set (use \${${name}:-default} for a default)`);
  });
}

function interpolateValue(value: unknown, env: NodeJS.ProcessEnv, where: string): unknown {
  if (typeof value === 'string') return interpolateEnv(value, env, where);
  if (Array.isArray(value)) return value.map((item, index) => interpolateValue(item, env, `${where}[${index}]`));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value as Record<string, unknown>).map(([key, item]) => [key, interpolateValue(item, env, `${where}: "${key}"`)]),
    );
  }
  return value;
}

/** Parses the text of a credentials file. `fileName` is only used in messages. */
export function parseCredentialsText(text: string, fileName: string, env: NodeJS.ProcessEnv = process.env): ChannelSection[] {
  let document: unknown;
  try {
    document = load(text, { filename: fileName });
  } catch (error) {
    if (error instanceof YAMLException) {
      const mark = (error as YAMLException & { mark?: { line: number; column: number } }).mark;
      const where = mark ? `${fileName}:${mark.line + 1}:${mark.column + 1}` : fileName;
      throw new ConfigError(`${where}: invalid YAML: ${error.reason}`);
    }
    throw error;
  }
  if (document === undefined || document === null) return [];
  if (typeof document !== 'object' || Array.isArray(document)) {
    throw new ConfigError(`${fileName}: expected a mapping of channel names to their credentials, got ${Array.isArray(document) ? 'a list' : typeof document}`);
  }
  const sections: ChannelSection[] = [];
  for (const [key, raw] of Object.entries(document as Record<string, unknown>)) {
    if (raw !== null && (typeof raw !== 'object' || Array.isArray(raw))) {
      throw new ConfigError(`${fileName}: ${key}: the section must be a mapping of keys to values (or empty), got ${Array.isArray(raw) ? 'a list' : typeof raw}`);
    }
    const values = interpolateValue(raw ?? {}, env, `${fileName}: ${key}`) as Record<string, unknown>;
    const { channel, ...rest } = values;
    if (channel !== undefined && (typeof channel !== 'string' || channel.trim() === '')) {
      throw new ConfigError(`${fileName}: ${key}: "channel" must be a channel spec such as slack or mypackage.MyIO`);
    }
    sections.push({
      key,
      spec: typeof channel === 'string' ? channel.trim() : key,
      aliased: typeof channel === 'string',
      values: rest,
      source: fileName,
    });
  }
  return sections;
}

/**
 * Why a credentials file is too open — it can be read or written by its group or by others (`mode & 0o077`) — or
 * undefined when it is not. Never on Windows, where the mode says nothing about other users; undefined too when the
 * file cannot be stat'ed (reading it reports why).
 */
export function looseCredentialsFile(file: string, cwd = process.cwd(), platform: NodeJS.Platform = process.platform): string | undefined {
  if (platform === 'win32') return undefined;
  let mode: number;
  try {
    mode = statSync(path.resolve(cwd, file)).mode & 0o777;
  } catch {
    return undefined;
  }
  if ((mode & 0o077) === 0) return undefined;
  const who = [mode & 0o070 ? 'its group' : '', mode & 0o007 ? 'all users' : ''].filter(Boolean).join(' and ');
  return `${file} (mode ${mode.toString(8).padStart(4, '0')}) can be read or changed by ${who}, and it holds secrets: chmod 600 ${file}`;
}

/** Reads and parses a credentials file; a missing or unreadable file is a `ConfigError` naming it. */
export function readCredentialsFile(file: string, env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): ChannelSection[] {
  const fullPath = path.resolve(cwd, file);
  let text: string;
  try {
    text = readFileSync(fullPath, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new ConfigError(`${file}: cannot read the credentials file (${code === 'ENOENT' ? 'no such file' : code ?? (error as Error).message})`);
  }
  return parseCredentialsText(text, path.basename(file), env);
}
