// The shared outgoing HTTP client: bodies, auth, query strings, retries (network errors, 429, 5xx, Retry-After),
// timeouts, and secrets masked in everything it logs or throws. Outgoing calls are intercepted with nock; tests run
// serially because nock's interceptors are global to the process.
import test from 'ava';
import { captureLogs } from './harness.js';
import nock from 'nock';
import { HttpClient, HttpRequestError, parseRetryAfter } from '#src/http.js';

nock.disableNetConnect();
nock.enableNetConnect('127.0.0.1');

test.afterEach.always(() => {
  // Also drops delayed answers (timeout tests), whose timers would keep the process alive.
  nock.abortPendingRequests();
  nock.cleanAll();
});


const fast = (extra: ConstructorParameters<typeof HttpClient>[0] = {}) => new HttpClient({ minDelayMs: 5, maxDelayMs: 20, ...extra });

// ---------------------------------------------------------------------------------------------------------------------
// Requests

test.serial('post sends JSON with its content type and parses a JSON answer', async (t) => {
  let seen: { body: unknown; headers: Record<string, unknown> } | undefined;
  const scope = nock('https://api.example.test')
    .post('/v1/messages')
    .reply(function (_uri, body) {
      seen = { body, headers: this.req.headers };
      return [201, { ok: true, id: 7 }, { 'Content-Type': 'application/json; charset=utf-8', 'X-Thing': 'a' }];
    });
  const response = await fast().post<{ ok: boolean; id: number }>('https://api.example.test/v1/messages', { text: 'hi', n: [1, 2] });
  t.true(scope.isDone());
  t.is(response.status, 201);
  t.deepEqual(response.body, { ok: true, id: 7 });
  t.is(response.text, '{"ok":true,"id":7}');
  t.is(response.headers.get('x-thing'), 'a');
  t.deepEqual(seen?.body, { text: 'hi', n: [1, 2] });
  t.is(seen?.headers['content-type'], 'application/json');
  t.is(seen?.headers.accept, 'application/json');
});

test.serial('the JSON body is sent as exactly JSON.stringify of the value', async (t) => {
  const payload = { text: 'a/b "quoted" é', nested: { list: [true, null, 1.5] } };
  const scope = nock('https://api.example.test').post('/raw', JSON.stringify(payload)).reply(200, 'ok');
  const response = await fast().post('https://api.example.test/raw', payload);
  t.true(scope.isDone());
  t.is(response.body, 'ok');
});

test.serial('get adds query parameters to those of the URL, skipping undefined ones', async (t) => {
  const scope = nock('https://api.example.test')
    .get('/search')
    .query((query) => {
      t.deepEqual({ ...query }, { fixed: '1', q: 'hello world', n: '5', flag: 'false' });
      return true;
    })
    .reply(200, { found: 1 }, { 'Content-Type': 'application/json' });
  const response = await fast().get('https://api.example.test/search?fixed=1', { query: { q: 'hello world', n: 5, flag: false, skipped: undefined } });
  t.true(scope.isDone());
  t.deepEqual(response.body, { found: 1 });
});

test.serial('a query parameter replaces one of the same name in the URL', async (t) => {
  const scope = nock('https://api.example.test').get('/x').query({ a: '2' }).reply(200, '');
  await fast().get('https://api.example.test/x?a=1', { query: { a: 2 } });
  t.true(scope.isDone());
});

test.serial('a form body is URL-encoded, arrays repeating their name and undefined values left out', async (t) => {
  let body: unknown;
  let type: unknown;
  const scope = nock('https://api.example.test')
    .post('/2010-04-01/Messages.json')
    .reply(function (_uri, requestBody) {
      body = requestBody;
      type = this.req.headers['content-type'];
      return [201, '{}'];
    });
  await fast().request('https://api.example.test/2010-04-01/Messages.json', {
    method: 'POST',
    form: { To: 'whatsapp:+15550001', Body: 'hi & bye = ok', MediaUrl: ['https://x.test/a.png', 'https://x.test/b.png'], Skip: undefined, N: 3, B: true },
  });
  t.true(scope.isDone());
  t.is(type, 'application/x-www-form-urlencoded');
  t.is(body, 'To=whatsapp%3A%2B15550001&Body=hi+%26+bye+%3D+ok&MediaUrl=https%3A%2F%2Fx.test%2Fa.png&MediaUrl=https%3A%2F%2Fx.test%2Fb.png&N=3&B=true');
  const parsed = new URLSearchParams(String(body));
  t.deepEqual(parsed.getAll('MediaUrl'), ['https://x.test/a.png', 'https://x.test/b.png']);
  t.false(parsed.has('Skip'));
});

