// The body intake (issue 13, finding 4 and the body limits of finding 1): signatures are checked over the bytes as
// sent (a byte order mark, a declared latin1 charset), signed routes verify before anything parses the body, JSON
// nesting is bounded before JSON.parse, and each route has a body limit sized to what its platform sends.
import test, { type ExecutionContext } from 'ava';
import { createHash, createHmac, generateKeyPairSync, sign as ed25519Sign } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import {
  InputChannel,
  MAX_JSON_DEPTH,
  UserMessage,
  CollectingOutputChannel,
  createLogger,
  jsonTooDeep,
  rawBytes,
  requireVerified,
  verifyHmac,
  type OnNewMessage,
  type Router,
} from 'switchboard';
import { LogCapture, startFakePlatform, startTestHost, type TestHost } from 'switchboard/testing';
import { parseCli, start as startCli } from '#src/cli.js';
import FacebookInput from '../channels/facebook/index.js';
import RestInput from '../channels/rest/index.js';
import SlackInput from '../channels/slack/index.js';
import TelegramInput from '../channels/telegram/index.js';
import TwilioInput from '../channels/twilio/index.js';
import TwilioVoiceInput from '../channels/twilio_voice/index.js';
import WebexTeamsInput from '../channels/webexteams/index.js';
import WhatsAppInput from '../channels/whatsapp/index.js';
import LineInput from '../channels/line/index.js';
import DiscordInput from '../channels/discord/index.js';
import InstagramInput from '../channels/instagram/index.js';

const FB_SECRET = 'a9f3c0e1d2b4a6c8e0f1a2b3c4d5e6f7';
const SLACK_SECRET = '8f742231b10e8888abcd99yyyzzz85a5';
const WEBEX_SECRET = 'webex-webhook-secret-1f2e';
const TWILIO_TOKEN = '12345678901234567890123456789012';
const TELEGRAM_SECRET = 'tg-secret-token_42';
const WA_SECRET = 'wa-app-secret-9b8c';
const LINE_SECRET = '8c570fa6dd201bb328f1c1eac23a96d8';
const IG_SECRET = 'ig-app-secret-4d7e';
const IGID = '17841405822304914';
const BOM = Buffer.from([0xef, 0xbb, 0xbf]);
/** A Discord application's key pair: Discord signs with the private half; the public one is configured as hex. */
const DISCORD_KEY = generateKeyPairSync('ed25519');
const DISCORD_PUBLIC_HEX = Buffer.from((DISCORD_KEY.publicKey.export({ format: 'jwk' }) as { x: string }).x, 'base64url').toString('hex');

interface Hosts {
  host: TestHost;
  /** Posts exactly these bytes to a channel's webhook. */
  post(channel: string, body: Buffer, headers: Record<string, string>, path?: string): Promise<{ status: number; text: string }>;
}

async function start(t: ExecutionContext, options: { bodyLimit?: string; extra?: InputChannel[] } = {}): Promise<Hosts> {
  const platform = await startFakePlatform();
  t.teardown(() => platform.close());
  const api = platform.url;
  const channels: InputChannel[] = [
    FacebookInput.fromCredentials({ verify: 'v', secret: FB_SECRET, 'page-access-token': 'p', api_url: api }),
    SlackInput.fromCredentials({ slack_token: 'xoxb-1', slack_signing_secret: SLACK_SECRET, api_url: api }),
    WebexTeamsInput.fromCredentials({ access_token: 't', webhook_secret: WEBEX_SECRET, api_url: api }),
    TwilioInput.fromCredentials({ account_sid: `AC${'0'.repeat(32)}`, auth_token: TWILIO_TOKEN, twilio_number: '+15005550006', api_url: api }),
    TwilioVoiceInput.fromCredentials({ auth_token: TWILIO_TOKEN }),
    TelegramInput.fromCredentials({ access_token: '1:a', verify: 'bot', webhook_url: 'https://x.example/w', secret_token: TELEGRAM_SECRET, api_url: api }),
    WhatsAppInput.fromCredentials({ phone_number_id: '106540352242922', access_token: 't', verify_token: 'v', app_secret: WA_SECRET, api_url: api }),
    LineInput.fromCredentials({ channel_secret: LINE_SECRET, channel_access_token: 'line-token', api_url: api }),
    DiscordInput.fromCredentials({ public_key: DISCORD_PUBLIC_HEX, application_id: '290926444748734465', api_url: api }),
    InstagramInput.fromCredentials({ verify: 'v', secret: IG_SECRET, 'page-access-token': 'p', instagram_account_id: IGID, api_url: api }),
    RestInput.fromCredentials({}),
    ...(options.extra ?? []),
  ];
  const host = await startTestHost(channels, { answers: [], bodyLimit: options.bodyLimit });
  t.teardown(() => host.close());
  return {
    host,
    async post(channel, body, headers, path = '/webhook') {
      const response = await fetch(`${host.url}/webhooks/${channel}${path}`, { method: 'POST', headers, body });
      return { status: response.status, text: await response.text() };
    },
  };
}

