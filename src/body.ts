import type { Context } from 'koa';
import { BadRequestError } from './errors.js';
import { rawBody } from './signature.js';

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
  const raw = rawBody(ctx);
  if (!ctx.is('urlencoded')) throw new BadRequestError('expected a form-encoded request body');
  const fields: Record<string, string> = {};
  // Parsed from the raw body, flat: the body parser's nested `a[b]` syntax is not what platforms mean.
  for (const [key, value] of new URLSearchParams(raw)) fields[key] ??= value;
  return fields;
}