test.serial('a form given as URLSearchParams is sent as is', async (t) => {
  const scope = nock('https://api.example.test').post('/f', 'a=1&a=2&b=x+y').reply(200, '');
  await fast().request('https://api.example.test/f', { form: new URLSearchParams([['a', '1'], ['a', '2'], ['b', 'x y']]) });
  t.true(scope.isDone());
});

test.serial('a request with a body and no method is a POST; without a body a GET', async (t) => {
  const scope = nock('https://api.example.test').post('/p', 'raw text').reply(200, '').get('/g').reply(200, '');
  await fast().request('https://api.example.test/p', { body: 'raw text', headers: { 'Content-Type': 'text/plain' } });
  await fast().request('https://api.example.test/g');
  t.true(scope.isDone());
});

test.serial('basic auth sends base64 of user:password', async (t) => {
  const scope = nock('https://api.example.test', { reqheaders: { authorization: `Basic ${Buffer.from('AC123:s3cr3t:x').toString('base64')}` } })
    .get('/me')
    .reply(200, 'me');
  await fast().get('https://api.example.test/me', { basicAuth: { username: 'AC123', password: 's3cr3t:x' } });
  t.true(scope.isDone());
});

test.serial('a bearer token becomes the authorization header; other headers are kept', async (t) => {
  const scope = nock('https://api.example.test', { reqheaders: { authorization: 'Bearer xoxb-123', 'x-custom': 'v', accept: 'text/plain' } })
    .post('/chat.postMessage')
    .reply(200, { ok: true });
  await fast().post('https://api.example.test/chat.postMessage', { a: 1 }, { bearer: 'xoxb-123', headers: { 'X-Custom': 'v', Accept: 'text/plain' } });
  t.true(scope.isDone());
});

test.serial('an answer that is not JSON is returned as text; malformed JSON too', async (t) => {
  nock('https://api.example.test')
    .get('/text')
    .reply(200, 'plain', { 'Content-Type': 'text/plain' })
    .get('/broken')
    .reply(200, '{nope', { 'Content-Type': 'application/json' })
    .get('/problem')
    .reply(200, '{"a":1}', { 'Content-Type': 'application/problem+json' });
  const client = fast();
  t.is((await client.get('https://api.example.test/text')).body, 'plain');
  t.is((await client.get('https://api.example.test/broken')).body, '{nope');
  t.deepEqual((await client.get('https://api.example.test/problem')).body, { a: 1 });
});

// ---------------------------------------------------------------------------------------------------------------------
// Retries

test.serial('a 503 is retried once, then the success is returned', async (t) => {
  const logs = captureLogs();
  const scope = nock('https://api.example.test').post('/send').reply(503, 'busy').post('/send').reply(200, { ok: true });
  const response = await fast({ logger: logs.logger }).post('https://api.example.test/send', { a: 1 }, { channel: 'slack', recipient: 'U1' });
  t.true(scope.isDone());
  t.is(response.status, 200);
  const retry = logs.lines().filter((line) => line.msg === 'retrying outgoing call');
  t.is(retry.length, 1);
  t.is(retry[0]?.reason, 'answered 503');
  t.is(retry[0]?.channel, 'slack');
  t.is(retry[0]?.recipient, 'U1');
  t.false(logs.lines().some((line) => line.msg === 'outgoing call failed'));
});

test.serial('every retry sends the same body again', async (t) => {
  const bodies: unknown[] = [];
  nock('https://api.example.test')
    .post('/form')
    .times(3)
    .reply(function (_uri, body) {
      bodies.push(body);
      return bodies.length < 3 ? [503, ''] : [200, 'done'];
    });
  const response = await fast().request('https://api.example.test/form', { form: { a: 'x y' } });
  t.is(response.body, 'done');
  t.deepEqual(bodies, ['a=x+y', 'a=x+y', 'a=x+y']);
});

