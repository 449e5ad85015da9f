/**
 * Edits and deletes of sent answers (issue 16, item 3): `PATCH` and `DELETE
 * /api/v1/conversations/{channel}/{recipient}/messages/{id}`. One data case per channel that can change a message it
 * sent: the platform answers the send with its id, shaped as its API reference shows, and the edit and the delete
 * must be exactly the calls that platform documents (method, path, body). Then the API's refusals: unknown ids,
 * answers not sent yet, channels that cannot edit, bad bodies, a platform refusing, and a bot's own answer ids.
 */
import anyTest, { type ExecutionContext } from 'ava';
import fc from 'fast-check';
import { RedisStore, type Bot, type Store } from 'switchboard';
import { startFakePlatform, ScriptedBot, type FakePlatform, type PlatformRequest } from 'switchboard/testing';
import { RedisServer, redisTest } from './redis-server.js';
import { API_TOKEN, apiHost, type PlatformAnswer } from './api-host.js';
import { ConnectorClient } from 'botframework-connector';
import { HttpClient, recordSent } from 'switchboard';
import { DiscordOutput } from '../channels/discord/output.js';

const test = anyTest;
const TOKEN = API_TOKEN;

/** The API's host; its bot answers nothing unless a test gives one. */
function host(t: ExecutionContext, answer: (request: PlatformRequest) => PlatformAnswer, options: { bot?: Bot; store?: Store; api?: FakePlatform } = {}) {
  return apiHost(t, { answer, ...options, bot: options.bot ?? new ScriptedBot([]) });
}

