// Request verification: HMACs over the raw bytes, constant-time comparison, and the requireVerified middleware, both
// in a bare Koa app and behind the real host (401 as JSON, the bot never reached, the reason logged).
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import test from 'ava';
import Koa, { type Context, type Next } from 'koa';
import { InputChannel, Router } from '#src/channel.js';
import { createLogger } from '#src/logger.js';
import { UserMessage } from '#src/message.js';
import { CollectingOutputChannel } from '#src/output.js';
import type { OnNewMessage } from '#src/pipeline.js';
import { SwitchboardServer } from '#src/server.js';
import { hmac, hubChallenge, keepRawBytes, rawBody, rawBytes, requireVerified, safeEqual, verifyHmac, verifyHubSignature, type RequestCheck } from '#src/signature.js';
import { BadRequestError, ForbiddenError } from '#src/errors.js';

// RFC 4231 test case 2 / RFC 2202 test case 2.
const KEY = 'Jefe';
const DATA = 'what do ya want for nothing?';
const SHA256 = '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843';
const SHA1 = 'effcdf6ae5eb2fa2d27416d5f184df9c259a7c79';

// ---------------------------------------------------------------------------------------------------------------------
// hmac, safeEqual, verifyHmac

test("verifyHubSignature checks Meta's X-Hub-Signature-256 over the bytes, with a reason for each failure", (t) => {
  const header = { 'x-hub-signature-256': `sha256=${SHA256}` };
  t.true(verifyHubSignature(DATA, header, KEY));
  t.true(verifyHubSignature(Buffer.from(DATA), { 'x-hub-signature-256': `sha256=${SHA256.toUpperCase()}` }, KEY));
  t.is(verifyHubSignature(DATA, header, undefined), 'no app secret configured');
  t.is(verifyHubSignature(DATA, header, ''), 'no app secret configured');
  t.is(verifyHubSignature(DATA, {}, KEY), 'missing X-Hub-Signature-256 header');
  t.is(verifyHubSignature(DATA, { 'x-hub-signature-256': SHA256 }, KEY), 'X-Hub-Signature-256 does not match the body');
  t.is(verifyHubSignature(`${DATA} `, header, KEY), 'X-Hub-Signature-256 does not match the body');
});

test("hubChallenge answers Meta's subscription check only for mode subscribe and the right token", (t) => {
  t.is(hubChallenge({ 'hub.mode': 'subscribe', 'hub.verify_token': 'tok', 'hub.challenge': '42' }, 'tok'), '42');
  t.throws(() => hubChallenge({ 'hub.mode': 'subscribe', 'hub.verify_token': 'tok2', 'hub.challenge': '42' }, 'tok'), { instanceOf: ForbiddenError });
  t.throws(() => hubChallenge({ 'hub.mode': 'unsubscribe', 'hub.verify_token': 'tok', 'hub.challenge': '42' }, 'tok'), { instanceOf: ForbiddenError });
  t.throws(() => hubChallenge({ 'hub.mode': 'subscribe', 'hub.verify_token': ['tok', 'tok'], 'hub.challenge': '42' }, 'tok'), { instanceOf: ForbiddenError });
  t.throws(() => hubChallenge({ 'hub.mode': 'subscribe', 'hub.verify_token': 'tok' }, 'tok'), { instanceOf: BadRequestError, message: 'missing "hub.challenge"' });
});

test('hmac matches the RFC test vectors in hex and base64', (t) => {
  t.is(hmac('sha256', KEY, DATA), SHA256);
  t.is(hmac('sha1', KEY, DATA), SHA1);
  t.is(hmac('sha256', KEY, DATA, 'base64'), Buffer.from(SHA256, 'hex').toString('base64'));
  t.is(hmac('sha256', Buffer.from(KEY), Buffer.from(DATA)), SHA256);
  t.is(hmac('sha512', KEY, DATA).length, 128);
});

test('safeEqual compares strings exactly, different lengths and non-strings being unequal', (t) => {
  t.true(safeEqual('abc', 'abc'));
  t.true(safeEqual('', ''));
  t.false(safeEqual('abc', 'abd'));
  t.false(safeEqual('abc', 'abcd'));
  t.false(safeEqual('abcd', 'abc'));
  t.false(safeEqual('abc', 'ABC'));
  t.false(safeEqual(undefined, 'abc'));
  t.false(safeEqual('abc', null));
  t.false(safeEqual(undefined, undefined));
  t.false(safeEqual(null, null));
  // Same number of characters, different number of bytes: must not throw.
  t.false(safeEqual('é', 'e'));
  t.false(safeEqual('ée', 'eé'));
  t.true(safeEqual('héllo', 'héllo'));
});