test.serial('a 429 waits as long as Retry-After says, once', async (t) => {
  const times: number[] = [];
  nock('https://api.example.test')
    .post('/limited')
    .reply(() => {
      times.push(Date.now());
      return [429, 'slow down', { 'Retry-After': '1' }];
    })
    .post('/limited')
    .reply(() => {
      times.push(Date.now());
      return [200, 'ok'];
    });
  // Backoff alone would wait at most 20 ms: only Retry-After explains a wait near a second.
  const response = await fast().post('https://api.example.test/limited', {});
  t.is(response.body, 'ok');
  t.is(times.length, 2);
  t.true(times[1]! - times[0]! >= 900, `waited ${times[1]! - times[0]!} ms`);
});

test.serial('Retry-After: 0 retries at once', async (t) => {
  const scope = nock('https://api.example.test')
    .get('/zero')
    .reply(429, '', { 'Retry-After': '0' })
    .get('/zero')
    .reply(503, '', { 'Retry-After': '0' })
    .get('/zero')
    .reply(200, 'ok');
  const response = await fast().get('https://api.example.test/zero');
  t.true(scope.isDone());
  t.is(response.body, 'ok');
});

test.serial('a Retry-After longer than maxRetryAfterMs fails at once', async (t) => {
  const scope = nock('https://api.example.test').get('/later').reply(429, 'tomorrow', { 'Retry-After': '3600' }).get('/later').reply(200, 'ok');
  const error = await t.throwsAsync(fast({ maxRetryAfterMs: 1_000 }).get('https://api.example.test/later'), { instanceOf: HttpRequestError });
  t.is(error?.status, 429);
  t.is(error?.attempts, 1);
  t.is(error?.responseBody, 'tomorrow');
  t.false(scope.isDone(), 'no second attempt');
});

for (const status of [400, 401, 403, 404, 422]) {
  test.serial(`a ${status} is not retried; the error has the status and the response body`, async (t) => {
    const logs = captureLogs();
    const scope = nock('https://api.example.test')
      .post('/bad')
      .reply(status, { error: 'nope' }, { 'Content-Type': 'application/json' })
      .post('/bad')
      .reply(200, 'ok');
    const error = await t.throwsAsync(fast({ logger: logs.logger }).post('https://api.example.test/bad', {}, { channel: 'telegram', recipient: '42' }), {
      instanceOf: HttpRequestError,
    });
    t.is(error?.status, status);
    t.is(error?.responseBody, '{"error":"nope"}');
    t.is(error?.attempts, 1);
    t.is(error?.message, `POST https://api.example.test/bad answered ${status}`);
    t.false(scope.isDone(), 'no second attempt');
    const failed = logs.lines().filter((line) => line.msg === 'outgoing call failed');
    t.is(failed.length, 1);
    t.like(failed[0], { status, channel: 'telegram', recipient: '42', attempts: 1, level: 40 });
  });
}

test.serial('it gives up after the configured retries, with the number of attempts', async (t) => {
  let calls = 0;
  nock('https://api.example.test')
    .get('/down')
    .times(10)
    .reply(() => {
      calls++;
      return [500, 'down'];
    });
  const error = await t.throwsAsync(fast({ retries: 2 }).get('https://api.example.test/down'), { instanceOf: HttpRequestError });
  t.is(calls, 3);
  t.is(error?.attempts, 3);
  t.is(error?.status, 500);
  t.is(error?.responseBody, 'down');
});

test.serial('retries can be set per request', async (t) => {
  let calls = 0;
  nock('https://api.example.test')
    .get('/down')
    .times(10)
    .reply(() => {
      calls++;
      return [502, ''];
    });
  const error = await t.throwsAsync(fast({ retries: 5 }).get('https://api.example.test/down', { retries: 0 }), { instanceOf: HttpRequestError });
  t.is(calls, 1);
  t.is(error?.attempts, 1);
});

/** Node's error for a refused connection, as node-fetch passes it on (its `code` and `syscall`). */
const refused = () => Object.assign(new Error('connect ECONNREFUSED 203.0.113.7:443'), { code: 'ECONNREFUSED', errno: -111, syscall: 'connect' });

