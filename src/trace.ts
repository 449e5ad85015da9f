/**
 * Request ids and W3C trace context. Every HTTP request gets a request id (`X-Request-Id` when the client sent a sane
 * one) and a trace (from a valid incoming `traceparent`, else a new one). They live in the host's context (`context.ts`), so
 * every log line written while the request is handled — by the host, a channel, the HTTP client — carries the id
 * without it being passed around, and the pipeline takes them along with each message it queues.
 */
import { randomFillSync } from 'node:crypto';
import { contextField } from './context.js';

export interface RequestTrace {
  /** On every log line as `reqId`, and echoed in the `X-Request-Id` response header. */
  requestId: string;
  /** 32 lowercase hex digits, never all zeros. */
  traceId: string;
  /** This request's own span: 16 lowercase hex digits. */
  spanId: string;
  /** The trace flags to pass on (`01`: sampled). */
  flags: string;
}

const storage = contextField<RequestTrace>('trace');

/** The trace of the request being handled, if any. */
export function currentTrace(): RequestTrace | undefined {
  return storage.get();
}

/** Runs `fn` with `trace` as the current request's. */
export function withTrace<T>(trace: RequestTrace, fn: () => T): T {
  return storage.run(trace, fn);
}

/** An id a client may choose: short, and nothing a log line could be forged with (no spaces, quotes, newlines). */
const SANE_REQUEST_ID = /^[A-Za-z0-9._:+/=-]{1,128}$/;
const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;

/**
 * A `traceparent` header read as W3C Trace Context level 1 says: version `ff`, an all-zero trace or parent id, or
 * anything malformed is ignored (a new trace starts). A future version may carry more fields after the fourth.
 */
export function parseTraceparent(header: string | undefined): { traceId: string; parentId: string; flags: string } | undefined {
  const match = TRACEPARENT.exec((header ?? '').trim());
  if (!match) return undefined;
  const [, version, traceId, parentId, flags, rest] = match;
  if (version === 'ff' || (version === '00' && rest !== undefined)) return undefined;
  if (/^0+$/.test(traceId!) || /^0+$/.test(parentId!)) return undefined;
  return { traceId: traceId!, parentId: parentId!, flags: flags! };
}

/**
 * Random bytes for ids, from a pool the CSPRNG refills 4 KiB at a time: one `randomFillSync` per ~170 requests
 * instead of three calls per request (each a trip into C++ for 8 or 16 bytes). Every byte is used once.
 */
const POOL_SIZE = 4096;
const pool = Buffer.allocUnsafe(POOL_SIZE);
let poolOffset = POOL_SIZE;

/** `bytes` random bytes (at most `POOL_SIZE`) as lowercase hex. */
export function randomHex(bytes: number): string {
  if (poolOffset + bytes > POOL_SIZE) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  const hex = pool.toString('hex', poolOffset, poolOffset + bytes);
  poolOffset += bytes;
  return hex;
}

/** A random (version 4) UUID, as `crypto.randomUUID` makes it, from the pool. */
export function randomId(): string {
  const hex = randomHex(16);
  // Version 4 in the 13th digit; the variant (8, 9, a or b) in the 17th.
  const variant = ((parseInt(hex[16]!, 16) & 0x3) | 0x8).toString(16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-${variant}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

export function newSpanId(): string {
  return randomHex(8);
}

/**
 * The trace of a new request from its headers. A trace we start is marked sampled (`01`): a bot behind us with a
 * parent-based sampler (OpenTelemetry's default, Rasa's) would otherwise drop its own traces.
 */
export function requestTrace(headers: { requestId?: string | undefined; traceparent?: string | undefined } = {}): RequestTrace {
  const given = headers.requestId?.trim();
  const parent = parseTraceparent(headers.traceparent);
  return {
    requestId: given !== undefined && SANE_REQUEST_ID.test(given) ? given : randomId(),
    traceId: parent?.traceId ?? randomHex(16),
    spanId: newSpanId(),
    flags: parent?.flags ?? '01',
  };
}

/** Runs `fn` outside any request: what it logs belongs to no request (a timer armed during one, for instance). */
export function outsideTrace<T>(fn: () => T): T {
  return storage.run(undefined, fn);
}

/** A `traceparent` for a call made on behalf of `trace`: the same trace, a new span. */
export function childTraceparent(trace: RequestTrace): string {
  return `00-${trace.traceId}-${newSpanId()}-${trace.flags}`;
}