const fbSign = (bytes: Buffer) => ({ 'x-hub-signature-256': `sha256=${createHmac('sha256', FB_SECRET).update(bytes).digest('hex')}` });
const slackSign = (bytes: Buffer) => {
  const ts = String(Math.floor(Date.now() / 1000));
  const mac = createHmac('sha256', SLACK_SECRET).update(`v0:${ts}:`).update(bytes).digest('hex');
  return { 'x-slack-request-timestamp': ts, 'x-slack-signature': `v0=${mac}` };
};
const waSign = (bytes: Buffer) => ({ 'x-hub-signature-256': `sha256=${createHmac('sha256', WA_SECRET).update(bytes).digest('hex')}` });
const discordSign = (bytes: Buffer) => {
  const ts = String(Math.floor(Date.now() / 1000));
  return { 'x-signature-timestamp': ts, 'x-signature-ed25519': ed25519Sign(null, Buffer.concat([Buffer.from(ts), bytes]), DISCORD_KEY.privateKey).toString('hex') };
};
const igSign = (bytes: Buffer) => ({ 'x-hub-signature-256': `sha256=${createHmac('sha256', IG_SECRET).update(bytes).digest('hex')}` });

/** An Instagram delivery (Messenger Platform, `object: "instagram"`) carrying one text message. */
function instagramDelivery(text: string, mid: string): object {
  return { object: 'instagram', entry: [{ id: IGID, time: Date.now(), messaging: [{ sender: { id: '1254459154682919' }, recipient: { id: IGID }, timestamp: Date.now(), message: { mid, text } }] }] };
}
const webexSign = (bytes: Buffer) => ({ 'x-spark-signature': createHmac('sha1', WEBEX_SECRET).update(bytes).digest('hex') });
const lineSign = (bytes: Buffer) => ({ 'x-line-signature': createHmac('sha256', LINE_SECRET).update(bytes).digest('base64') });

/** A LINE delivery (Messaging API webhook event objects): one text message from a user, stamped now. */
function lineDelivery(text: string, webhookEventId: string): object {
  return {
    destination: 'Ub3a2f0c7e5d1234567890abcdef01234',
    events: [{ replyToken: 'nHuyWiB7yP5Zw52FIkcQobQuGDXCTA', type: 'message', mode: 'active', timestamp: Date.now(), source: { type: 'user', userId: 'U4af4980629e3b7b0cd2d8d6e7d3c2f91' }, webhookEventId, deliveryContext: { isRedelivery: false }, message: { id: '444573844083572737', type: 'text', quoteToken: 'q3Plxr4AgKd', text } }],
  };
}

/** A Messenger delivery (Meta's Webhooks reference): one entry, one text message; stamped now. */
function messengerDelivery(text: string, mid: string): object {
  const now = Date.now();
  return { object: 'page', entry: [{ id: '106524335271937', time: now, messaging: [{ sender: { id: '5471883929546893' }, recipient: { id: '106524335271937' }, timestamp: now, message: { mid, text } }] }] };
}

