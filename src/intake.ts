/**
 * The host's request-body intake: every body is first read as bytes, within its route's limit, and kept for
 * signature checks (`rawBytes`); it is parsed (koa-bodyparser, over a replay of those bytes) either at once, or —
 * on a route that verifies first (`requireVerified`) — only once the request is verified, so an unsigned request
 * to a signed route is refused without its body ever being parsed.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { Readable } from 'node:stream';
import { createUnzip } from 'node:zlib';
import type { Context, Next } from 'koa';
import bodyParser from 'koa-bodyparser';
import getRawBody from 'raw-body';
import { jsonTooDeep } from './body.js';
import { BadRequestError, PayloadTooLargeError, UnsupportedMediaTypeError } from './errors.js';
import { keepRawBytes } from './signature.js';

const NO_BYTES = Buffer.alloc(0);

/** Content types parsed as JSON (`+json` covers `application/vnd.api+json` and the like). */
const JSON_TYPES = ['application/json', '+json', 'application/csp-report'];

/** Charsets a body is parsed in as sent; any other one a JSON or text body declares is decoded into UTF-8 first. */
const UTF8_NAMES = new Set(['', 'utf-8', 'utf8', 'us-ascii', 'ascii']);

export interface BodyIntakeOptions {
  /** The largest body this request's route accepts: bytes, or a size such as `64kb` (the 413 names it). */
  limitFor(ctx: Context): number | string;
  /** True when the matched route verifies the request before anything reads its body. */
  verifiesFirst(ctx: Context): boolean;
}

/** Koa middleware: read the body's bytes, then parse now, or leave it to `requireVerified` on a verify-first route. */
export function bodyIntake(options: BodyIntakeOptions) {
  // The bytes are already bounded by the route's limit when the parser sees them.
  const unbounded = '1tb';
  const parser = bodyParser({
    enableTypes: ['json', 'form', 'text'],
    extendTypes: { json: JSON_TYPES },
    jsonLimit: unbounded,
    formLimit: unbounded,
    textLimit: unbounded,
    onerror: (error: Error & { status?: number; type?: string }) => {
      if (error.status === 415) throw new UnsupportedMediaTypeError('unsupported content encoding');
      throw new BadRequestError(error.type === 'entity.parse.failed' || error instanceof SyntaxError ? 'malformed JSON body' : 'malformed request body');
    },
  });

  return async function intake(ctx: Context, next: Next): Promise<void> {
    // No body announced (a GET, a health probe): nothing to read, keep or parse; the body is `{}`, as the parser
    // makes it for a request without one.
    // type-is's `hasBody` (what `ctx.request.is() === null` asks), without its content-type parse.
    if (ctx.req.headers['transfer-encoding'] === undefined && Number.isNaN(Number(ctx.req.headers['content-length']))) {
      keepRawBytes(ctx, NO_BYTES, async () => {});
      (ctx.request as { body?: unknown }).body = {};
      return next();
    }
    const bytes = await readBytes(ctx, options.limitFor(ctx));
    let parsing: Promise<void> | undefined;
    const parse = () => (parsing ??= parseBytes(ctx, bytes, parser));
    keepRawBytes(ctx, bytes, parse);
    if (!options.verifiesFirst(ctx)) await parse();
    await next();
  };
}

/** The body as bytes, `Content-Encoding` (gzip, deflate) undone; the limit counts the decoded bytes. */
async function readBytes(ctx: Context, limit: number | string): Promise<Buffer> {
  const encoding = (ctx.get('content-encoding') || 'identity').trim().toLowerCase();
  const compressed = encoding === 'gzip' || encoding === 'deflate' || encoding === 'x-gzip';
  if (!compressed && encoding !== 'identity') throw new UnsupportedMediaTypeError('unsupported content encoding');
  const unzip = compressed ? ctx.req.pipe(createUnzip()) : undefined;
  const length = compressed ? undefined : ctx.get('content-length') || undefined;
  try {
    return await getRawBody(unzip ?? ctx.req, { limit, length });
  } catch (thrown) {
    if (unzip) {
      ctx.req.unpipe(unzip);
      unzip.destroy();
    }
    const error = thrown as Error & { status?: number; type?: string };
    if (error.status === 413) throw new PayloadTooLargeError(`request body is larger than the limit of ${String(limit)}`);
    throw new BadRequestError(error.type === 'request.aborted' ? 'request aborted' : 'malformed request body');
  }
}