test('verifyHmac accepts the right signature, with or without a prefix', (t) => {
  t.true(verifyHmac({ algorithm: 'sha256', secret: KEY, payload: DATA, signature: SHA256 }));
  t.true(verifyHmac({ algorithm: 'sha256', secret: KEY, payload: DATA, signature: `sha256=${SHA256}`, prefix: 'sha256=' }));
  t.true(verifyHmac({ algorithm: 'sha1', secret: KEY, payload: DATA, signature: `sha1=${SHA1}`, prefix: 'sha1=' }));
  t.true(verifyHmac({ algorithm: 'sha256', secret: KEY, payload: Buffer.from(DATA), signature: SHA256 }));
});

test('hex signatures are compared case-insensitively, base64 ones exactly', (t) => {
  t.true(verifyHmac({ algorithm: 'sha256', secret: KEY, payload: DATA, signature: SHA256.toUpperCase() }));
  const b64 = hmac('sha256', KEY, DATA, 'base64');
  t.true(verifyHmac({ algorithm: 'sha256', secret: KEY, payload: DATA, signature: b64, encoding: 'base64' }));
  t.not(b64, b64.toLowerCase());
  t.false(verifyHmac({ algorithm: 'sha256', secret: KEY, payload: DATA, signature: b64.toLowerCase(), encoding: 'base64' }));
  t.false(verifyHmac({ algorithm: 'sha256', secret: KEY, payload: DATA, signature: SHA256, encoding: 'base64' }));
});

test('verifyHmac rejects wrong, missing, truncated and mis-prefixed signatures without throwing', (t) => {
  const check = { algorithm: 'sha256' as const, secret: KEY, payload: DATA };
  t.false(verifyHmac({ ...check, signature: undefined }));
  t.false(verifyHmac({ ...check, signature: null }));
  t.false(verifyHmac({ ...check, signature: '' }));
  t.false(verifyHmac({ ...check, signature: SHA256.slice(0, -1) }));
  t.false(verifyHmac({ ...check, signature: `${SHA256}0` }));
  t.false(verifyHmac({ ...check, signature: `${SHA256.slice(0, -1)}0` }), 'last digit changed');
  t.false(verifyHmac({ ...check, signature: SHA256, prefix: 'sha256=' }), 'prefix required but absent');
  t.false(verifyHmac({ ...check, signature: `sha1=${SHA256}`, prefix: 'sha256=' }));
  t.false(verifyHmac({ ...check, signature: 'sha256=', prefix: 'sha256=' }));
  t.false(verifyHmac({ ...check, signature: 'ééé' }));
  t.false(verifyHmac({ ...check, signature: 42 as unknown as string }));
  t.false(verifyHmac({ ...check, secret: 'jefe', signature: SHA256 }), 'another secret');
  t.false(verifyHmac({ ...check, payload: `${DATA} `, signature: SHA256 }), 'another payload');
});

test('verifyHmac fails closed when the secret is empty', (t) => {
  // With an empty key anyone can compute the HMAC: an unset secret must never verify a request.
  const forged = hmac('sha256', '', DATA);
  t.false(verifyHmac({ algorithm: 'sha256', secret: '', payload: DATA, signature: forged }));
  t.false(verifyHmac({ algorithm: 'sha256', secret: Buffer.alloc(0), payload: DATA, signature: forged }));
});

test('the signature is over the raw bytes, not over re-serialised JSON', (t) => {
  // Meta and Slack escape `/` and non-ASCII characters; JSON.stringify of the parsed body does not.
  const raw = '{"text":"a\\/b caf\\u00e9","n":1.0}';
  const signature = hmac('sha256', 'app-secret', raw);
  t.true(verifyHmac({ algorithm: 'sha256', secret: 'app-secret', payload: raw, signature }));
  const reserialised = JSON.stringify(JSON.parse(raw));
  t.not(reserialised, raw);
  t.false(verifyHmac({ algorithm: 'sha256', secret: 'app-secret', payload: reserialised, signature }));
});