test.serial('a network error is retried', async (t) => {
  const logs = captureLogs();
  const scope = nock('https://api.example.test')
    .get('/flaky')
    // An Error, not a plain object: nock 14 never settles a request whose error is a plain object.
    .replyWithError(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }))
    .get('/flaky')
    .reply(200, 'ok');
  const response = await fast({ logger: logs.logger }).get('https://api.example.test/flaky');
  t.true(scope.isDone());
  t.is(response.body, 'ok');
  const retry = logs.lines().find((line) => line.msg === 'retrying outgoing call');
  t.regex(String(retry?.reason), /socket hang up/);
});

test.serial('a network error that persists fails with the reason and no status', async (t) => {
  nock('https://api.example.test').post('/gone').times(5).replyWithError(refused());
  const error = await t.throwsAsync(fast({ retries: 1 }).post('https://api.example.test/gone', {}), { instanceOf: HttpRequestError });
  t.is(error?.attempts, 2);
  t.is(error?.status, undefined);
  t.is(error?.responseBody, undefined);
  t.regex(error?.message ?? '', /^POST https:\/\/api\.example\.test\/gone failed: .*ECONNREFUSED/);
});

test.serial('an answer slower than the timeout fails as timed out', async (t) => {
  nock('https://api.example.test').get('/slow').delay(3_000).reply(200, 'late');
  const started = Date.now();
  const error = await t.throwsAsync(fast({ timeoutMs: 50, retries: 0 }).get('https://api.example.test/slow'), { instanceOf: HttpRequestError });
  t.regex(error?.message ?? '', /timed out after 50 ms/);
  t.is(error?.attempts, 1);
  t.true(Date.now() - started < 2_500, 'did not wait for the answer');
});

test.serial('a timed-out attempt is retried', async (t) => {
  const scope = nock('https://api.example.test').get('/slow').delay(3_000).reply(200, 'late').get('/slow').reply(200, 'fast');
  // Long enough for the fast answer on a loaded machine, far shorter than the slow one.
  const response = await fast({ retries: 1 }).get('https://api.example.test/slow', { timeoutMs: 500 });
  t.true(scope.isDone());
  t.is(response.body, 'fast');
});

// ---------------------------------------------------------------------------------------------------------------------
// Secrets

const TOKEN = '123456:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw';

test.serial('a token in the path never appears in logs or errors', async (t) => {
  const logs = captureLogs();
  const client = fast({ logger: logs.logger, secrets: [TOKEN], retries: 1 });
  nock('https://api.telegram.org')
    .post(`/bot${TOKEN}/sendMessage`)
    .reply(503, `internal error for bot${TOKEN}`)
    .post(`/bot${TOKEN}/sendMessage`)
    .reply(400, { ok: false, description: `Bad Request: token ${TOKEN} chat not found` }, { 'Content-Type': 'application/json' });
  const error = await t.throwsAsync(client.post(`https://api.telegram.org/bot${TOKEN}/sendMessage`, { chat_id: 1, text: 'x' }), {
    instanceOf: HttpRequestError,
  });
  t.is(error?.message, 'POST https://api.telegram.org/bot[redacted]/sendMessage answered 400');
  // Channels log the error itself (`{err}`): its fields must be as clean as the client's own log lines.
  t.is(error?.responseBody, '{"ok":false,"description":"Bad Request: token [redacted] chat not found"}');
  const channelLog = captureLogs();
  channelLog.logger.error({ err: error }, 'sending an answer failed');
  t.false(channelLog.text().includes(TOKEN));
  const text = logs.text();
  t.true(text.includes('retrying outgoing call'));
  t.true(text.includes('outgoing call failed'));
  t.true(text.includes('bot[redacted]/sendMessage'));
  t.false(text.includes(TOKEN));
  t.false(text.includes('AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw'));
});

test.serial('a token in the path is masked in network errors too', async (t) => {
  const logs = captureLogs();
  const client = fast({ logger: logs.logger, secrets: [TOKEN], retries: 1 });
  nock('https://api.telegram.org').post(`/bot${TOKEN}/sendMessage`).times(2).replyWithError(`connection reset`);
  const error = await t.throwsAsync(client.post(`https://api.telegram.org/bot${TOKEN}/sendMessage`, {}), { instanceOf: HttpRequestError });
  t.false(error?.message.includes(TOKEN));
  t.false(logs.text().includes(TOKEN));
  t.true(logs.text().includes('connection reset'));
});

