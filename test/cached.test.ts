import test from 'ava';
import { Cached, HttpRequestError } from 'switchboard';

const unauthorized = () => new HttpRequestError('POST /x answered 401', { status: 401, attempts: 1 });

test('Cached: concurrent callers share one call, and the value is kept', async (t) => {
  let calls = 0;
  const cached = new Cached(async () => `session-${++calls}`);
  t.deepEqual(await Promise.all([cached.get(), cached.get(), cached.get()]), ['session-1', 'session-1', 'session-1']);
  t.is(await cached.get(), 'session-1');
  t.is(calls, 1);
});

test('Cached: a failed call is not kept; the next caller tries again', async (t) => {
  let calls = 0;
  const cached = new Cached(async () => {
    calls++;
    if (calls === 1) throw new Error('login failed');
    return 'session-2';
  });
  await t.throwsAsync(cached.get(), { message: 'login failed' });
  t.is(await cached.get(), 'session-2');
});

test('Cached: renew replaces a stale value once, however many callers saw it', async (t) => {
  let calls = 0;
  const cached = new Cached(async () => `session-${++calls}`);
  const stale = await cached.get();
  const renewed = await Promise.all([cached.renew(stale), cached.renew(stale)]);
  t.deepEqual(renewed, ['session-2', 'session-2']);
  t.is(await cached.renew('some-older-session'), 'session-2');
  t.is(calls, 2);
});

test('Cached.withRenewal: a 401 renews and repeats once; a second 401 is thrown, never looped', async (t) => {
  let logins = 0;
  const cached = new Cached(async () => `session-${++logins}`);
  const seen: string[] = [];
  const result = await cached.withRenewal(async (session) => {
    seen.push(session);
    if (session === 'session-1') throw unauthorized();
    return 'sent';
  });
  t.is(result, 'sent');
  t.deepEqual(seen, ['session-1', 'session-2']);

  const always = await t.throwsAsync(cached.withRenewal(async () => Promise.reject(unauthorized())));
  t.is((always as HttpRequestError).status, 401);
  t.is(logins, 3);
});

test('Cached.withRenewal: other errors are thrown without renewing', async (t) => {
  let logins = 0;
  const cached = new Cached(async () => `session-${++logins}`);
  await t.throwsAsync(cached.withRenewal(async () => Promise.reject(new HttpRequestError('answered 500', { status: 500, attempts: 4 }))));
  await t.throwsAsync(cached.withRenewal(async () => Promise.reject(new Error('network'))));
  t.is(logins, 1);
});
