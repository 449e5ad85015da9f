import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Context, Next } from 'koa';
import { UnauthorizedError } from './errors.js';

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

/**
 * The raw request body as received, kept by the host's body parser for signature checks. Empty when the request
 * had no body.
 */
export function rawBody(ctx: Context): string {
  const raw = (ctx.request as { rawBody?: unknown }).rawBody;
  return typeof raw === 'string' ? raw : '';
}

/** A check of one request: `true` when verified, else the reason (logged, never sent to the client). */
export type RequestCheck = (ctx: Context) => boolean | string | Promise<boolean | string>;

/**
 * Koa middleware that lets a request through only when `check` verifies it; otherwise 401, and the route (and the
 * bot) is never reached. Put it before any handler that answers a challenge.
 */
export function requireVerified(check: RequestCheck, options: { skip?: boolean } = {}) {
  return async function verified(ctx: Context, next: Next): Promise<void> {
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
    await next();
  };
}