test.serial('query values (access_token) are never logged, even when not declared secret', async (t) => {
  const logs = captureLogs();
  const declared = 'EAAGm0PX4ZCpsBAKZBdeclared';
  const undeclared = 'undeclared-0123456789';
  const client = fast({ logger: logs.logger, secrets: [declared], retries: 1 });
  nock('https://graph.facebook.com')
    .post('/v19.0/me/messages')
    .query(true)
    .replyWithError(refused())
    .post('/v19.0/me/messages')
    .query(true)
    .reply(400, { error: { message: 'Invalid OAuth access token.' } }, { 'Content-Type': 'application/json' });
  const error = await t.throwsAsync(
    client.post('https://graph.facebook.com/v19.0/me/messages', { recipient: { id: '1' } }, { query: { access_token: declared, appsecret_proof: undeclared } }),
    { instanceOf: HttpRequestError },
  );
  const text = logs.text();
  t.true(text.includes('retrying outgoing call'));
  t.true(text.includes('access_token=…'));
  for (const value of [declared, undeclared]) {
    t.false(text.includes(value), `${value} logged`);
    t.false(error?.message.includes(value), `${value} in the error`);
  }
});

test.serial('a secret is masked whichever way the URL encodes it', async (t) => {
  const logs = captureLogs();
  // URLSearchParams encodes `!`, `~` and `'`, which encodeURIComponent leaves as they are; the space becomes `+`.
  const awkward = "p4ss w0rd!~'(x)";
  const client = fast({ logger: logs.logger, secrets: [awkward], retries: 1 });
  nock('https://api.example.test').get('/q').query(true).times(2).replyWithError('boom');
  const error = await t.throwsAsync(client.get('https://api.example.test/q', { query: { key: awkward } }), { instanceOf: HttpRequestError });
  const text = logs.text();
  for (const form of [awkward, encodeURIComponent(awkward), new URLSearchParams({ k: awkward }).toString().slice(2)]) {
    t.false(text.includes(form), `logged as ${form}`);
    t.false(error?.message.includes(form) ?? true, `in the error as ${form}`);
  }
});

test.serial('a secret echoed in a long error answer is masked even where the log cuts the answer', async (t) => {
  const logs = captureLogs();
  const secret = 'sk_live_0123456789abcdef';
  // The secret straddles the 500th character, where the logged excerpt of the answer ends.
  const body = `${'x'.repeat(490)}${secret}${'y'.repeat(20)}`;
  nock('https://api.example.test').get('/echo').reply(400, body);
  await t.throwsAsync(fast({ logger: logs.logger, secrets: [secret] }).get('https://api.example.test/echo'));
  const failed = logs.lines().find((line) => line.msg === 'outgoing call failed');
  t.truthy(failed);
  t.false(String(failed?.response).includes(secret.slice(0, 8)), 'a prefix of the secret was logged');
});

test.serial('forChannel keeps the options and adds the channel secrets to mask', async (t) => {
  const logs = captureLogs();
  const base = fast({ retries: 0, timeoutMs: 1234, secrets: ['host-secret-1'] });
  const channel = base.forChannel(logs.logger, ['channel-secret-2']);
  t.is(channel.options.timeoutMs, 1234);
  t.is(channel.options.retries, 0);
  t.is(channel.options.minDelayMs, 5);
  t.is(channel.mask('a host-secret-1 b channel-secret-2 c'), 'a [redacted] b [redacted] c');
  t.is(base.mask('channel-secret-2'), 'channel-secret-2');
  nock('https://api.example.test').get('/channel-secret-2').reply(500, 'x');
  await t.throwsAsync(channel.get('https://api.example.test/channel-secret-2'));
  t.true(logs.text().includes('outgoing call failed'));
  t.false(logs.text().includes('channel-secret-2'));
});

test.serial('the default options are sane', (t) => {
  const client = new HttpClient();
  t.is(client.options.retries, 3);
  t.is(client.options.timeoutMs, 10_000);
  t.true(client.options.minDelayMs > 0 && client.options.minDelayMs <= client.options.maxDelayMs);
});

// ---------------------------------------------------------------------------------------------------------------------
// Retry-After parsing