function call(url: string, method: string, path: string, body?: unknown, token: string | null = TOKEN): Promise<Response> {
  return fetch(`${url}/api/v1/conversations/${path}`, {
    method,
    headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...(token === null ? {} : { authorization: `Bearer ${token}` }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
}

function messagesPath(channel: string, recipient: string, id?: string): string {
  return `${encodeURIComponent(channel)}/${encodeURIComponent(recipient)}/messages${id === undefined ? '' : `/${encodeURIComponent(id)}`}`;
}

/** Sends `answers` first and waits until every one of them is sent (the API stops answering 409 "not sent yet"). */
async function sendFirst(t: ExecutionContext, url: string, channel: string, recipient: string, answers: unknown[]): Promise<string[]> {
  const response = await call(url, 'POST', messagesPath(channel, recipient), answers);
  t.is(response.status, 202, response.status === 202 ? '' : await response.clone().text());
  const { ids } = (await response.json()) as { ids: string[] };
  t.is(ids.length, answers.length);
  return ids;
}

async function until<T>(get: () => Promise<T>, done: (value: T) => boolean, what: string, timeoutMs = 5_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await get();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`gave up waiting: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** PATCH, retried while the answer is still pending (409 with Retry-After). */
async function edit(url: string, channel: string, recipient: string, id: string, text: string): Promise<Response> {
  return until(() => call(url, 'PATCH', messagesPath(channel, recipient, id), { text }), (r) => r.status !== 409 || r.headers.get('retry-after') === null, 'the answer to be sent');
}

interface Expected {
  method: string;
  path: string;
  /** The JSON body, exactly; undefined: no body. */
  json?: unknown;
}

function received(api: FakePlatform, expected: Expected): PlatformRequest[] {
  return api.requests.filter((r) => r.method === expected.method && r.path === expected.path);
}

function assertCall(t: ExecutionContext, api: FakePlatform, expected: Expected, pick?: (body: Record<string, unknown>) => unknown): void {
  const calls = received(api, expected);
  t.is(calls.length, 1, `${expected.method} ${expected.path} once (got ${api.requests.map((r) => `${r.method} ${r.path}`).join(', ')})`);
  const body = calls[0]?.body ?? '';
  if (expected.json === undefined) t.is(body, '', `${expected.method} ${expected.path} without a body`);
  else t.deepEqual(pick ? pick(JSON.parse(body) as Record<string, unknown>) : JSON.parse(body), expected.json);
}

interface EditCase {
  channel: string;
  recipient: string;
  /** The platform's answer to the call that sends the text (its message id in it), else undefined. */
  sent: (request: PlatformRequest) => PlatformAnswer;
  edit: Expected;
  /** Compares only these fields of the edit's body (a Bot Framework activity carries the whole conversation reference). */
  editFields?: (body: Record<string, unknown>) => unknown;
  remove: Expected;
  /** Makes the recipient known first (Bot Framework needs an earlier message). */
  before?: (url: string, api: FakePlatform) => Promise<void>;
}

const SLACK_TS = '1503435956.000247';
const MM_POST = 'xo3qpc8qxpnq5jzhfw9ktmdb1h';
const RC_MESSAGE = '7aDSXtjMA3KPLxLjt';
const WEBEX_ROOM = 'Y2lzY29zcGFyazovL3VzL1JPT00vYmJjZWIxYWQtNDNmMS0zYjU4LTkxNDctZjE0YmIwYzRkMTU0';
const WEBEX_MESSAGE = 'Y2lzY29zcGFyazovL3VzL01FU1NBR0UvOTJkYjNiZTAtNDNiZC0xMWU2LThhZTktZGQ1YjNkZmM1NjVk';
const BF_CONVERSATION = 'a:1zPNq1EP2_Hb3Gf';

const CASES: EditCase[] = [
  {
    channel: 'telegram',
    recipient: '123456789',
    // Bot API: sendMessage returns the sent Message.
    sent: (r) => (r.path === '/bot1:a/sendMessage' ? { body: { ok: true, result: { message_id: 4711, date: 1441645532, chat: { id: 123456789, type: 'private', first_name: 'A' }, text: 'first' } } } : undefined),
    edit: { method: 'POST', path: '/bot1:a/editMessageText', json: { chat_id: '123456789', message_id: 4711, text: 'corrected' } },
    remove: { method: 'POST', path: '/bot1:a/deleteMessage', json: { chat_id: '123456789', message_id: 4711 } },
  },
  {
    channel: 'slack',
    recipient: 'U024BE7LH',
    // chat.postMessage to a user id answers with the DM's channel id, which chat.update and chat.delete need.
    sent: (r) => (r.path === '/chat.postMessage' ? { body: { ok: true, channel: 'D024BE91L', ts: SLACK_TS, message: { type: 'message', text: 'first', ts: SLACK_TS } } } : undefined),
    edit: { method: 'POST', path: '/chat.update', json: { channel: 'D024BE91L', ts: SLACK_TS, text: 'corrected', blocks: [], attachments: [] } },
    remove: { method: 'POST', path: '/chat.delete', json: { channel: 'D024BE91L', ts: SLACK_TS } },
  },
  {
    channel: 'mattermost',
    recipient: 'h7ixbydcg7gyjm1ejr3y5ztrqw',
    sent: (r) => (r.method === 'POST' && r.path === '/api/v4/posts' ? { status: 201, body: { id: MM_POST, channel_id: 'h7ixbydcg7gyjm1ejr3y5ztrqw', message: 'first', create_at: 1441645532000 } } : undefined),
    edit: { method: 'PUT', path: `/api/v4/posts/${MM_POST}/patch`, json: { message: 'corrected', props: {} } },
    remove: { method: 'DELETE', path: `/api/v4/posts/${MM_POST}` },
  },
  {
    channel: 'rocketchat',
    recipient: 'GENERAL',
    sent: (r) => (r.path === '/api/v1/chat.postMessage' ? { body: { ts: 1481748965123, channel: 'general', message: { _id: RC_MESSAGE, rid: 'GENERAL', msg: 'first', u: { _id: 'botuserid', username: 'bot' } }, success: true } } : undefined),
    edit: { method: 'POST', path: '/api/v1/chat.update', json: { roomId: 'GENERAL', msgId: RC_MESSAGE, text: 'corrected' } },
    remove: { method: 'POST', path: '/api/v1/chat.delete', json: { roomId: 'GENERAL', msgId: RC_MESSAGE } },
  },
  {
    channel: 'webexteams',
    recipient: WEBEX_ROOM,
    sent: (r) => (r.method === 'POST' && r.path === '/messages' ? { body: { id: WEBEX_MESSAGE, roomId: WEBEX_ROOM, roomType: 'group', text: 'first', created: '2015-10-18T14:26:16+00:00' } } : undefined),
    edit: { method: 'PUT', path: `/messages/${WEBEX_MESSAGE}`, json: { roomId: WEBEX_ROOM, text: 'corrected' } },
    remove: { method: 'DELETE', path: `/messages/${WEBEX_MESSAGE}` },
  },
  {
    channel: 'botframework',
    recipient: '29:1zPNq1EP2_H',
    // The Connector answers a posted activity with its ResourceResponse `{id}`.
    sent: (r) => (r.method === 'POST' && r.path === `/v3/conversations/${encodeURIComponent(BF_CONVERSATION)}/activities` ? { body: { id: '1493070356924' } } : undefined),
    edit: { method: 'PUT', path: `/v3/conversations/${encodeURIComponent(BF_CONVERSATION)}/activities/1493070356924`, json: { type: 'message', id: '1493070356924', text: 'corrected', conversation: { id: BF_CONVERSATION } } },
    editFields: (body) => ({ type: body.type, id: body.id, text: body.text, conversation: body.conversation }),
    remove: { method: 'DELETE', path: `/v3/conversations/${encodeURIComponent(BF_CONVERSATION)}/activities/1493070356924` },
    before: async (url, api) => {
      // Bot Framework reaches a user only through an earlier message's conversation reference.
      const activity = { type: 'message', id: 'f:1', timestamp: new Date().toISOString(), channelId: 'msteams', serviceUrl: api.url, from: { id: '29:1zPNq1EP2_H', name: 'A' }, conversation: { id: BF_CONVERSATION }, recipient: { id: '28:bot', name: 'bot' }, text: 'hi' };
      const response = await fetch(`${url}/webhooks/botframework/webhook`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(activity) });
      if (response.status >= 300) throw new Error(`the activity was refused: ${response.status}`);
    },
  },
];

for (const item of CASES) {
  test(`${item.channel}: an answer sent first is edited, then deleted, with the platform's own calls`, async (t) => {
    const { url, api } = await host(t, item.sent);
    await item.before?.(url, api);
    const [id] = await sendFirst(t, url, item.channel, item.recipient, [{ text: 'first' }]);
    t.regex(id!, /^m_[A-Za-z0-9_-]{22}$/);

    const edited = await edit(url, item.channel, item.recipient, id!, 'corrected');
    t.is(edited.status, 200);
    t.deepEqual(await edited.json(), { status: 'edited', channel: item.channel, recipient: item.recipient, id });
    assertCall(t, api, item.edit, item.editFields);

    const deleted = await call(url, 'DELETE', messagesPath(item.channel, item.recipient, id));
    t.is(deleted.status, 200);
    t.deepEqual(await deleted.json(), { status: 'deleted', channel: item.channel, recipient: item.recipient, id });
    assertCall(t, api, item.remove);

    // Deleted is gone: both are 410, and nothing more reaches the platform.
    const count = api.requests.length;
    t.is((await call(url, 'DELETE', messagesPath(item.channel, item.recipient, id))).status, 410);
    t.is((await call(url, 'PATCH', messagesPath(item.channel, item.recipient, id), { text: 'again' })).status, 410);
    t.is(api.requests.length, count);
  });
}

test('Bot Framework: the edit and the delete are the calls Microsoft\'s SDK makes (botframework-connector as the referee)', async (t) => {
  const api = await startFakePlatform();
  t.teardown(() => api.close());
  // updateActivity and deleteActivity as a bot built on the SDK calls them; its credentials sign nothing here.
  const client = new ConnectorClient({ signRequest: async (request: unknown) => request } as never, { baseUri: api.url });
  await client.conversations.updateActivity(BF_CONVERSATION, '1493070356924', { type: 'message', text: 'corrected' } as never);
  await client.conversations.deleteActivity(BF_CONVERSATION, '1493070356924');
  const sdk = api.requests.map((r) => ({ method: r.method, path: r.path }));
  const ours = CASES.find((c) => c.channel === 'botframework')!;
  t.deepEqual(sdk, [{ method: ours.edit.method, path: ours.edit.path }, { method: ours.remove.method, path: ours.remove.path }]);
});

test('Discord: follow-up messages are reported, edited and deleted through the webhook of the interaction that sent them', async (t) => {
  const api = await startFakePlatform((r) => (r.method === 'POST' ? { body: { id: '1176946473014419517', type: 0, content: 'first', channel_id: '645027906669510667' } } : undefined));
  t.teardown(() => api.close());
  const webhook = (token: string) => `${api.url}/v10/webhooks/290926444748734465/${token}`;
  const first = new DiscordOutput(new HttpClient(), { webhookUrl: webhook('aW50ZXJhY3Rpb246MQ'), logger: undefined as never });
  const { messages } = await recordSent(() => first.sendResponse('53908232506183680', { text: 'first' }));
  t.deepEqual(messages, [{ id: '1176946473014419517', conversation: 'aW50ZXJhY3Rpb246MQ', text: true }]);
  // Changed later through the output of the user's next interaction: the message's own interaction token is used.
  const later = new DiscordOutput(new HttpClient(), { webhookUrl: webhook('aW50ZXJhY3Rpb246Mg'), logger: undefined as never });
  await later.editMessage('53908232506183680', messages[0]!, 'corrected');
  await later.deleteMessage('53908232506183680', messages[0]!);
  t.deepEqual(api.requests.slice(1).map((r) => [r.method, r.path, r.body === '' ? undefined : JSON.parse(r.body)]), [
    ['PATCH', '/v10/webhooks/290926444748734465/aW50ZXJhY3Rpb246MQ/messages/1176946473014419517', { content: 'corrected', embeds: [], components: [], allowed_mentions: { parse: [] } }],
    ['DELETE', '/v10/webhooks/290926444748734465/aW50ZXJhY3Rpb246MQ/messages/1176946473014419517', undefined],
  ]);
});

/** Telegram answering each sendMessage with the next message id, from 100. */
function telegramIds(): (request: PlatformRequest) => PlatformAnswer {
  let next = 100;
  return (r) => (/\/send(Message|Photo)$/.test(r.path) ? { body: { ok: true, result: { message_id: next++, date: 1441645532, chat: { id: 42, type: 'private' } } } } : undefined);
}

test('an answer shown as several messages: the edit goes to the first text message, its other text messages are deleted, an image stays', async (t) => {
  const { url, api } = await host(t, telegramIds());
  const [id] = await sendFirst(t, url, 'telegram', '42', [{ text: 'part one\n\npart two', image: 'https://example.com/a.png' }]);
  t.is((await edit(url, 'telegram', '42', id!, 'one part')).status, 200);
  const calls = api.requests.filter((r) => /editMessageText|deleteMessage/.test(r.path)).map((r) => [r.path.split('/').pop(), JSON.parse(r.body)]);
  t.deepEqual(calls, [
    ['editMessageText', { chat_id: '42', message_id: 100, text: 'one part' }],
    ['deleteMessage', { chat_id: '42', message_id: 101 }],
  ]);
  // A delete now removes what is left: the edited text and the image.
  t.is((await call(url, 'DELETE', messagesPath('telegram', '42', id))).status, 200);
  const deletes = api.requests.filter((r) => r.path.endsWith('/deleteMessage')).map((r) => (JSON.parse(r.body) as { message_id: number }).message_id);
  t.deepEqual(deletes, [101, 100, 102]);
});

test('an answer with no text (an image) cannot be edited (409), only deleted', async (t) => {
  const { url } = await host(t, telegramIds());
  const [id] = await sendFirst(t, url, 'telegram', '42', [{ image: 'https://example.com/a.png' }]);
  const response = await edit(url, 'telegram', '42', id!, 'text');
  t.is(response.status, 409);
  t.regex(((await response.json()) as { error: string }).error, /shows no text/);
  t.is((await call(url, 'DELETE', messagesPath('telegram', '42', id))).status, 200);
});

test('ids given by the caller are kept and returned; a caller id that is not an id, or given twice, is 400', async (t) => {
  const { url } = await host(t, telegramIds());
  const response = await call(url, 'POST', messagesPath('telegram', '42'), [{ text: 'a', id: 'order-1234.shipped' }, { text: 'b' }]);
  t.is(response.status, 202);
  const { ids } = (await response.json()) as { ids: string[] };
  t.is(ids[0], 'order-1234.shipped');
  t.regex(ids[1]!, /^m_/);
  t.is((await edit(url, 'telegram', '42', 'order-1234.shipped', 'a, corrected')).status, 200);
  for (const body of [[{ text: 'a', id: 'has space' }], [{ text: 'a', id: 7 }], [{ text: 'a', id: 'x'.repeat(129) }], [{ text: 'a', id: 'same' }, { text: 'b', id: 'same' }]]) {
    t.is((await call(url, 'POST', messagesPath('telegram', '42'), body)).status, 400, JSON.stringify(body).slice(0, 60));
  }
});

test('a bot answer that carries an "id" can be edited through the API; the id never reaches the platform', async (t) => {
  const bot = new ScriptedBot([{ text: 'Your table is booked for 8 pm.', id: 'booking-77' }]);
  const { url, api, server } = await host(t, telegramIds(), { bot });
  const channel = server.channels.find((c) => c.name() === 'telegram')!;
  const update = { update_id: 1, message: { message_id: 1, from: { id: 42, is_bot: false, first_name: 'A' }, chat: { id: 42, type: 'private' }, date: 1441645532, text: 'book' } };
  const secret = (channel as unknown as { secretToken: string }).secretToken;
  t.is((await fetch(`${url}/webhooks/telegram/webhook`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-telegram-bot-api-secret-token': secret }, body: JSON.stringify(update) })).status, 200);
  const response = await until(() => call(url, 'PATCH', messagesPath('telegram', '42', 'booking-77'), { text: 'Your table is booked for 9 pm.' }), (r) => r.status !== 404, 'the bot answer to be sent');
  t.is(response.status, 200);
  const sent = api.requests.find((r) => r.path.endsWith('/sendMessage'))!;
  t.deepEqual(JSON.parse(sent.body), { chat_id: '42', text: 'Your table is booked for 8 pm.' });
  t.deepEqual(JSON.parse(api.requests.find((r) => r.path.endsWith('/editMessageText'))!.body), { chat_id: '42', message_id: 100, text: 'Your table is booked for 9 pm.' });
});

test('refusals: 401 without the token, 404 for an unknown id or channel, 409 for a channel that cannot edit or an answer not sent yet, 400 for bad bodies', async (t) => {
  const bot = new ScriptedBot(async () => {
    await new Promise((resolve) => setTimeout(resolve, 600));
    return [{ text: 'the bot answer' }];
  });
  const { url, api, server } = await host(t, telegramIds(), { bot });
  t.is((await call(url, 'PATCH', messagesPath('telegram', '42', 'x'), { text: 'a' }, null)).status, 401);
  t.is((await call(url, 'DELETE', messagesPath('telegram', '42', 'x'), undefined, 'wrong-token-wrong-token-000')).status, 401);
  const unknown = await call(url, 'PATCH', messagesPath('telegram', '42', 'never-sent'), { text: 'a' });
  t.is(unknown.status, 404);
  t.regex(((await unknown.json()) as { error: string }).error, /no answer "never-sent"/);
  t.is((await call(url, 'DELETE', messagesPath('nosuch', '42', 'x'))).status, 404);
  for (const body of [{}, { text: '' }, { text: '   ' }, { text: 5 }, ['a'], { text: 'x'.repeat(4097) }]) {
    t.is((await call(url, 'PATCH', messagesPath('telegram', '42', 'x'), body)).status, 400, JSON.stringify(body).slice(0, 40));
  }
  t.is((await call(url, 'PATCH', messagesPath('telegram', '42', 'bad id!'), { text: 'a' })).status, 400);

  // Twilio (SMS) and rest cannot change a message they sent.
  const sms = await call(url, 'PATCH', messagesPath('twilio', '+14155550000', 'x'), { text: 'a' });
  t.is(sms.status, 409);
  t.regex(((await sms.json()) as { error: string }).error, /twilio channel cannot edit/);
  t.is((await call(url, 'DELETE', messagesPath('rest', 'alice', 'x'))).status, 409);

  // An answer waiting behind the bot's answer to the same user is not sent yet: 409 with Retry-After, then editable.
  const channel = server.channels.find((c) => c.name() === 'telegram')!;
  const secret = (channel as unknown as { secretToken: string }).secretToken;
  const update = { update_id: 2, message: { message_id: 2, from: { id: 42, is_bot: false, first_name: 'A' }, chat: { id: 42, type: 'private' }, date: 1441645532, text: 'hi' } };
  t.is((await fetch(`${url}/webhooks/telegram/webhook`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-telegram-bot-api-secret-token': secret }, body: JSON.stringify(update) })).status, 200);
  await bot.waitForMessages(1);
  const [id] = await sendFirst(t, url, 'telegram', '42', [{ text: 'queued' }]);
  const pending = await call(url, 'PATCH', messagesPath('telegram', '42', id), { text: 'queued, edited' });
  t.is(pending.status, 409);
  t.is(pending.headers.get('retry-after'), '1');
  t.is((await edit(url, 'telegram', '42', id!, 'queued, edited')).status, 200);
  t.deepEqual(api.requests.filter((r) => r.path.endsWith('/sendMessage')).map((r) => (JSON.parse(r.body) as { text: string }).text), ['the bot answer', 'queued']);
});

test('a platform refusing the change: 502 naming its status, never the token in the URL; the answer stays as it was', async (t) => {
  const { url } = await host(t, (r) => {
    if (r.path.endsWith('/deleteMessage')) return { status: 400, body: { ok: false, error_code: 400, description: 'Bad Request: message can\'t be deleted for everyone' } };
    return telegramIds()(r);
  });
  const [id] = await sendFirst(t, url, 'telegram', '42', [{ text: 'old news' }]);
  await edit(url, 'telegram', '42', id!, 'old news, edited');
  const response = await call(url, 'DELETE', messagesPath('telegram', '42', id));
  t.is(response.status, 502);
  const text = await response.text();
  t.regex(text, /refused to delete the message \(HTTP 400\)/);
  t.false(text.includes('1:a'));
  // Still there: an edit works.
  t.is((await call(url, 'PATCH', messagesPath('telegram', '42', id), { text: 'still here' })).status, 200);
});

redisTest(test)('with --redis, an answer sent through one instance is edited and deleted through another', async (t) => {
  const redis = await RedisServer.start(t);
  const stores = await Promise.all([RedisStore.connect({ url: redis.url }), RedisStore.connect({ url: redis.url })]);
  t.teardown(() => Promise.all(stores.map((store) => store.close())));
  const api = await startFakePlatform(telegramIds());
  t.teardown(() => api.close());
  const a = await host(t, telegramIds(), { store: stores[0]!, api });
  const b = await host(t, telegramIds(), { store: stores[1]!, api });
  const [id] = await sendFirst(t, a.url, 'telegram', '42', [{ text: 'from A' }]);
  t.is((await edit(b.url, 'telegram', '42', id!, 'edited on B')).status, 200);
  t.is((await call(b.url, 'DELETE', messagesPath('telegram', '42', id))).status, 200);
  t.is((await call(a.url, 'DELETE', messagesPath('telegram', '42', id))).status, 410);
  t.deepEqual(api.requests.map((r) => r.path.split('/').pop()).filter((method) => method !== 'setWebhook'), ['sendMessage', 'editMessageText', 'deleteMessage']);
});

test('random requests to the API (methods, paths, bodies, content types) never get a 5xx or a stack trace', async (t) => {
  const { url, server } = await host(t, telegramIds());
  const names = server.channels.map((c) => c.name());
  const [known] = await sendFirst(t, url, 'telegram', '42', [{ text: 'a real answer to edit' }]);
  const segment = fc.oneof(fc.string({ maxLength: 300 }), fc.constantFrom(...names, '42', known!, 'never-sent', '..', '%2F', '%00'));
  const body = fc.oneof(
    fc.json(),
    fc.string(),
    fc.jsonValue().map((v) => JSON.stringify(v)),
    fc.record({ text: fc.oneof(fc.string({ maxLength: 5000 }), fc.jsonValue()) }).map((v) => JSON.stringify(v)),
    fc.array(fc.dictionary(fc.constantFrom('text', 'id', 'buttons', 'image', 'custom'), fc.jsonValue()), { maxLength: 60 }).map((v) => JSON.stringify(v)),
  );
  const request = fc.record({
    method: fc.constantFrom('POST', 'PATCH', 'DELETE', 'PUT', 'GET'),
    channel: segment,
    recipient: segment,
    id: fc.option(segment, { nil: undefined }),
    type: fc.constantFrom('application/json', 'text/plain', 'application/x-www-form-urlencoded'),
    body,
  });
  await fc.assert(
    fc.asyncProperty(request, async ({ method, channel, recipient, id, type, body: text }) => {
      const path = `${url}/api/v1/conversations/${encodeURIComponent(channel)}/${encodeURIComponent(recipient)}/messages${id === undefined ? '' : `/${encodeURIComponent(id)}`}`;
      const response = await fetch(path, { method, headers: { authorization: `Bearer ${TOKEN}`, 'content-type': type }, ...(method === 'GET' ? {} : { body: text }) });
      const answer = await response.text();
      if (response.status >= 500) throw new Error(`${method} ${path} answered ${response.status}: ${answer}`);
      if (/\n\s+at /.test(answer)) throw new Error(`${method} ${path} leaked a stack trace`);
    }),
    { numRuns: 300, seed: 16 },
  );
  t.pass();
});
