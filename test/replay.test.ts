import test from 'ava';
import { FUTURE_SKEW_SECONDS, checkEntryTimes, timestampMs, withinReplayWindow } from 'switchboard';

const NOW = Date.parse('2026-12-02T12:00:00.000Z');

test('withinReplayWindow: inside the window, at its edge, past it; ahead within and beyond the skew', (t) => {
  t.true(withinReplayWindow(NOW, 3600, NOW));
  t.true(withinReplayWindow(NOW - 3600_000, 3600, NOW));
  t.regex(withinReplayWindow(NOW - 3601_000, 3600, NOW) as string, /^timestamp is 3601 s old, over the replay window of 3600 s/);
  t.true(withinReplayWindow(NOW + FUTURE_SKEW_SECONDS * 1000, 3600, NOW));
  t.regex(withinReplayWindow(NOW + (FUTURE_SKEW_SECONDS + 1) * 1000, 3600, NOW) as string, /in the future/);
  t.true(withinReplayWindow(NOW + 60_000, 3600, NOW, 120));
  t.regex(withinReplayWindow(NOW + 180_000, 3600, NOW, 120) as string, /in the future/);
});

test('withinReplayWindow: a missing timestamp is refused; window 0 turns the check off', (t) => {
  t.regex(withinReplayWindow(undefined, 3600, NOW) as string, /no timestamp/);
  t.regex(withinReplayWindow(Number.NaN, 3600, NOW) as string, /no timestamp/);
  t.true(withinReplayWindow(undefined, 0, NOW));
  t.true(withinReplayWindow(Date.parse('2023-01-01T00:00:00Z'), 0, NOW));
});

test('timestampMs: milliseconds, ISO 8601 with a zone; nothing ambiguous', (t) => {
  t.is(timestampMs(1458692752478), 1458692752478);
  t.is(timestampMs('2026-11-25T12:00:00.000Z'), Date.parse('2026-11-25T12:00:00.000Z'));
  t.is(timestampMs('2026-11-25T13:00:00.000+01:00'), Date.parse('2026-11-25T12:00:00.000Z'));
  t.is(timestampMs('2015-10-18T14:26:16+00:00'), Date.parse('2015-10-18T14:26:16Z'));
  t.is(timestampMs('2026-11-25T12:00:00.1234567Z'), Date.parse('2026-11-25T12:00:00.123Z'));
  for (const bad of ['2026-11-25T12:00:00', '2026-11-25', 'yesterday', '', '1458692752478', null, undefined, {}, -1, Number.POSITIVE_INFINITY]) {
    t.is(timestampMs(bad), undefined, String(bad));
  }
});

test("checkEntryTimes: every entry.time of a Meta delivery within the window; none, or one stale, refused", (t) => {
  const now = Date.parse('2026-12-02T12:00:00Z');
  t.true(checkEntryTimes({ entry: [{ time: now - 1000 }, { time: now }] }, 60, now));
  t.regex(String(checkEntryTimes({ entry: [{ time: now }, { time: now - 120_000 }] }, 60, now)), /^entry\.time: timestamp is 120 s old/);
  t.regex(String(checkEntryTimes({ entry: [{ id: '1' }] }, 60, now)), /^entry\.time: no timestamp/);
  t.is(checkEntryTimes({ object: 'page' }, 60, now), 'no timestamp to check against the replay window');
  t.is(checkEntryTimes(null, 60, now), 'no timestamp to check against the replay window');
  t.true(checkEntryTimes({ entry: [{ time: 0 }] }, 0, now));
});