// ---------------------------------------------------------------------------------------------------------------------
// requireVerified in a bare Koa app

async function koaApp(t: import('ava').ExecutionContext, raw: string | undefined, check: RequestCheck, options: { skip?: boolean } = {}) {
  const app = new Koa();
  app.silent = true;
  let reached = 0;
  app.use(async (ctx: Context, next: Next) => {
    if (raw !== undefined) (ctx.request as { rawBody?: string }).rawBody = raw;
    await next();
  });
  app.use(requireVerified(check, options));
  app.use((ctx: Context) => {
    reached++;
    ctx.body = { ok: true };
  });
  const server = app.listen(0, '127.0.0.1');
  await new Promise<void>((resolve) => server.once('listening', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  return { url, reached: () => reached };
}

const signedCheck = (secret: string): RequestCheck => (ctx) =>
  verifyHmac({ algorithm: 'sha256', secret, payload: rawBody(ctx), signature: ctx.get('x-signature'), prefix: 'sha256=' });

test('requireVerified lets a verified request through', async (t) => {
  const raw = '{"hello":"world"}';
  const app = await koaApp(t, raw, signedCheck('s3cret'));
  const response = await fetch(app.url, { method: 'POST', headers: { 'x-signature': `sha256=${hmac('sha256', 's3cret', raw)}` } });
  t.is(response.status, 200);
  t.deepEqual(await response.json(), { ok: true });
  t.is(app.reached(), 1);
});

test('requireVerified answers 401 to a bad signature and never reaches the handler', async (t) => {
  const raw = '{"hello":"world"}';
  const app = await koaApp(t, raw, signedCheck('s3cret'));
  for (const signature of [`sha256=${hmac('sha256', 'other', raw)}`, '', 'sha256=', 'garbage']) {
    const response = await fetch(app.url, { method: 'POST', headers: signature ? { 'x-signature': signature } : {} });
    t.is(response.status, 401, `signature ${JSON.stringify(signature)}`);
  }
  t.is(app.reached(), 0);
});

test('requireVerified treats a check that throws, or returns a reason, as unverified', async (t) => {
  const throwing = await koaApp(t, '', () => {
    throw new Error('header malformed');
  });
  const rejecting = await koaApp(t, '', async () => 'timestamp too old');
  const truthy = await koaApp(t, '', () => 1 as unknown as boolean);
  for (const app of [throwing, rejecting, truthy]) {
    t.is((await fetch(app.url, { method: 'POST' })).status, 401);
    t.is(app.reached(), 0);
  }
});

test('requireVerified with skip lets everything through without calling the check', async (t) => {
  let checked = 0;
  const app = await koaApp(
    t,
    '',
    () => {
      checked++;
      return false;
    },
    { skip: true },
  );
  t.is((await fetch(app.url, { method: 'POST' })).status, 200);
  t.is(checked, 0);
  t.is(app.reached(), 1);
});

test('rawBody is the kept string, or empty', (t) => {
  t.is(rawBody({ request: { rawBody: 'abc' } } as unknown as Context), 'abc');
  t.is(rawBody({ request: {} } as unknown as Context), '');
  t.is(rawBody({ request: { rawBody: Buffer.from('abc') } } as unknown as Context), '');
});

test('rawBytes are the bytes the host kept (a byte order mark and latin1 included); rawBody is them as UTF-8', (t) => {
  const bytes = Buffer.from([0xef, 0xbb, 0xbf, 0x7b, 0x22, 0xe9, 0x22, 0x7d]);
  const ctx = { request: { rawBody: 'parsed text' } } as unknown as Context;
  keepRawBytes(ctx, bytes, async () => {});
  t.is(rawBytes(ctx), bytes);
  t.is(rawBody(ctx), bytes.toString('utf8'));
  t.true(rawBody(ctx).startsWith('\uFEFF'));
  // A context the host did not read: the text a parser kept, else nothing.
  t.deepEqual(rawBytes({ request: { rawBody: 'abc' } } as unknown as Context), Buffer.from('abc'));
  t.is(rawBytes({ request: {} } as unknown as Context).length, 0);
});

// ---------------------------------------------------------------------------------------------------------------------
// requireVerified behind the real host

const SECRET = 'whsec_0123456789abcdef';

/** A minimal signed channel: POST /webhook checks `x-hub-signature-256` over the raw body; GET /webhook is a challenge. */
class SignedInput extends InputChannel {
  constructor(private readonly secret: string, private readonly skip = false) {
    super({});
  }

  name(): string {
    return 'signed';
  }

  router(onNewMessage: OnNewMessage): Router {
    const router = this.newRouter();
    const verified = requireVerified(
      (ctx) => verifyHmac({ algorithm: 'sha256', secret: this.secret, payload: rawBody(ctx), signature: ctx.get('x-hub-signature-256'), prefix: 'sha256=' }) || 'signature mismatch',
      { skip: this.skip },
    );
    router.get('/webhook', verified, (ctx) => {
      ctx.body = ctx.query['challenge'];
    });
    router.post('/webhook', verified, async (ctx) => {
      const body = (ctx.request as { body?: { text?: string; sender?: string } }).body ?? {};
      const output = new CollectingOutputChannel();
      await onNewMessage(new UserMessage({ text: body.text, senderId: body.sender, output, inputChannel: this.name() }));
      ctx.body = output.messages;
    });
    return router;
  }
}

async function host(t: import('ava').ExecutionContext, skip = false) {
  const chunks: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer | string, _encoding, callback) {
      chunks.push(chunk.toString());
      callback();
    },
  });
  const handled: string[] = [];
  const server = new SwitchboardServer({
    channels: [new SignedInput(SECRET, skip)],
    bot: {
      handle: (message) => {
        handled.push(message.text);
        return [{ text: `echo: ${message.text}` }];
      },
    },
    logger: createLogger({ level: 'debug', destination }),
  });
  const address = await server.listen(0, '127.0.0.1');
  t.teardown(() => server.close(100));
  return { url: `http://127.0.0.1:${address.port}/webhooks/signed/webhook`, handled, logs: () => chunks.join('') };
}