test('parseRetryAfter reads delta-seconds and HTTP dates', (t) => {
  const now = Date.parse('Wed, 21 Oct 2015 07:28:00 GMT');
  t.is(parseRetryAfter('120', now), 120_000);
  t.is(parseRetryAfter(' 2 ', now), 2_000);
  t.is(parseRetryAfter('0', now), 0);
  t.is(parseRetryAfter('1.5', now), 1_500);
  t.is(parseRetryAfter('Wed, 21 Oct 2015 07:28:30 GMT', now), 30_000);
  t.is(parseRetryAfter('Wed, 21 Oct 2015 07:27:00 GMT', now), 0, 'a date in the past: retry now');
  t.is(parseRetryAfter(undefined, now), undefined);
  t.is(parseRetryAfter(null, now), undefined);
  t.is(parseRetryAfter('', now), undefined);
  t.is(parseRetryAfter('soon', now), undefined);
});

// ---------------------------------------------------------------------------------------------------------------------
// Failures reported inside a 2xx answer (Slack's {"ok": false})

const slackCheck = (body: unknown) => {
  const answer = body as { ok?: boolean; error?: string };
  return answer.ok === false ? { error: answer.error ?? 'unknown', retry: answer.error === 'ratelimited' } : undefined;
};

test.serial('check: a 200 with ok:false ratelimited is retried, honouring Retry-After, then succeeds', async (t) => {
  const scope = nock('https://slack.test')
    .post('/api/chat.postMessage')
    .reply(200, { ok: false, error: 'ratelimited' }, { 'retry-after': '0' })
    .post('/api/chat.postMessage')
    .reply(200, { ok: true, ts: '1.2' });
  const response = await fast().post('https://slack.test/api/chat.postMessage', { text: 'hi' }, { check: slackCheck });
  t.deepEqual(response.body, { ok: true, ts: '1.2' });
  t.true(scope.isDone());
});

test.serial('check: a 200 with a non-retryable error fails at once with the error named', async (t) => {
  const { logger, text } = captureLogs();
  nock('https://slack.test').post('/api/chat.postMessage').reply(200, { ok: false, error: 'channel_not_found' });
  const error = await t.throwsAsync(fast({ logger }).post('https://slack.test/api/chat.postMessage', {}, { check: slackCheck, channel: 'slack' }), {
    instanceOf: HttpRequestError,
  });
  t.is(error!.attempts, 1);
  t.regex(error!.message, /answered 200 with error "channel_not_found"/);
  t.regex(text(), /outgoing call failed/);
});

// ---------------------------------------------------------------------------------------------------------------------
// Retries that do not duplicate (issue 14, item 5): a POST is retried only when it cannot have reached the server,
// or when it is idempotent.

/** Counts the requests a path receives, answering each with `answer(n)` (n from 1). */
function counting(path: string, method: 'get' | 'post' | 'put', answer: (n: number) => nock.ReplyFnResult | Promise<nock.ReplyFnResult>) {
  const seen: unknown[] = [];
  nock('https://api.example.test')[method](path).times(10).reply(async (_uri, body) => {
    seen.push(body);
    return answer(seen.length);
  });
  return seen;
}

test.serial('a POST whose answer times out is sent once: the server may have processed it', async (t) => {
  const logs = captureLogs();
  const seen = counting('/chat', 'post', async (n) => {
    if (n === 1) await new Promise((resolve) => setTimeout(resolve, 400));
    return [200, 'second'];
  });
  const error = await t.throwsAsync(fast({ logger: logs.logger, timeoutMs: 100 }).post('https://api.example.test/chat', { text: 'hi' }), { instanceOf: HttpRequestError });
  t.regex(error?.message ?? '', /timed out after 100 ms/);
  t.is(error?.attempts, 1);
  t.deepEqual(seen, [{ text: 'hi' }], 'sent exactly once');
  t.like(logs.lines().find((line) => line.msg === 'outgoing call failed'), { level: 40, attempts: 1, retried: false });
});