/** A WhatsApp Cloud API `messages` notification (Meta's webhooks reference): one text message; stamped now. */
function whatsappNotification(body: string, id: string): object {
  const value = {
    messaging_product: 'whatsapp',
    metadata: { display_phone_number: '15550783881', phone_number_id: '106540352242922' },
    contacts: [{ profile: { name: 'Kerry Fisher' }, wa_id: '16505551234' }],
    messages: [{ from: '16505551234', id, timestamp: String(Math.floor(Date.now() / 1000)), type: 'text', text: { body } }],
  };
  return { object: 'whatsapp_business_account', entry: [{ id: '102290129340398', changes: [{ value, field: 'messages' }] }] };
}

/** A Discord slash command interaction (`/ask text:…`) in a server, as Discord's example interaction. */
function discordCommand(text: string, id: string): object {
  return {
    type: 2, id, application_id: '290926444748734465', token: 'aW50ZXJhY3Rpb246Ym9t', version: 1, guild_id: '290926798626357999', channel_id: '645027906669510667',
    member: { user: { id: '53908232506183680', username: 'Mason' }, roles: [], permissions: '2147483647' },
    data: { id: '771825006014889984', name: 'ask', type: 1, options: [{ type: 3, name: 'text', value: text }] },
  };
}

/** A Slack Events API `event_callback` carrying a direct message. */
function slackDm(text: string, eventId: string): object {
  return {
    token: 'XXYYZZ', team_id: 'T123ABC456', api_app_id: 'A123ABC456', type: 'event_callback', event_id: eventId, event_time: Math.floor(Date.now() / 1000),
    authorizations: [{ enterprise_id: null, team_id: 'T123ABC456', user_id: 'U0BOT', is_bot: true, is_enterprise_install: false }],
    event: { type: 'message', channel: 'D024BE91L', user: 'U2147483697', text, ts: '1355517523.000005', event_ts: '1355517523.000005', channel_type: 'im' },
  };
}

/** A Webex webhook notification: a message was created (its text is fetched from the API). */
function webexNotification(id: string): object {
  return {
    id: 'Y2lzY29zcGFyazovL3VzL1dFQkhPT0svZjRlNjA1NjA', name: 'Switchboard', targetUrl: 'https://bot.example.com/webhooks/webexteams/webhook',
    resource: 'messages', event: 'created', orgId: 'OTZhYmMy', createdBy: 'Y2lzY29zcGFyazovL3VzL1BFT1BMRS9ib3Q', appId: 'Y2lzY29', ownedBy: 'creator', status: 'active',
    created: new Date().toISOString(), actorId: 'Y2lzY29zcGFyazovL3VzL1BFT1BMRS9tYXR0',
    data: { id, roomId: 'Y2lzY29zcGFyazovL3VzL1JPT00vcm9vbQ', roomType: 'direct', personId: 'Y2lzY29zcGFyazovL3VzL1BFT1BMRS9tYXR0', personEmail: 'matt@example.com', created: new Date().toISOString() },
  };
}

/** One byte changed after signing. */
function tampered(bytes: Buffer): Buffer {
  const copy = Buffer.from(bytes);
  const at = copy.lastIndexOf(0x7d) - 1;
  copy[at] = copy[at] === 0x20 ? 0x09 : 0x20;
  return copy;
}

/** JSON nested `depth` levels deep, `[` or `{"a":`. */
function nested(depth: number, kind: 'array' | 'object' = 'array'): string {
  return kind === 'array' ? '['.repeat(depth) + ']'.repeat(depth) : '{"a":'.repeat(depth - 1) + '{}' + '}'.repeat(depth - 1);
}

// --- signatures over the bytes ---------------------------------------------------------------------------------------