/**
 * Parses the kept bytes with koa-bodyparser, as if they were arriving: it reads a replay stream through a view of
 * the context whose `req` is that stream; what it parses is set on the real request. A JSON-looking body nested too
 * deeply is refused before any parser sees it.
 */
async function parseBytes(ctx: Context, bytes: Buffer, parser: ReturnType<typeof bodyParser>): Promise<void> {
  if (looksLikeJson(bytes) && jsonTooDeep(bytes)) throw new BadRequestError('JSON nested too deeply');
  if (PLAIN_JSON_TYPE.test(ctx.get('content-type')) && parsePlainJson(ctx, bytes)) return;
  const body = inUtf8(bytes, ctx);
  const replay = Object.assign(Readable.from(body.length > 0 ? [body] : [], { objectMode: false }), { headers: replayHeaders(ctx.req.headers, body.length) });
  const request = Object.create(ctx.request, { req: { value: replay } }) as Context['request'] & { rawBody?: string };
  const view = Object.create(ctx, { req: { value: replay }, request: { value: request } }) as Context;
  await parser(view, async () => {});
  (ctx.request as { body?: unknown }).body = request.body;
  (ctx.request as { rawBody?: unknown }).rawBody = request.rawBody;
}

/** `application/json`, in UTF-8 or with no charset: what nearly every webhook sends. */
const PLAIN_JSON_TYPE = /^\s*application\/json\s*(?:;\s*charset\s*=\s*"?utf-?8"?\s*)?$/i;
/** co-body's strict mode: a JSON body is an object or an array. */
const STRICT_JSON = /^[\x20\x09\x0a\x0d]*[[{]/;
/** A `"__proto__":` key, escaped or not (@hapi/bourne's test): such a body takes the parser's own path. */
const PROTO_KEY = /"(?:_|\\u005[Ff])(?:_|\\u005[Ff])(?:p|\\u0070)(?:r|\\u0072)(?:o|\\u006[Ff])(?:t|\\u0074)(?:o|\\u006[Ff])(?:_|\\u005[Ff])(?:_|\\u005[Ff])"\s*:/;

/**
 * A plain JSON body parsed as koa-bodyparser (co-body in strict mode, @hapi/bourne) parses it, without the replay
 * stream and the parser's per-request machinery: the same body, `rawBody` (a byte order mark dropped, as its decoder
 * drops it) and 400. False, having set nothing, for a body with a `__proto__` key: the parser decides that one.
 */
function parsePlainJson(ctx: Context, bytes: Buffer): boolean {
  let text = bytes.toString('utf8');
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  if (PROTO_KEY.test(text)) return false;
  let body: unknown = {};
  if (text !== '') {
    if (!STRICT_JSON.test(text)) throw new BadRequestError('malformed JSON body');
    try {
      body = JSON.parse(text);
    } catch {
      throw new BadRequestError('malformed JSON body');
    }
  }
  (ctx.request as { body?: unknown }).body = body;
  (ctx.request as { rawBody?: unknown }).rawBody = text;
  return true;
}

/** The headers the parser sees: the body's real length, no transfer or content encoding left to undo. */
function replayHeaders(headers: IncomingHttpHeaders, length: number): IncomingHttpHeaders {
  const { 'transfer-encoding': chunked, 'content-encoding': _encoding, 'content-length': declared, ...rest } = headers;
  // A request that announced no body keeps announcing none, so the parser treats it as before.
  return chunked !== undefined || declared !== undefined ? { ...rest, 'content-length': String(length) } : rest;
}

/** First non-blank byte (after a byte order mark) is `{` or `[`: worth the depth scan whatever its content type says. */
function looksLikeJson(bytes: Buffer): boolean {
  let i = bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? 3 : 0;
  while (i < bytes.length && (bytes[i] === 0x20 || bytes[i] === 0x09 || bytes[i] === 0x0a || bytes[i] === 0x0d)) i++;
  return bytes[i] === 0x7b || bytes[i] === 0x5b;
}

/**
 * The body in UTF-8, which the parser assumes: a JSON or text body that declares another charset
 * (`charset=iso-8859-1`) is decoded from it. A charset this Node does not know is read as UTF-8, as before.
 */
function inUtf8(bytes: Buffer, ctx: Context): Buffer {
  const charset = (ctx.request.charset || '').trim().toLowerCase();
  if (UTF8_NAMES.has(charset) || bytes.length === 0 || !ctx.is(['json', '+json', 'text/plain'])) return bytes;
  try {
    return Buffer.from(new TextDecoder(charset).decode(bytes), 'utf8');
  } catch {
    return bytes;
  }
}
