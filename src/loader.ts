import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL, fileURLToPath } from 'node:url';
import { isInputChannelClass, isValidChannelName, type InputChannel, type InputChannelClass } from './channel.js';
import type { ChannelSection } from './credentials.js';
import { ConfigError, CredentialsError } from './errors.js';
import type { Logger } from './logger.js';

/** Built-in channels live in dist/channels/<name>/index.js, beside this file's dist/loader.js. */
const BUILTIN_DIR = new URL('./channels/', import.meta.url);
const BUILTIN_NAME = /^[a-z][a-z0-9_]*$/;

/** The names of the built-in channels this build ships. */
export function builtinChannels(): string[] {
  const known = ['facebook', 'slack', 'telegram', 'twilio', 'twilio_voice', 'mattermost', 'rocketchat', 'webexteams', 'whatsapp', 'instagram', 'line', 'discord', 'botframework', 'hangouts', 'audiocodes', 'jambonz', 'socketio', 'rest', 'callback', 'console'];
  return known.filter((name) => existsSync(new URL(`./${name}/index.js`, BUILTIN_DIR)));
}

function isPathSpec(spec: string): boolean {
  return spec.startsWith('.') || path.isAbsolute(spec) || spec.startsWith('file:');
}

const MODULE_EXTENSIONS = ['', '.js', '.mjs', '.cjs'];

/** A file path spec → the file to import, trying the extensions Node would and a folder's package.json/index.js. */
function resolveFile(spec: string, cwd: string): string | undefined {
  const base = spec.startsWith('file:') ? fileURLToPath(spec) : path.resolve(cwd, spec);
  for (const extension of MODULE_EXTENSIONS) {
    const candidate = base + extension;
    if (existsSync(candidate) && statSync(candidate).isFile()) return candidate;
  }
  if (existsSync(base) && statSync(base).isDirectory()) {
    const pkgFile = path.join(base, 'package.json');
    if (existsSync(pkgFile)) return resolvePackageEntry(base, '.', readJson(pkgFile));
    for (const index of ['index.js', 'index.mjs']) if (existsSync(path.join(base, index))) return path.join(base, index);
  }
  return undefined;
}

function readJson(file: string): Record<string, unknown> {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch {
    return {};
  }
}

/** Picks the file an ESM import would load from a package's `exports` (conditions import, node, default, require). */
function pickExport(target: unknown): string | undefined {
  if (typeof target === 'string') return target;
  if (Array.isArray(target)) {
    for (const item of target) {
      const picked = pickExport(item);
      if (picked) return picked;
    }
    return undefined;
  }
  if (target && typeof target === 'object') {
    const conditions = target as Record<string, unknown>;
    for (const condition of ['import', 'node', 'default', 'require']) {
      if (condition in conditions) {
        const picked = pickExport(conditions[condition]);
        if (picked) return picked;
      }
    }
  }
  return undefined;
}

function resolvePackageEntry(dir: string, subpath: string, pkg: Record<string, unknown>): string | undefined {
  const exportsField = pkg.exports;
  let relative: string | undefined;
  if (exportsField !== undefined) {
    const isSubpathMap = typeof exportsField === 'object' && exportsField !== null && !Array.isArray(exportsField)
      && Object.keys(exportsField).some((key) => key.startsWith('.'));
    if (isSubpathMap) relative = pickExport((exportsField as Record<string, unknown>)[subpath]);
    else if (subpath === '.') relative = pickExport(exportsField);
  } else if (subpath === '.') {
    relative = typeof pkg.main === 'string' ? pkg.main : 'index.js';
  } else {
    relative = subpath;
  }
  if (!relative) return undefined;
  return resolveFile(path.resolve(dir, relative), dir);
}