test('a validly signed body starting with a UTF-8 byte order mark is accepted (facebook, slack, webexteams, whatsapp, line, discord, instagram); tampered, refused', async (t) => {
  const { host, post } = await start(t);
  const json = { 'content-type': 'application/json' };
  const cases = [
    { channel: 'facebook', bytes: Buffer.concat([BOM, Buffer.from(JSON.stringify(messengerDelivery('bom on messenger', 'm_bom1')))]), sign: fbSign },
    { channel: 'slack', bytes: Buffer.concat([BOM, Buffer.from(JSON.stringify(slackDm('bom on slack', 'EvBOM1')))]), sign: slackSign },
    { channel: 'webexteams', bytes: Buffer.concat([BOM, Buffer.from(JSON.stringify(webexNotification('Y2lzY29zcGFyazovL3VzL01FU1NBR0UvYm9t')))]), sign: webexSign },
    { channel: 'whatsapp', bytes: Buffer.concat([BOM, Buffer.from(JSON.stringify(whatsappNotification('bom on whatsapp', 'wamid.bom1')))]), sign: waSign },
    { channel: 'line', bytes: Buffer.concat([BOM, Buffer.from(JSON.stringify(lineDelivery('bom on line', '01FZ74A0TDDPYRVKNK77XKCBOM')))]), sign: lineSign },
    { channel: 'discord', bytes: Buffer.concat([BOM, Buffer.from(JSON.stringify(discordCommand('bom on discord', '786008729715212999')))]), sign: discordSign },
    { channel: 'instagram', bytes: Buffer.concat([BOM, Buffer.from(JSON.stringify(instagramDelivery('bom on instagram', 'aWdfZAG1_bom1')))]), sign: igSign },
  ];
  for (const { channel, bytes, sign } of cases) {
    const refused = await post(channel, tampered(bytes), { ...json, ...sign(bytes) });
    t.is(refused.status, 401, `${channel}: tampered`);
    const accepted = await post(channel, bytes, { ...json, ...sign(bytes) });
    t.is(accepted.status, 200, `${channel}: ${accepted.text}`);
  }
  await host.bot.waitForMessages(6);
  t.deepEqual(host.received.map((m) => m.text).filter((text) => text?.startsWith('bom')).sort(), ['bom on discord', 'bom on instagram', 'bom on line', 'bom on messenger', 'bom on slack', 'bom on whatsapp']);
});

test('a validly signed latin1 body declared charset=iso-8859-1 is accepted and read in its charset; tampered, refused', async (t) => {
  const { host, post } = await start(t);
  const latin1 = { 'content-type': 'application/json; charset=iso-8859-1' };
  const cases = [
    { channel: 'facebook', bytes: Buffer.from(JSON.stringify(messengerDelivery('un café, à la crème', 'm_latin1')), 'latin1'), sign: fbSign },
    { channel: 'slack', bytes: Buffer.from(JSON.stringify(slackDm('un café, à la crème', 'EvLATIN1')), 'latin1'), sign: slackSign },
  ];
  for (const { channel, bytes, sign } of cases) {
    t.false(bytes.includes(Buffer.from('é', 'utf8')), 'the body is latin1, not UTF-8');
    t.is((await post(channel, tampered(bytes), { ...latin1, ...sign(bytes) })).status, 401, `${channel}: tampered`);
    const accepted = await post(channel, bytes, { ...latin1, ...sign(bytes) });
    t.is(accepted.status, 200, `${channel}: ${accepted.text}`);
  }
  await host.bot.waitForMessages(2);
  t.deepEqual(host.received.map((m) => m.text), ['un café, à la crème', 'un café, à la crème']);
  const webex = Buffer.from(JSON.stringify(webexNotification('Y2lzY29zcGFyazovL3VzL01FU1NBR0UvbGF0aW4')).replace('matt@', 'mätt@'), 'latin1');
  t.is((await post('webexteams', webex, { ...latin1, ...webexSign(webex) })).status, 200);
  t.is((await post('webexteams', tampered(webex), { ...latin1, ...webexSign(webex) })).status, 401);
});

test("twilio: a JSON body's bodySHA256 is over its bytes, byte order mark included; tampered, refused", async (t) => {
  const { host, post } = await start(t);
  const bytes = Buffer.concat([BOM, Buffer.from('{"Body":"hi","From":"+14155550100"}')]);
  const query = `bodySHA256=${createHash('sha256').update(bytes).digest('hex')}`;
  const url = `${host.url}/webhooks/twilio/webhook?${query}`;
  const signature = createHmac('sha1', TWILIO_TOKEN).update(url).digest('base64');
  const headers = { 'content-type': 'application/json', 'x-twilio-signature': signature };
  // Verified, then refused by the Messaging channel, which takes forms only: a 400, not a 401.
  const verified = await post('twilio', bytes, headers, `/webhook?${query}`);
  t.is(verified.status, 400);
  t.is(JSON.parse(verified.text).error, 'expected a form-encoded request body');
  t.is((await post('twilio', tampered(bytes), headers, `/webhook?${query}`)).status, 401);
});

