import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Context, Next } from 'koa';
import { BadRequestError, ForbiddenError, UnauthorizedError } from './errors.js';

export type HmacAlgorithm = 'sha1' | 'sha256' | 'sha512';

/** HMAC of a payload (the raw request body, or a platform's base string) as hex or base64. */
export function hmac(algorithm: HmacAlgorithm, secret: string | Buffer, payload: string | Buffer, encoding: 'hex' | 'base64' = 'hex'): string {
  return createHmac(algorithm, secret).update(payload).digest(encoding);
}

/** Compares two strings in constant time; different lengths are unequal (checked first, as timingSafeEqual needs). */
export function safeEqual(a: string | undefined | null, b: string | undefined | null): boolean {
  if (typeof a !== 'string' || typeof b !== 'string') return false;
  const left = Buffer.from(a, 'utf8');
  const right = Buffer.from(b, 'utf8');
  if (left.length !== right.length) return false;
  return timingSafeEqual(left, right);
}

export interface HmacCheck {
  algorithm: HmacAlgorithm;
  secret: string | Buffer;
  /** Exactly the bytes the platform signed: the raw body, never re-serialised JSON. */
  payload: string | Buffer;
  /** The signature the request carries (a header value); missing → not valid. */
  signature: string | undefined | null;
  encoding?: 'hex' | 'base64';
  /** A prefix the header carries before the digest (`sha256=`, `v0=`). */
  prefix?: string;
}

/** True when `signature` is the HMAC of `payload`. Never throws: a missing or malformed header is just invalid. */
export function verifyHmac(check: HmacCheck): boolean {
  const { signature } = check;
  if (typeof signature !== 'string' || signature === '') return false;
  // Fails closed: with an empty key anyone can compute the HMAC, so an unset secret verifies nothing.
  if (check.secret === undefined || check.secret === null || check.secret.length === 0) return false;
  const prefix = check.prefix ?? '';
  if (!signature.startsWith(prefix)) return false;
  const expected = hmac(check.algorithm, check.secret, check.payload, check.encoding ?? 'hex');
  const given = signature.slice(prefix.length);
  // Hex digests are case-insensitive; base64 is not.
  return (check.encoding ?? 'hex') === 'hex' ? safeEqual(given.toLowerCase(), expected) : safeEqual(given, expected);
}

/** Request headers as Node gives them (`ctx.headers`): lower-case names, a repeated header as a list. */
export type RequestHeaders = Record<string, string | string[] | undefined>;

/** One header's value, the first when it is repeated; the name is matched case-insensitively. */
export function headerValue(headers: RequestHeaders, name: string): string | undefined {
  const value = headers[name.toLowerCase()];
  return Array.isArray(value) ? value[0] : value;
}

/** The credentials of `Authorization: Bearer <credentials>` (the scheme case-insensitive), or undefined. */
export function bearerToken(headers: RequestHeaders): string | undefined {
  return /^[ \t]*Bearer[ \t]+(\S+)[ \t]*$/i.exec(headerValue(headers, 'authorization') ?? '')?.[1];
}

/**
 * Meta's webhook signature, shared by the platforms of a Meta app (Messenger, Instagram, WhatsApp Cloud API):
 * `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(app secret, raw body)>`. `true`, or the reason it failed (for the
 * log, never the client). Never throws.
 */
export function verifyHubSignature(raw: string | Buffer, headers: RequestHeaders, secret: string | undefined): true | string {
  if (!secret) return 'no app secret configured';
  const signature = headerValue(headers, 'x-hub-signature-256');
  if (signature === undefined) return 'missing X-Hub-Signature-256 header';
  return verifyHmac({ algorithm: 'sha256', secret, payload: raw, signature, prefix: 'sha256=' }) ? true : 'X-Hub-Signature-256 does not match the body';
}

/**
 * Meta's webhook subscription check (`GET ?hub.mode=subscribe&hub.verify_token=…&hub.challenge=…`): the challenge to
 * answer as text when the mode is `subscribe` and the token equals `verifyToken` (constant time). Throws a
 * `ForbiddenError` (403) for a wrong mode or token, a `BadRequestError` (400) when the challenge is missing.
 */