test.serial('an idempotent POST (the option, or an Idempotency-Key header) is retried after a timeout', async (t) => {
  for (const options of [{ idempotent: true }, { headers: { 'Idempotency-Key': 'k-1' } }]) {
    nock.cleanAll();
    const seen = counting('/charge', 'post', async (n) => {
      if (n === 1) await new Promise((resolve) => setTimeout(resolve, 400));
      return [200, 'done'];
    });
    const response = await fast({ timeoutMs: 100 }).post('https://api.example.test/charge', { n: 1 }, options);
    t.is(response.body, 'done');
    t.is(seen.length, 2);
  }
});

for (const status of [500, 502, 504]) {
  test.serial(`a POST answered ${status} is not retried; a PUT or an idempotent POST is`, async (t) => {
    const post = counting('/p', 'post', () => [status, 'broken']);
    const error = await t.throwsAsync(fast().post('https://api.example.test/p', {}), { instanceOf: HttpRequestError });
    t.is(error?.status, status);
    t.is(post.length, 1);

    const put = counting('/u', 'put', (n) => (n === 1 ? [status, ''] : [200, 'ok']));
    t.is((await fast().request('https://api.example.test/u', { method: 'PUT', json: {} })).body, 'ok');
    t.is(put.length, 2);

    nock.cleanAll();
    const idempotent = counting('/p', 'post', (n) => (n === 1 ? [status, ''] : [200, 'ok']));
    t.is((await fast().post('https://api.example.test/p', {}, { idempotent: true })).body, 'ok');
    t.is(idempotent.length, 2);
  });
}

test.serial('a POST is retried on 429 and 503 (not processed) and on a refused connection (never sent)', async (t) => {
  const seen = counting('/send', 'post', (n) => (n === 1 ? [429, ''] : n === 2 ? [503, ''] : [200, 'ok']));
  t.is((await fast().post('https://api.example.test/send', { a: 1 })).body, 'ok');
  t.deepEqual(seen, [{ a: 1 }, { a: 1 }, { a: 1 }]);

  nock.cleanAll();
  const scope = nock('https://api.example.test').post('/send').replyWithError(refused()).post('/send').reply(200, 'ok');
  t.is((await fast().post('https://api.example.test/send', { a: 1 })).body, 'ok');
  t.true(scope.isDone());
});

test.serial('a POST whose connection was reset is not retried: the request may have been read (a GET is, above)', async (t) => {
  const reset = () => Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
  const scope = nock('https://api.example.test').post('/r').replyWithError(reset()).post('/r').reply(200, 'twice');
  const error = await t.throwsAsync(fast().post('https://api.example.test/r', {}), { instanceOf: HttpRequestError });
  t.is(error?.attempts, 1);
  t.false(scope.isDone(), 'no second attempt');
});

test.serial('a real refused connection (nothing listens) is retried for a POST', async (t) => {
  const { createServer } = await import('node:net');
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as { port: number };
  await new Promise((resolve) => probe.close(resolve));
  const logs = captureLogs();
  const error = await t.throwsAsync(fast({ logger: logs.logger, retries: 2 }).post(`http://127.0.0.1:${port}/x`, {}), { instanceOf: HttpRequestError });
  t.is(error?.attempts, 3);
  t.regex(error?.message ?? '', /ECONNREFUSED/);
});

// Waits read from the answer's body (Telegram's flood control).

const TELEGRAM_429 = (seconds: number) => ({ ok: false, error_code: 429, description: `Too Many Requests: retry after ${seconds}`, parameters: { retry_after: seconds } });
const telegramWait = (body: unknown) => (body as { parameters?: { retry_after?: number } }).parameters?.retry_after;

test.serial('retryAfter: the wait in a 429 body is the wait before the next attempt', async (t) => {
  const waits: number[] = [];
  const sleep = async (ms: number) => void waits.push(ms);
  const scope = nock('https://api.telegram.test')
    .post('/botX/sendMessage')
    .reply(429, TELEGRAM_429(7), { 'Content-Type': 'application/json' })
    .post('/botX/sendMessage')
    .reply(200, { ok: true, result: {} }, { 'Content-Type': 'application/json' });
  const response = await fast({ sleep }).post('https://api.telegram.test/botX/sendMessage', { text: 'hi' }, { retryAfter: telegramWait });
  t.true(scope.isDone());
  t.deepEqual(response.body, { ok: true, result: {} });
  t.deepEqual(waits, [7_000]);
});