// --- verify before parse ---------------------------------------------------------------------------------------------

test.serial('an unsigned 1 MB body to a signed route is refused 401 without ever being parsed; signed, it is parsed', async (t) => {
  const { post } = await start(t);
  const parsed: number[] = [];
  const original = JSON.parse;
  JSON.parse = function spy(text: string, reviver?: (this: unknown, key: string, value: unknown) => unknown) {
    if (typeof text === 'string' && text.length >= 900_000) parsed.push(text.length);
    return original(text, reviver);
  } as typeof JSON.parse;
  t.teardown(() => {
    JSON.parse = original;
  });
  const json = { 'content-type': 'application/json' };

  const deep = Buffer.from(nested(500_000));
  t.is(deep.length, 1_000_000);
  const unsignedDeep = await post('facebook', deep, json);
  t.is(unsignedDeep.status, 401, 'refused before the nesting check could run');
  t.is((await post('facebook', deep, { ...json, 'x-hub-signature-256': 'sha256=' + '0'.repeat(64) })).status, 401);
  const signedDeep = await post('facebook', deep, { ...json, ...fbSign(deep) });
  t.deepEqual([signedDeep.status, JSON.parse(signedDeep.text)], [400, { error: 'JSON nested too deeply' }]);

  const flat = Buffer.from(JSON.stringify({ object: 'page', entry: [], padding: 'x'.repeat(1_000_000) }));
  t.is((await post('facebook', flat, json)).status, 401);
  t.is((await post('slack', flat, json)).status, 401);
  t.deepEqual(parsed, [], 'JSON.parse never ran on an unverified body');
  t.is((await post('facebook', flat, { ...json, ...fbSign(flat) })).status, 200);
  t.deepEqual(parsed, [flat.length], 'parsed once, after verification');
});

test('every route that verifies first refuses an unsigned deeply nested body with 401, not 400', async (t) => {
  const { post } = await start(t);
  const deep = Buffer.from(nested(30_000));
  for (const channel of ['facebook', 'slack', 'webexteams', 'whatsapp', 'twilio', 'twilio_voice', 'telegram', 'line', 'discord', 'instagram']) {
    const response = await post(channel, deep, { 'content-type': 'application/json' });
    t.is(response.status, 401, channel);
  }
  // With its secret token, Telegram's route parses: then the nesting is what is refused.
  const telegram = await post('telegram', deep, { 'content-type': 'application/json', 'x-telegram-bot-api-secret-token': TELEGRAM_SECRET });
  t.deepEqual([telegram.status, JSON.parse(telegram.text)], [400, { error: 'JSON nested too deeply' }]);
});

/** A third-party channel: one route verifying first, one verifying after a middleware of its own, one unverified. */
class ThirdPartyInput extends InputChannel {
  readonly bodiesSeenByCheck: unknown[] = [];

  name(): string {
    return 'thirdparty';
  }

  router(onNewMessage: OnNewMessage): Router {
    const router = this.newRouter();
    const check = (ctx: Parameters<Parameters<typeof requireVerified>[0]>[0]) => {
      this.bodiesSeenByCheck.push((ctx.request as { body?: unknown }).body);
      return verifyHmac({ algorithm: 'sha256', secret: 's3cret', payload: rawBytes(ctx), signature: ctx.get('x-signature') });
    };
    const answer = async (ctx: Parameters<Parameters<typeof requireVerified>[0]>[0]) => {
      const body = (ctx.request as { body?: { text?: string } }).body;
      const output = new CollectingOutputChannel();
      await onNewMessage(new UserMessage({ text: body?.text, senderId: 'u', output, inputChannel: this.name() }));
      ctx.body = { text: body?.text ?? null };
    };
    router.post('/webhook', requireVerified(check), answer);
    router.post('/late', async (_ctx, next) => next(), requireVerified(check), answer);
    router.post('/open', answer);
    return router;
  }
}

