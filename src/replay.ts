/**
 * Replay windows: a signed delivery stays valid for ever, so where a platform signs the time an event happened,
 * a delivery older than a window (or dated in the future) is refused. One rule for every channel that has one.
 */

import { isObject } from './payload.js';

/** How far ahead of our clock a platform's timestamp may be: clocks of both sides drift a little. */
export const FUTURE_SKEW_SECONDS = 300;

/**
 * A platform's timestamp → milliseconds since the epoch: a number is taken as milliseconds, a string as an
 * ISO-8601 date with its time zone (`2026-11-25T12:00:00.000Z`, `…+01:00`). Anything else (a bare date, text,
 * an unparseable string) → undefined.
 */
export function timestampMs(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? value : undefined;
  if (typeof value !== 'string') return undefined;
  // Date.parse reads a date without a zone as local time: only a full date-time with a zone is unambiguous.
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$/i.test(value.trim())) return undefined;
  const ms = Date.parse(value.trim());
  return Number.isNaN(ms) ? undefined : ms;
}

/**
 * True when `timestamp` (ms, as from `timestampMs`) lies within `windowSeconds` before `now` and no more than
 * `futureSkewSeconds` after it; else the reason, for the log. A missing timestamp is refused: the platforms that
 * sign one always send it. `windowSeconds` 0 turns the check off. Pure: `now` (ms) is injected.
 */
export function withinReplayWindow(
  timestamp: number | undefined,
  windowSeconds: number,
  now: number,
  futureSkewSeconds = FUTURE_SKEW_SECONDS,
): true | string {
  if (windowSeconds <= 0) return true;
  if (timestamp === undefined || !Number.isFinite(timestamp)) return 'no timestamp to check against the replay window';
  const age = (now - timestamp) / 1000;
  if (age > windowSeconds) return `timestamp is ${Math.round(age)} s old, over the replay window of ${windowSeconds} s (replay?)`;
  if (-age > futureSkewSeconds) return `timestamp is ${Math.round(-age)} s in the future (clock skew over ${futureSkewSeconds} s, or forged)`;
  return true;
}

/**
 * Meta's webhook deliveries (Messenger, Instagram): each `entry[].time` (ms, covered by the signature) must lie within
 * `windowSeconds` before `now`. A delivery without entries is checked as one without a timestamp. `true`, or the
 * reason (naming `entry.time`). Pure: `now` (ms) is injected.
 */
export function checkEntryTimes(body: unknown, windowSeconds: number, now: number): true | string {
  const entries = isObject(body) && Array.isArray(body.entry) ? body.entry : [];
  if (entries.length === 0) return withinReplayWindow(undefined, windowSeconds, now);
  for (const entry of entries) {
    const result = withinReplayWindow(isObject(entry) ? timestampMs(entry.time) : undefined, windowSeconds, now);
    if (result !== true) return `entry.time: ${result}`;
  }
  return true;
}
