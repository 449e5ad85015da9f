import type { Context } from 'koa';
import { BadRequestError } from './errors.js';
import { rawBody } from './signature.js';

/** How deeply a JSON body may nest arrays and objects; no platform sends more than a dozen levels. */
export const MAX_JSON_DEPTH = 64;

const OPEN_BRACE = 0x7b;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACE = 0x7d;
const CLOSE_BRACKET = 0x5d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/**
 * True when `json` nests arrays and objects deeper than `maxDepth`. One linear pass over the bytes, counting `[`/`{`
 * outside strings, so a hostile body is refused before `JSON.parse` spends time (and stack) on it. Works on UTF-8
 * bytes as on text: the characters it looks at are ASCII, and no byte of a multi-byte UTF-8 sequence is ASCII. It
 * does not validate: malformed JSON is left to the parser.
 */
export function jsonTooDeep(json: string | Uint8Array, maxDepth = MAX_JSON_DEPTH): boolean {
  const bytes = typeof json === 'string' ? Buffer.from(json, 'utf8') : json;
  let depth = 0;
  let inString = false;
  for (let i = 0; i < bytes.length; i++) {
    const byte = bytes[i];
    if (inString) {
      if (byte === BACKSLASH) i++;
      else if (byte === QUOTE) inString = false;
    } else if (byte === QUOTE) {
      inString = true;
    } else if (byte === OPEN_BRACE || byte === OPEN_BRACKET) {
      if (++depth > maxDepth) return true;
    } else if ((byte === CLOSE_BRACE || byte === CLOSE_BRACKET) && depth > 0) {
      depth--;
    }
  }
  return false;
}

/**
 * The request body as a JSON object. Clients of Rasa's REST channel often post JSON without a JSON content type
 * (`curl -d '{...}'` sends a form type), and Rasa parses it anyway; so does this. Anything that is not a JSON
 * object is a 400.
 */
export function jsonBody(ctx: Context): Record<string, unknown> {
  const parsed = (ctx.request as { body?: unknown }).body;
  if (ctx.is('json', '+json')) {
    if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)) return parsed as Record<string, unknown>;
    throw new BadRequestError('expected a JSON object as the request body');
  }
  const raw = rawBody(ctx).trim();
  if (raw === '') throw new BadRequestError('expected a JSON object as the request body, got an empty body');
  if (jsonTooDeep(raw)) throw new BadRequestError('JSON nested too deeply');
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    throw new BadRequestError('malformed JSON body');
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new BadRequestError('expected a JSON object as the request body');
  return value as Record<string, unknown>;
}

/** The request body as form fields (`application/x-www-form-urlencoded`), each field a string. */
export function formBody(ctx: Context): Record<string, string> {
  // A byte order mark is not part of the first field's name.
  const raw = rawBody(ctx).replace(/^\uFEFF/, '');
  if (!ctx.is('urlencoded')) throw new BadRequestError('expected a form-encoded request body');
  const fields: Record<string, string> = {};
  // Parsed from the raw body, flat: the body parser's nested `a[b]` syntax is not what platforms mean.
  for (const [key, value] of new URLSearchParams(raw)) fields[key] ??= value;
  return fields;
}