test('a third-party channel: requireVerified first → parsed after verification; otherwise parsed before, as ever', async (t) => {
  const channel = new ThirdPartyInput({});
  const { post } = await start(t, { extra: [channel] });
  const body = Buffer.from('{"text":"from a package"}');
  const headers = { 'content-type': 'application/json', 'x-signature': createHmac('sha256', 's3cret').update(body).digest('hex') };
  const first = await post('thirdparty', body, headers);
  t.deepEqual([first.status, JSON.parse(first.text)], [200, { text: 'from a package' }]);
  t.is((await post('thirdparty', Buffer.from(nested(100)), { 'content-type': 'application/json' })).status, 401);
  const late = await post('thirdparty', body, headers, '/late');
  t.deepEqual([late.status, JSON.parse(late.text)], [200, { text: 'from a package' }]);
  const open = await post('thirdparty', body, { 'content-type': 'application/json' }, '/open');
  t.deepEqual([open.status, JSON.parse(open.text)], [200, { text: 'from a package' }]);
  // The check of a verify-first route ran before any parsing; the one behind a middleware, after.
  t.deepEqual(channel.bodiesSeenByCheck, [undefined, undefined, { text: 'from a package' }]);
});

// --- nesting depth ---------------------------------------------------------------------------------------------------

test('JSON nested deeper than 64 is refused 400 on unsigned routes, whatever its content type; 64 and brackets in strings pass', async (t) => {
  const { post } = await start(t);
  const rest = (metadataDepth: number, type = 'application/json') =>
    post('rest', Buffer.from(`{"sender":"a","message":"${'[{'.repeat(200)}","metadata":${nested(metadataDepth, 'object')}}`), { 'content-type': type });
  const ok = await rest(MAX_JSON_DEPTH - 1);
  t.is(ok.status, 200, ok.text);
  const deep = await rest(MAX_JSON_DEPTH);
  t.deepEqual([deep.status, JSON.parse(deep.text)], [400, { error: 'JSON nested too deeply' }]);
  // `curl -d` sends a form type; rest reads JSON from it all the same, so the limit applies too.
  t.is((await rest(MAX_JSON_DEPTH, 'application/x-www-form-urlencoded')).status, 400);
  t.is((await rest(MAX_JSON_DEPTH, 'text/plain')).status, 400);
});

test('jsonTooDeep counts brackets outside strings only, escapes included', (t) => {
  t.false(jsonTooDeep(nested(64)));
  t.true(jsonTooDeep(nested(65)));
  t.false(jsonTooDeep(`["${'['.repeat(100)}\\"${'{'.repeat(100)}"]`));
  t.true(jsonTooDeep(Buffer.from(`{"a\\\\":${nested(64)}}`)));
  t.false(jsonTooDeep('{"a":1}', 1));
  t.true(jsonTooDeep('{"a":[1]}', 1));
});

// --- body limits per route -------------------------------------------------------------------------------------------

test('body limits per route: 100 KB to rest → 413, signed to facebook → accepted; telegram 256kb; host routes 64kb', async (t) => {
  const { post, host } = await start(t);
  const restBody = (size: number) => Buffer.from(JSON.stringify({ sender: 'a', message: 'x'.repeat(size) }));
  const big = await post('rest', restBody(100 * 1024), { 'content-type': 'application/json' });
  t.deepEqual([big.status, JSON.parse(big.text)], [413, { error: 'request body is larger than the limit of 64kb' }]);
  t.is((await post('rest', restBody(60 * 1024), { 'content-type': 'application/json' })).status, 200);

  const delivery = messengerDelivery('y'.repeat(100 * 1024), 'm_big');
  const fb = Buffer.from(JSON.stringify(delivery));
  t.true(fb.length > 100 * 1024);
  const accepted = await post('facebook', fb, { 'content-type': 'application/json', ...fbSign(fb) });
  t.deepEqual([accepted.status, accepted.text], [200, 'success']);

  const update = (size: number) => Buffer.from(JSON.stringify({ update_id: 1, message: { message_id: 1, date: 1, chat: { id: 1, type: 'private' }, text: 'z'.repeat(size) } }));
  const tg = { 'content-type': 'application/json', 'x-telegram-bot-api-secret-token': TELEGRAM_SECRET };
  t.is((await post('telegram', update(300 * 1024), tg)).status, 413);
  t.is((await post('telegram', update(200 * 1024), tg)).status, 200);
  t.is((await post('twilio', Buffer.from(`Body=${'w'.repeat(70 * 1024)}`), { 'content-type': 'application/x-www-form-urlencoded' })).status, 413);

  const hostRoute = await host.request('/nowhere', { method: 'POST', headers: { 'content-type': 'application/json' }, body: restBody(100 * 1024) });
  t.deepEqual([hostRoute.status, hostRoute.json], [413, { error: 'request body is larger than the limit of 64kb' }]);
});