test.serial('retryAfter: a Retry-After header wins over the body; a hook that throws or answers nonsense gives the backoff', async (t) => {
  const waits: number[] = [];
  const sleep = async (ms: number) => void waits.push(ms);
  const client = fast({ sleep });
  nock('https://api.telegram.test').post('/a').reply(429, TELEGRAM_429(7), { 'Content-Type': 'application/json', 'Retry-After': '2' }).post('/a').reply(200, 'ok');
  await client.post('https://api.telegram.test/a', {}, { retryAfter: telegramWait });
  nock('https://api.telegram.test').post('/b').reply(429, TELEGRAM_429(7), { 'Content-Type': 'application/json' }).post('/b').reply(200, 'ok');
  await client.post('https://api.telegram.test/b', {}, { retryAfter: () => { throw new Error('bad hook'); } });
  nock('https://api.telegram.test').post('/c').reply(429, TELEGRAM_429(7), { 'Content-Type': 'application/json' }).post('/c').reply(200, 'ok');
  await client.post('https://api.telegram.test/c', {}, { retryAfter: () => -5 });
  t.is(waits[0], 2_000);
  t.true(waits[1]! <= 20 && waits[2]! <= 20, `backoff only: ${waits.join(', ')}`);
});

test.serial('retryAfter: a wait past maxRetryAfterMs is not waited for: one attempt, and the give-up is logged', async (t) => {
  const logs = captureLogs();
  const waits: number[] = [];
  const scope = nock('https://api.telegram.test')
    .post('/botX/sendMessage')
    .reply(429, TELEGRAM_429(3600), { 'Content-Type': 'application/json' })
    .post('/botX/sendMessage')
    .reply(200, { ok: true });
  const client = fast({ logger: logs.logger, maxRetryAfterMs: 30_000, sleep: async (ms) => void waits.push(ms) });
  const error = await t.throwsAsync(client.post('https://api.telegram.test/botX/sendMessage', {}, { retryAfter: telegramWait, channel: 'telegram' }), { instanceOf: HttpRequestError });
  t.is(error?.status, 429);
  t.is(error?.attempts, 1);
  t.deepEqual(waits, []);
  t.false(scope.isDone(), 'no second attempt');
  t.like(logs.lines().find((line) => line.msg === 'the platform asked to wait longer than the cap; giving up'), { level: 40, channel: 'telegram', retryAfterMs: 3_600_000, maxRetryAfterMs: 30_000 });
});

test('the public fetch is node-fetch, loaded on first use: a multipart upload with its FormData reaches the server', async (t) => {
  const { fetch } = await import('switchboard');
  const { FormData, Blob } = await import('node-fetch');
  const scope = nock('https://upload.example.com')
    .post('/files', (body: string) => body.includes('name="file"; filename="a.txt"') && body.includes('hello file'))
    .matchHeader('content-type', /^multipart\/form-data; boundary=/)
    .reply(201, { id: 'f1' });
  const form = new FormData();
  form.append('file', new Blob(['hello file'], { type: 'text/plain' }), 'a.txt');
  const response = await fetch('https://upload.example.com/files', { method: 'POST', body: form });
  t.is(response.status, 201);
  t.deepEqual(await response.json(), { id: 'f1' });
  t.true(scope.isDone());
});

test('an answer larger than MAX_ANSWER_BYTES is cut off with an error, not read into memory; calls say they are Switchboard', async (t) => {
  const { MAX_ANSWER_BYTES } = await import('#src/http.js');
  const { VERSION } = await import('#src/version.js');
  const huge = Buffer.alloc(MAX_ANSWER_BYTES + 1024, 'a');
  nock('https://huge.example.com').matchHeader('user-agent', `Switchboard/${VERSION}`).get('/big').reply(200, huge, { 'content-type': 'text/plain' });
  const client = new HttpClient({ retries: 0 });
  const error = await t.throwsAsync(client.get('https://huge.example.com/big'), { instanceOf: HttpRequestError });
  t.regex(String(error?.cause ?? error?.message), /larger than 16777216 bytes/);
  nock('https://huge.example.com').matchHeader('user-agent', `Switchboard/${VERSION}`).get('/small').reply(200, { ok: true });
  t.deepEqual((await client.get('https://huge.example.com/small')).body, { ok: true });
});