export function hubChallenge(query: Record<string, unknown>, verifyToken: string): string {
  const token = query['hub.verify_token'];
  if (query['hub.mode'] !== 'subscribe' || typeof token !== 'string' || !safeEqual(token, verifyToken)) throw new ForbiddenError('invalid verify token');
  const challenge = query['hub.challenge'];
  if (typeof challenge !== 'string') throw new BadRequestError('missing "hub.challenge"');
  return challenge;
}

/** Where the host keeps a request's bytes, and its deferred parse. `Symbol.for`: a channel package bundling its own
 * copy of this module still finds what the host stored. */
const RAW_BYTES = Symbol.for('switchboard.rawBytes');
const PARSE_BODY = Symbol.for('switchboard.parseBody');
/** Marks the middleware `requireVerified` returns, so the host knows the route verifies before its body is parsed. */
export const VERIFIES_FIRST = Symbol.for('switchboard.verifiesFirst');

const NO_BYTES = Buffer.alloc(0);

type BodyHolder = { [RAW_BYTES]?: unknown; [PARSE_BODY]?: unknown; rawBody?: unknown };

/**
 * The request body exactly as received (after any `Content-Encoding` is undone): the bytes a platform signed. Use
 * this for signatures: decoded text loses a byte order mark and any bytes that are not UTF-8. Empty when the
 * request had no body.
 */
export function rawBytes(ctx: Context): Buffer {
  const request = ctx.request as BodyHolder;
  const bytes = request[RAW_BYTES];
  if (Buffer.isBuffer(bytes)) return bytes;
  // A context the host did not read (a unit test's hand-made one): the text a body parser kept, if any.
  return typeof request.rawBody === 'string' ? Buffer.from(request.rawBody, 'utf8') : NO_BYTES;
}

/**
 * The raw request body as UTF-8 text (a byte order mark kept, so re-encoding it gives the same bytes for a UTF-8
 * body). Signatures should use `rawBytes`. Empty when the request had no body.
 */
export function rawBody(ctx: Context): string {
  const request = ctx.request as BodyHolder;
  const bytes = request[RAW_BYTES];
  if (Buffer.isBuffer(bytes)) return bytes.toString('utf8');
  return typeof request.rawBody === 'string' ? request.rawBody : '';
}

/**
 * The host's side: keeps a request's bytes, and how to parse them once it is safe to (see `requireVerified`).
 * Not part of the public API.
 */
export function keepRawBytes(ctx: Context, bytes: Buffer, parse: () => Promise<void>): void {
  const request = ctx.request as BodyHolder;
  request[RAW_BYTES] = bytes;
  request[PARSE_BODY] = parse;
}

/** Runs the host's deferred parse of the body; nothing when it already ran or the host keeps none. */
export async function parseKeptBody(ctx: Context): Promise<void> {
  const parse = (ctx.request as BodyHolder)[PARSE_BODY];
  if (typeof parse === 'function') await (parse as () => Promise<void>)();
}

/** A check of one request: `true` when verified, else the reason (logged, never sent to the client). */
export type RequestCheck = (ctx: Context) => boolean | string | Promise<boolean | string>;

/**
 * Koa middleware that lets a request through only when `check` verifies it; otherwise 401, and the route (and the
 * bot) is never reached. Put it before any handler that answers a challenge.
 *
 * Verify before parse: when it is the first middleware of a route, the host reads the body's bytes (`rawBytes`)
 * but does not parse them; the check sees only headers and bytes, and the body is parsed (`ctx.request.body`) after
 * it succeeds, so an unsigned request costs no JSON parsing. Elsewhere, or with `skip`, the host parses first.
 */
export function requireVerified(check: RequestCheck, options: { skip?: boolean } = {}) {
  const verified = async function verified(ctx: Context, next: Next): Promise<void> {
    if (options.skip) return next();
    let result: boolean | string;
    try {
      result = await check(ctx);
    } catch (error) {
      result = `verification failed: ${(error as Error).message}`;
    }
    if (result !== true) {
      const reason = typeof result === 'string' ? result : 'signature mismatch';
      (ctx.state as { log?: { warn: (o: object, m: string) => void } }).log?.warn({ reason }, 'request rejected: not verified');
      throw new UnauthorizedError('request could not be verified');
    }
    await parseKeptBody(ctx);
    await next();
  };
  // With `skip` nothing is verified, so the host has no reason to hold the parse back.
  if (!options.skip) Object.defineProperty(verified, VERIFIES_FIRST, { value: true });
  return verified;
}