test('behind the host, a signed request over its exact bytes reaches the bot', async (t) => {
  const { url, handled } = await host(t);
  const raw = '{"text":"caf\\u00e9 \\/ ok","sender":"u1"}';
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-hub-signature-256': `sha256=${hmac('sha256', SECRET, raw)}` },
    body: raw,
  });
  t.is(response.status, 200);
  t.deepEqual(await response.json(), [{ recipient_id: 'u1', text: 'echo: café / ok' }]);
  t.deepEqual(handled, ['café / ok']);
});

test('behind the host, a bad signature is a JSON 401, logged with the channel and reason, and the bot is not called', async (t) => {
  const { url, handled, logs } = await host(t);
  const raw = '{"text":"hi","sender":"u1"}';
  // Signed over the re-serialised body, with a space: not the bytes sent.
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-hub-signature-256': `sha256=${hmac('sha256', SECRET, '{"text": "hi","sender":"u1"}')}` },
    body: raw,
  });
  t.is(response.status, 401);
  t.regex(response.headers.get('content-type') ?? '', /json/);
  t.deepEqual(await response.json(), { error: 'request could not be verified' });
  const missing = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: raw });
  t.is(missing.status, 401);
  t.deepEqual(handled, []);
  const rejected = logs()
    .split('\n')
    .filter((line) => line.includes('request rejected: not verified'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
  t.is(rejected.length, 2);
  t.like(rejected[0], { channel: 'signed', reason: 'signature mismatch' });
  t.false(logs().includes(SECRET));
});

test('behind the host, a challenge is answered only after verification', async (t) => {
  const { url } = await host(t);
  const bad = await fetch(`${url}?challenge=12345`);
  t.is(bad.status, 401);
  t.false((await bad.text()).includes('12345'));
  // A GET has an empty raw body: the signature of the empty string verifies it.
  const good = await fetch(`${url}?challenge=12345`, { headers: { 'x-hub-signature-256': `sha256=${hmac('sha256', SECRET, '')}` } });
  t.is(good.status, 200);
  t.is(await good.text(), '12345');
});

test('behind the host, skip (allow_unverified) lets unsigned requests reach the bot', async (t) => {
  const { url, handled } = await host(t, true);
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"text":"hi","sender":"u2"}' });
  t.is(response.status, 200);
  t.deepEqual(handled, ['hi']);
});
