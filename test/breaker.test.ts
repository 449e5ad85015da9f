// The circuit breaker the remote bot uses per bot server host: closed → open after N failures in a row → half-open
// after the cool-down, one trial at a time.
import test from 'ava';
import { CircuitBreaker } from '#src/breaker.js';

test('failures in a row open it; a success in between starts the count again', (t) => {
  const now = 0;
  const breaker = new CircuitBreaker({ failures: 3, cooldownMs: 100, now: () => now });
  breaker.failure();
  breaker.failure();
  breaker.success();
  breaker.failure();
  breaker.failure();
  t.is(breaker.state, 'closed');
  t.true(breaker.allow());
  breaker.failure();
  t.is(breaker.state, 'open');
  t.false(breaker.allow());
});

test('half-open lets exactly one trial through until it settles', (t) => {
  let now = 0;
  const breaker = new CircuitBreaker({ failures: 1, cooldownMs: 100, now: () => now });
  breaker.failure();
  now = 99;
  t.false(breaker.allow());
  now = 100;
  t.true(breaker.allow(), 'the trial');
  t.false(breaker.allow(), 'a second caller during the trial fails fast');
  t.is(breaker.state, 'half-open');
  breaker.failure();
  t.is(breaker.state, 'open');
  t.false(breaker.allow());
  now = 200;
  t.true(breaker.allow());
  breaker.success();
  t.is(breaker.state, 'closed');
  t.true(breaker.allow());
  t.true(breaker.allow());
});

test('settings are checked', (t) => {
  t.throws(() => new CircuitBreaker({ failures: 0 }), { instanceOf: RangeError });
  t.throws(() => new CircuitBreaker({ cooldownMs: -1 }), { instanceOf: RangeError });
  const defaults = new CircuitBreaker();
  t.is(defaults.failures, 5);
  t.is(defaults.cooldownMs, 30_000);
});