/** Finds an installed package (or a file inside one) from `cwd` upwards, as Node's resolver would. */
function resolvePackage(spec: string, cwd: string): string | undefined {
  const parts = spec.split('/');
  const nameLength = spec.startsWith('@') ? 2 : 1;
  if (parts.length < nameLength || parts.slice(0, nameLength).some((p) => p === '')) return undefined;
  const name = parts.slice(0, nameLength).join('/');
  const subpath = parts.length > nameLength ? `./${parts.slice(nameLength).join('/')}` : '.';
  for (let dir = path.resolve(cwd); ; dir = path.dirname(dir)) {
    const pkgDir = path.join(dir, 'node_modules', name);
    const pkgFile = path.join(pkgDir, 'package.json');
    if (existsSync(pkgFile)) return resolvePackageEntry(pkgDir, subpath, readJson(pkgFile));
    if (path.dirname(dir) === dir) return undefined;
  }
}

interface Candidate {
  module: string;
  exportName?: string;
}

/** The ways to read a spec: the whole of it as a module, then split at its last dot into module + export. */
function candidates(spec: string): Candidate[] {
  const list: Candidate[] = [{ module: spec }];
  const lastSlash = spec.lastIndexOf('/');
  const lastDot = spec.lastIndexOf('.');
  if (lastDot > lastSlash + 1 || (lastDot > 0 && lastSlash < 0)) {
    const exportName = spec.slice(lastDot + 1);
    if (/^[A-Za-z_$][\w$]*$/.test(exportName) && !['js', 'mjs', 'cjs'].includes(exportName)) {
      list.push({ module: spec.slice(0, lastDot), exportName });
    }
  }
  return list;
}

function describeExports(module: Record<string, unknown>): string {
  const names = Object.keys(module).filter((n) => n !== '__esModule');
  return names.length ? names.join(', ') : 'nothing';
}

/** What a module offers as a channel class: the named export, the default export, or its single channel class. */
function pickClass(module: Record<string, unknown>, exportName: string | undefined): InputChannelClass | string {
  // A CommonJS module's exports object arrives as the default export.
  const cjs = module.default && typeof module.default === 'object' ? (module.default as Record<string, unknown>) : undefined;
  if (exportName !== undefined) {
    const value = module[exportName] ?? cjs?.[exportName];
    if (value === undefined) return `it has no export "${exportName}" (it exports: ${describeExports(cjs ?? module)})`;
    if (!isInputChannelClass(value)) {
      return `its export "${exportName}" is not an InputChannel class (a channel class extends InputChannel, or has a static fromCredentials() and a router() method)`;
    }
    return value;
  }
  if (isInputChannelClass(module.default)) return module.default;
  const classes = [...new Set([...Object.values(module), ...Object.values(cjs ?? {})].filter(isInputChannelClass))];
  if (classes.length === 1) return classes[0]!;
  if (classes.length > 1) {
    return `it exports several channel classes (${classes.map((c) => c.name).join(', ')}); name one, as in SPEC.ClassName`;
  }
  return `it has no default export and no InputChannel class (it exports: ${describeExports(cjs ?? module)})`;
}

/**
 * Loads something named by a spec from a module: the whole spec as a module first, then split at its last dot into
 * module + export name. `pick` chooses the value from the module or says why it cannot. Paths and packages resolve
 * from `cwd`. Throws a `ConfigError` that says what was tried and why each try failed.
 */
export async function loadFromSpec<T>(
  spec: string,
  what: string,
  pick: (module: Record<string, unknown>, exportName: string | undefined) => T | string,
  cwd = process.cwd(),
): Promise<T> {
  const tried: string[] = [];
  for (const candidate of candidates(spec)) {
    const label = candidate.exportName ? `export "${candidate.exportName}" of module "${candidate.module}"` : `module "${candidate.module}"`;
    const file = isPathSpec(candidate.module) ? resolveFile(candidate.module, cwd) : resolvePackage(candidate.module, cwd);
    if (!file) {
      tried.push(`${label}: not found${isPathSpec(candidate.module) ? ` (no file ${path.resolve(cwd, candidate.module)}[.js|.mjs|.cjs])` : ' (no such installed package)'}`);
      continue;
    }
    let module: Record<string, unknown>;
    try {
      module = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
    } catch (error) {
      tried.push(`${label}: found at ${file}, but importing it failed: ${(error as Error).message}`);
      continue;
    }
    const picked = pick(module, candidate.exportName);
    if (typeof picked !== 'string') return picked;
    tried.push(`${label}: found at ${file}, but ${picked}`);
  }
  throw new ConfigError(`cannot load ${what} "${spec}": tried ${tried.join('; tried ')}`);
}