test('a third-party channel without its own limit takes 1mb', async (t) => {
  const { post } = await start(t, { extra: [new ThirdPartyInput({})] });
  const body = (size: number) => Buffer.from(JSON.stringify({ text: 'q'.repeat(size) }));
  t.is((await post('thirdparty', body(900 * 1024), { 'content-type': 'application/json' }, '/open')).status, 200);
  t.is((await post('thirdparty', body(1100 * 1024), { 'content-type': 'application/json' }, '/open')).status, 413);
});

test('--body-limit overrides every route: larger for rest, smaller for facebook', async (t) => {
  const larger = await start(t, { bodyLimit: '2mb' });
  const restBody = Buffer.from(JSON.stringify({ sender: 'a', message: 'x'.repeat(1024 * 1024) }));
  t.is((await larger.post('rest', restBody, { 'content-type': 'application/json' })).status, 200);

  const smaller = await start(t, { bodyLimit: '1kb' });
  const fb = Buffer.from(JSON.stringify(messengerDelivery('y'.repeat(2000), 'm_small')));
  const refused = await smaller.post('facebook', fb, { 'content-type': 'application/json', ...fbSign(fb) });
  t.deepEqual([refused.status, JSON.parse(refused.text)], [413, { error: 'request body is larger than the limit of 1kb' }]);
});

test('a gzip body is read decompressed, its limit counting the decompressed bytes; signatures are over those bytes', async (t) => {
  const { post, host } = await start(t);
  const ok = await post('rest', gzipSync(Buffer.from('{"sender":"z","message":"zipped"}')), { 'content-type': 'application/json', 'content-encoding': 'gzip' });
  t.is(ok.status, 200, ok.text);
  t.true(host.received.some((m) => m.text === 'zipped'));
  const bomb = gzipSync(Buffer.alloc(10 * 1024 * 1024, 0x20));
  t.true(bomb.length < 64 * 1024);
  t.is((await post('rest', bomb, { 'content-type': 'application/json', 'content-encoding': 'gzip' })).status, 413);
  t.is((await post('rest', Buffer.from('{}'), { 'content-type': 'application/json', 'content-encoding': 'br' })).status, 415);
  const delivery = Buffer.from(JSON.stringify(messengerDelivery('zipped for meta', 'm_gzip')));
  const signed = await post('facebook', gzipSync(delivery), { 'content-type': 'application/json', 'content-encoding': 'gzip', ...fbSign(delivery) });
  t.is(signed.status, 200);
});

test('the CLI: without --body-limit each route keeps its own limit; with it, every route takes that one', async (t) => {
  const body = JSON.stringify({ sender: 'a', message: 'x'.repeat(100 * 1024) });
  const statuses: number[] = [];
  for (const argv of [['--channel', 'rest'], ['--channel', 'rest', '--body-limit', '1mb']]) {
    const parsed = parseCli([...argv, '--port', '0', '--host', '127.0.0.1']);
    if (parsed.kind !== 'run') throw new Error('expected run options');
    const started = await startCli(parsed.options, { logger: createLogger({ level: 'silent', destination: new LogCapture() }) });
    t.teardown(() => started.server.close(0));
    const { port } = started.server.httpServer.address() as { port: number };
    const response = await fetch(`http://127.0.0.1:${port}/webhooks/rest/webhook`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    statuses.push(response.status);
  }
  t.deepEqual(statuses, [413, 200]);
});