/**
 * Loads a channel class from a spec (DESIGN §4): a built-in name, `package.ClassName`, `@scope/pkg.ClassName`, a
 * module path with or without `.ClassName`, or a package name alone.
 */
export async function loadChannelClass(spec: string, cwd = process.cwd()): Promise<InputChannelClass> {
  if (BUILTIN_NAME.test(spec) && builtinChannels().includes(spec)) {
    const module = (await import(new URL(`./${spec}/index.js`, BUILTIN_DIR).href)) as Record<string, unknown>;
    const picked = pickClass(module, undefined);
    if (typeof picked === 'string') throw new ConfigError(`built-in channel "${spec}" is broken: ${picked}`);
    return picked;
  }
  try {
    return await loadFromSpec(spec, 'channel', pickClass, cwd);
  } catch (error) {
    const builtins = BUILTIN_NAME.test(spec) ? ` It is not a built-in channel either (built-ins: ${builtinChannels().join(', ')}).` : '';
    throw new ConfigError(`${(error as Error).message}.${builtins}`);
  }
}

/** Builds a channel from its section and gives it its URL prefix. */
export async function createChannel(section: ChannelSection, cwd = process.cwd()): Promise<InputChannel> {
  const where = `${section.source}: ${section.key}`;
  let ChannelClass: InputChannelClass;
  try {
    ChannelClass = await loadChannelClass(section.spec, cwd);
  } catch (error) {
    throw new ConfigError(`${where}: ${(error as Error).message}`);
  }
  let channel: InputChannel;
  try {
    channel = typeof ChannelClass.fromCredentials === 'function'
      ? await ChannelClass.fromCredentials(section.values)
      : new (ChannelClass as unknown as new (c: unknown) => InputChannel)(section.values);
  } catch (error) {
    if (error instanceof CredentialsError) throw new ConfigError(`${where}: ${error.message}`);
    throw new ConfigError(`${where}: the channel could not be created from its credentials: ${(error as Error).message}`);
  }
  if (section.aliased) {
    // One class mounted under several prefixes: the section's key is this instance's name.
    const prefix = section.key;
    Object.defineProperty(channel, 'name', { value: () => prefix, configurable: true });
  }
  const name = typeof channel.name === 'function' ? channel.name() : undefined;
  if (!isValidChannelName(name)) {
    throw new ConfigError(`${where}: the channel's name() must be a URL-safe prefix (letters, digits, "-", "_", "."), got ${JSON.stringify(name)}`);
  }
  return channel;
}

/**
 * Loads every channel: each credentials section, then each `--channel` spec that no section already names. Two
 * channels claiming one URL prefix is an error naming both.
 */
export async function loadChannels(sections: ChannelSection[], specs: string[], options: { cwd?: string; logger?: Logger } = {}): Promise<InputChannel[]> {
  const cwd = options.cwd ?? process.cwd();
  const all = [...sections];
  for (const spec of specs) {
    if (!sections.some((s) => s.key === spec || s.spec === spec)) all.push({ key: spec, spec, aliased: false, values: {}, source: '--channel' });
  }
  const channels: InputChannel[] = [];
  const owners = new Map<string, string>();
  for (const section of all) {
    const channel = await createChannel(section, cwd);
    const name = channel.name();
    const owner = `"${section.key}" (${section.source})`;
    const previous = owners.get(name);
    if (previous) throw new ConfigError(`two channels claim /webhooks/${name}/: ${previous} and ${owner}; give one a key of its own with "channel: SPEC"`);
    owners.set(name, owner);
    for (const key of channel.unknownKeys ?? []) {
      options.logger?.warn({ channel: name }, `${section.source}: ${section.key}: unknown key "${key}" is ignored`);
    }
    if (channel.unverified) {
      options.logger?.warn({ channel: name }, `${section.source}: ${section.key}: allow_unverified is set: requests to /webhooks/${name}/ are NOT verified`);
    }
    channels.push(channel);
  }
  return channels;
}
