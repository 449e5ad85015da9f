import test from 'ava';
import nock from 'nock';
import { createHmac } from 'node:crypto';
import WebexTeamsInput, { actionToIncoming, parseNotification, sameId, verifySignature } from '../../channels/webexteams/index.js';
import { runChannelCases, startServer, ScriptedBot, type OutgoingCall } from '../harness.js';

const API = 'https://webexapis.com/v1';
const TOKEN = 'NzQ1YjM0ZDUtYjA0Zi00ZjYxLWE0NTctbm90LWZvci1sb2dz_PF84_1eb65fdf-9643-417f-9974-ad72cae0e10f';
const SECRET = 'c0ffee-webhook-secret-9d2e';
const CREDENTIALS = { access_token: TOKEN, webhook_secret: SECRET };

/** Webex ids are base64 of `ciscospark://<cluster>/<TYPE>/<uuid>`, without padding. */
const webexId = (type: string, uuid: string, cluster = 'us') => Buffer.from(`ciscospark://${cluster}/${type}/${uuid}`).toString('base64').replace(/=+$/, '');

const ROOM = webexId('ROOM', 'bbcdb1ad-43f1-3b58-9147-f14bb0c4d154');
const OTHER_ROOM = webexId('ROOM', '5e1a0c30-8a8d-11ee-b5c0-5b0d6a6f1c2e');
const FIXED_ROOM = webexId('ROOM', '0d8d0f40-8a8e-11ee-8f1c-3b6e2f1e9a77');
const PERSON = webexId('PEOPLE', 'f5b36187-c8dd-4727-8b2f-f9c447f29046');
const BOT = webexId('PEOPLE', '1f7de5cb-8561-4671-bc03-bc974314442d');
const WEBHOOK = webexId('WEBHOOK', 'f4e60560-6602-4fb0-a25a-949881609497');
const MESSAGE = webexId('MESSAGE', '92db3be0-43bd-11e6-8ae9-dd5b3dfc565d');
const CARD_MESSAGE = webexId('MESSAGE', '3c2f6a10-8a8f-11ee-9b7e-1f0c4b8a2d33');
const ACTION = webexId('ATTACHMENT_ACTION', 'a1b2c3d4-8a90-11ee-8c4d-7f2e5a9b1c00');

const sign = (raw: string) => ({ 'x-spark-signature': createHmac('sha1', SECRET).update(raw).digest('hex') });

/** A webhook notification as Webex posts it (developer.webex.com, Webhooks guide). */
function notification(data: Record<string, unknown>, resource = 'messages', event = 'created'): object {
  return {
    id: WEBHOOK,
    name: 'Switchboard',
    targetUrl: 'https://bot.example.com/webhooks/webexteams/webhook',
    resource,
    event,
    orgId: 'OTZhYmMyYWEtM2RjYy0xMWU1LWExNTItZmUzNDgxOWNkYzlh',
    createdBy: BOT,
    appId: 'Y2lzY29zcGFyazovL3VzL0FQUExJQ0FUSU9OL0MzMmM4MDc3NDBjNmU3ZGYxMWRhZjE2ZjIyOGRmNjI4YmJjYTQ5YmE1MmZlY2JiMmM3ZDUxNWNiNGEwY2M5MWFh',
    ownedBy: 'creator',
    status: 'active',
    created: '2023-11-22T10:01:02.000Z',
    actorId: data.personId ?? PERSON,
    data,
  };
}

/** When this file's messages were "created": `data.created` is checked against the replay window (1 h by default). */
const CREATED = new Date().toISOString();

const messageCreated = (id = MESSAGE, personId = PERSON, roomId = ROOM) =>
  notification({ id, roomId, roomType: 'direct', personId, personEmail: 'matt@example.com', created: CREATED });

const bearer = { authorization: `Bearer ${TOKEN}` };

const me = (id = BOT, api = API): OutgoingCall => ({
  method: 'GET',
  url: `${api}/people/me`,
  headers: bearer,
  reply: { body: { id, emails: ['switchboard@webex.bot'], displayName: 'Switchboard', type: 'bot' } },
});

/** `GET /messages/{id}`, answered with the message as Webex returns it. */
const getMessage = (text: string, id = MESSAGE, roomId = ROOM, api = API): OutgoingCall => ({
  method: 'GET',
  url: `${api}/messages/${id}`,
  headers: bearer,
  reply: { body: { id, roomId, roomType: 'direct', text, personId: PERSON, personEmail: 'matt@example.com', created: '2023-11-22T10:01:02.514Z' } },
});

/** The `POST /messages` an answer becomes. */
const post = (body: Record<string, unknown>, api = API): OutgoingCall => ({
  method: 'POST',
  url: `${api}/messages`,
  headers: { ...bearer, 'content-type': 'application/json' },
  body,
  reply: { body: { id: webexId('MESSAGE', '00000000-0000-4000-8000-000000000001'), ...body } },
});

const card = (text: string, actions: object[]) => ({
  contentType: 'application/vnd.microsoft.card.adaptive',
  content: {
    $schema: 'http://adaptivecards.io/schemas/adaptive-card.json',
    type: 'AdaptiveCard',
    version: '1.2',
    body: [{ type: 'TextBlock', text, wrap: true }],
    actions,
  },
});

runChannelCases(test, {
  channel: WebexTeamsInput,
  credentials: CREDENTIALS,
  cases: [
    {
      label: 'webexteams: GET / is the health route',
      method: 'GET',
      path: '/',
      status: 200,
      response: { status: 'ok' },
    },
    {
      label: 'webexteams: a message is acknowledged, fetched with GET /messages/{id}, and answered with POST /messages',
      roundTrip: 2,
      body: messageCreated(),
      sign,
      answers: [{ text: 'Hey there!' }],
      status: 200,
      response: '',
      received: [
        {
          text: 'hello, world',
          senderId: ROOM,
          messageId: MESSAGE,
          inputChannel: 'webexteams',
          metadata: { type: 'message', id: MESSAGE, roomId: ROOM, roomType: 'direct', personId: PERSON, personEmail: 'matt@example.com' },
        },
      ],
      outgoing: [me(), getMessage('  hello, world '), post({ roomId: ROOM, text: 'Hey there!' })],
    },
    {
      label: "webexteams: the bot's own message is ignored after GET /people/me, and never fetched",
      body: messageCreated(MESSAGE, BOT),
      sign,
      status: 200,
      response: '',
      received: [],
      outgoing: [me()],
    },
    {
      label: "webexteams: the bot's own id is recognised across cluster encodings (us vs urn:TEAM)",
      body: messageCreated(MESSAGE, webexId('PEOPLE', '1f7de5cb-8561-4671-bc03-bc974314442d', 'urn:TEAM:us-east-2_a')),
      sign,
      status: 200,
      received: [],
      outgoing: [me()],
    },
    {
      label: 'webexteams: a redelivered data.id is fetched and processed once',
      body: messageCreated(),
      sign,
      repeat: 3,
      answers: [{ text: 'once' }],
      status: 200,
      response: '',
      received: [{ text: 'hi', messageId: MESSAGE }],
      outgoing: [me(), getMessage('hi'), post({ roomId: ROOM, text: 'once' })],
    },
    {
      label: 'webexteams: a 500 from GET /messages is retried by the client, then the message reaches the bot',
      body: messageCreated(),
      sign,
      answers: [{ text: 'got it' }],
      status: 200,
      received: [{ text: 'are you there?' }],
      outgoing: [
        me(),
        { method: 'GET', url: `${API}/messages/${MESSAGE}`, headers: bearer, reply: { status: 500, body: { message: 'Internal Server Error', trackingId: 'ROUTER_6561D4A2-F1A1-01BB-0012-AC1A8A0E0012' } } },
        getMessage('are you there?'),
        post({ roomId: ROOM, text: 'got it' }),
      ],
    },
    {
      label: 'webexteams: another resource (memberships) is answered 200 and ignored',
      body: notification({ id: 'Y2lzY29zcGFyazovL3VzL01FTUJFUlNISVAvMGQwYzkxYjYtY2U2MC00NzI1LWI2ZDAtMzQ1NWQ1ZDExZWYzOmNkZTFkZDQwLTJmMGQtMTFlNS1iYTljLTdiNjU1NmQyMjA3Yg', roomId: ROOM, personId: PERSON, personEmail: 'matt@example.com', isModerator: false }, 'memberships'),
      sign,
      status: 200,
      response: '',
      received: [],
      outgoing: [],
    },
    {
      label: 'webexteams: a messages event other than created (deleted) is answered 200 and ignored',
      body: notification({ id: MESSAGE, roomId: ROOM, personId: PERSON }, 'messages', 'deleted'),
      sign,
      status: 200,
      received: [],
      outgoing: [],
    },
    {
      label: 'webexteams: a card submission (attachmentActions) is fetched and its payload is the text',
      body: notification({ id: ACTION, type: 'submit', messageId: CARD_MESSAGE, personId: PERSON, roomId: ROOM, created: CREATED }, 'attachmentActions'),
      sign,
      answers: [{ text: 'Great!' }],
      status: 200,
      response: '',
      received: [
        {
          text: '/mood_great',
          senderId: ROOM,
          messageId: ACTION,
          metadata: { type: 'attachmentAction', id: ACTION, messageId: CARD_MESSAGE, personId: PERSON, inputs: { payload: '/mood_great' } },
        },
      ],
      outgoing: [
        {
          method: 'GET',
          url: `${API}/attachment/actions/${ACTION}`,
          headers: bearer,
          reply: { body: { id: ACTION, type: 'submit', messageId: CARD_MESSAGE, inputs: { payload: '/mood_great' }, personId: PERSON, roomId: ROOM, created: '2023-11-22T10:02:00.000Z' } },
        },
        post({ roomId: ROOM, text: 'Great!' }),
      ],
    },

    // --- verification and malformed input
    {
      label: 'webexteams: a wrong X-Spark-Signature is 401, nothing is fetched and the bot sees nothing',
      body: messageCreated(),
      sign: (raw) => ({ 'x-spark-signature': createHmac('sha1', 'another-secret').update(raw).digest('hex') }),
      status: 401,
      response: { error: 'request could not be verified' },
      received: [],
      outgoing: [],
    },
    {
      label: 'webexteams: a missing X-Spark-Signature is 401',
      body: messageCreated(),
      status: 401,
      received: [],
      outgoing: [],
    },
    {
      label: 'webexteams: a signature over a different body (re-serialised JSON) is 401',
      body: JSON.stringify(messageCreated(), null, 2),
      headers: { 'content-type': 'application/json', ...sign(JSON.stringify(messageCreated())) },
      status: 401,
      received: [],
      outgoing: [],
    },
    {
      label: 'webexteams: malformed JSON, signed, is 400',
      body: '{"resource": "messages", "data": {',
      headers: { 'content-type': 'application/json' },
      sign,
      status: 400,
      received: [],
      outgoing: [],
    },
    {
      label: 'webexteams: a JSON object that is not a notification is 400',
      body: { hello: 'world' },
      sign,
      status: 400,
      response: { error: 'not a Webex webhook notification: expected "resource" and a "data" object' },
      received: [],
      outgoing: [],
    },
    {
      label: 'webexteams: a message notification without data.id is 400',
      body: notification({ roomId: ROOM, personId: PERSON }),
      sign,
      status: 400,
      response: { error: 'a messages notification needs "data.id" and "data.roomId"' },
      outgoing: [],
    },

    // --- each answer kind
    {
      label: 'webexteams answer: text split at blank lines, one POST each',
      body: messageCreated(),
      sign,
      answers: [{ text: 'First part.\n\nSecond part.' }],
      status: 200,
      outgoing: [me(), getMessage('hi'), post({ roomId: ROOM, text: 'First part.' }), post({ roomId: ROOM, text: 'Second part.' })],
    },
    {
      label: 'webexteams answer: an image is {roomId, files: [url]}',
      body: messageCreated(),
      sign,
      answers: [{ text: 'Here is something to cheer you up:', image: 'https://i.imgur.com/nGF1K8f.jpg' }],
      status: 200,
      outgoing: [
        me(),
        getMessage('sad'),
        post({ roomId: ROOM, text: 'Here is something to cheer you up:' }),
        post({ roomId: ROOM, files: ['https://i.imgur.com/nGF1K8f.jpg'] }),
      ],
    },
    {
      label: 'webexteams answer: buttons are an Adaptive Card (submit + link), with the numbered list as text',
      body: messageCreated(),
      sign,
      answers: [{ text: 'How are you?', buttons: [{ title: 'great', payload: '/mood_great' }, { title: 'sad', payload: '/mood_sad' }, { type: 'web_url', title: 'Help', url: 'https://example.com/help' }] }],
      status: 200,
      outgoing: [
        me(),
        getMessage('hi'),
        post({
          roomId: ROOM,
          text: 'How are you?\n1: great (/mood_great)\n2: sad (/mood_sad)\n3: Help (https://example.com/help)',
          attachments: [
            card('How are you?', [
              { type: 'Action.Submit', title: 'great', data: { payload: '/mood_great' } },
              { type: 'Action.Submit', title: 'sad', data: { payload: '/mood_sad' } },
              { type: 'Action.OpenUrl', title: 'Help', url: 'https://example.com/help' },
            ]),
          ],
        }),
      ],
    },
    {
      label: 'webexteams answer: quick replies are shown as card buttons',
      body: messageCreated(),
      sign,
      answers: [{ text: 'Size?', quick_replies: [{ title: 'S', payload: '/size{"s":"S"}' }, { title: 'L' }] }],
      status: 200,
      outgoing: [
        me(),
        getMessage('order'),
        post({
          roomId: ROOM,
          text: 'Size?\n1: S (/size{"s":"S"})\n2: L',
          attachments: [card('Size?', [{ type: 'Action.Submit', title: 'S', data: { payload: '/size{"s":"S"}' } }, { type: 'Action.Submit', title: 'L', data: { payload: 'L' } }])],
        }),
      ],
    },
    {
      label: 'webexteams answer: elements are one card each, "title : subtitle" with their buttons (plain text without)',
      body: messageCreated(),
      sign,
      answers: [{ elements: [{ title: 'Hat', subtitle: '12 €', buttons: [{ title: 'Buy', payload: '/buy{"item":"hat"}' }] }, { title: 'Scarf' }] }],
      status: 200,
      outgoing: [
        me(),
        getMessage('shop'),
        post({ roomId: ROOM, text: 'Hat : 12 €\n1: Buy (/buy{"item":"hat"})', attachments: [card('Hat : 12 €', [{ type: 'Action.Submit', title: 'Buy', data: { payload: '/buy{"item":"hat"}' } }])] }),
        post({ roomId: ROOM, text: 'Scarf' }),
      ],
    },
    {
      label: 'webexteams answer: an attachment falls back to text',
      body: messageCreated(),
      sign,
      answers: [{ attachment: 'https://example.com/report.pdf' }],
      status: 200,
      outgoing: [me(), getMessage('report'), post({ roomId: ROOM, text: 'Attachment: https://example.com/report.pdf' })],
    },
    {
      label: 'webexteams answer: custom JSON is the POST /messages body, roomId defaulting to the sender',
      body: messageCreated(),
      sign,
      answers: [{ custom: { markdown: '**Bold** move' } }, { custom: { toPersonEmail: 'alice@example.com', text: 'FYI' } }],
      status: 200,
      outgoing: [me(), getMessage('hi'), post({ roomId: ROOM, markdown: '**Bold** move' }), post({ toPersonEmail: 'alice@example.com', text: 'FYI' })],
    },
    {
      label: 'webexteams: a failing POST /messages (400) is not retried, and nothing else is sent for that reply',
      body: messageCreated(),
      sign,
      answers: [{ text: 'one' }, { text: 'two' }],
      status: 200,
      outgoing: [
        me(),
        getMessage('hi'),
        { ...post({ roomId: ROOM, text: 'one' }), reply: { status: 400, body: { message: 'Unable to post message to room', trackingId: 'x' } } },
      ],
    },
  ],
});

runChannelCases(test, {
  channel: WebexTeamsInput,
  credentials: { ...CREDENTIALS, room: FIXED_ROOM, api_url: 'https://webex-proxy.example.com/v1/' },
  cases: [
    {
      label: 'webexteams room: answers go to the configured room, through api_url; custom JSON keeps the sender',
      body: messageCreated(),
      sign,
      answers: [{ text: 'to the room', image: 'https://example.com/a.png' }, { custom: { markdown: '_sender_' } }],
      status: 200,
      received: [{ text: 'hi', senderId: ROOM }],
      outgoing: [
        me(BOT, 'https://webex-proxy.example.com/v1'),
        getMessage('hi', MESSAGE, ROOM, 'https://webex-proxy.example.com/v1'),
        post({ roomId: FIXED_ROOM, text: 'to the room' }, 'https://webex-proxy.example.com/v1'),
        post({ roomId: FIXED_ROOM, files: ['https://example.com/a.png'] }, 'https://webex-proxy.example.com/v1'),
        post({ roomId: ROOM, markdown: '_sender_' }, 'https://webex-proxy.example.com/v1'),
      ],
    },
  ],
});

runChannelCases(test, {
  channel: WebexTeamsInput,
  credentials: { access_token: TOKEN, allow_unverified: true },
  cases: [
    {
      label: 'webexteams allow_unverified: an unsigned notification is processed',
      body: messageCreated(),
      answers: [{ text: 'ok' }],
      status: 200,
      received: [{ text: 'hi' }],
      outgoing: [me(), getMessage('hi'), post({ roomId: ROOM, text: 'ok' })],
    },
  ],
});

// --- replays: `data.created` is signed with the body; the envelope's `created` (2023 here) is the webhook's own date.

const MINUTE = 60_000;
/** A message notification whose message was created at `at`. */
const createdAt = (at: Date | string) =>
  notification({ id: MESSAGE, roomId: ROOM, roomType: 'direct', personId: PERSON, personEmail: 'matt@example.com', created: typeof at === 'string' ? at : at.toISOString() });
/** Never fetched, never reaches the bot: answered 200 like any ignored notification. */
const staleWebex = (label: string, body: object) => ({ label: `webexteams replay: ${label} → 200, nothing fetched, the bot never called`, body, sign, status: 200, response: '', received: [], outgoing: [] });
const freshWebex = (label: string, body: object) => ({
  label: `webexteams replay: ${label} → processed`,
  body,
  sign,
  answers: [{ text: 'ok' }],
  status: 200,
  received: [{ text: 'hi' }],
  outgoing: [me(), getMessage('hi'), post({ roomId: ROOM, text: 'ok' })],
});

runChannelCases(test, {
  channel: WebexTeamsInput,
  credentials: CREDENTIALS,
  cases: [
    staleWebex('a correctly signed notification of a message created in 2023', createdAt('2023-11-22T10:01:02.514Z')),
    staleWebex('data.created 61 minutes ago', createdAt(new Date(Date.now() - 61 * MINUTE))),
    freshWebex('data.created 50 minutes ago', createdAt(new Date(Date.now() - 50 * MINUTE))),
    staleWebex('data.created 10 minutes in the future', createdAt(new Date(Date.now() + 10 * MINUTE))),
    freshWebex('data.created 2 minutes in the future (clock skew)', createdAt(new Date(Date.now() + 2 * MINUTE))),
    staleWebex('a notification without data.created', notification({ id: MESSAGE, roomId: ROOM, roomType: 'direct', personId: PERSON })),
    staleWebex('data.created without a time zone', createdAt('2030-01-01T10:00:00')),
    staleWebex(
      'a card submission created in 2023',
      notification({ id: ACTION, type: 'submit', messageId: CARD_MESSAGE, personId: PERSON, roomId: ROOM, created: '2023-11-22T10:02:00.000Z' }, 'attachmentActions'),
    ),
  ],
});

runChannelCases(test, {
  channel: WebexTeamsInput,
  credentials: { ...CREDENTIALS, replay_window: 0 },
  cases: [freshWebex('replay_window: 0 turns the check off: a message created in 2023', createdAt('2023-11-22T10:01:02.514Z'))],
});

test.serial('webexteams replay: replay_window defaults to 3600 and is read from the section', (t) => {
  t.is(WebexTeamsInput.fromCredentials(CREDENTIALS).credentials.replay_window, 3600);
  t.is(WebexTeamsInput.fromCredentials({ ...CREDENTIALS, replay_window: 120 }).credentials.replay_window, 120);
});

// --- beyond one request

test.serial('webexteams: messages of one room reach the bot in arrival order even when the first fetch is slower', async (t) => {
  const bot = new ScriptedBot([]);
  const { request } = await startServer(t, [WebexTeamsInput.fromCredentials(CREDENTIALS)], { bot });
  const second = webexId('MESSAGE', '92db3be0-43bd-11e6-8ae9-dd5b3dfc5600');
  const api = nock(API);
  api.get('/people/me').reply(200, { id: BOT });
  api.get(`/messages/${MESSAGE}`).delay(300).reply(200, { id: MESSAGE, roomId: ROOM, text: 'first' });
  api.get(`/messages/${second}`).reply(200, { id: second, roomId: ROOM, text: 'second' });
  for (const body of [messageCreated(MESSAGE), messageCreated(second)]) {
    const raw = JSON.stringify(body);
    const response = await request('/webhooks/webexteams/webhook', { method: 'POST', headers: { 'content-type': 'application/json', ...sign(raw) }, body: raw });
    t.is(response.status, 200);
  }
  await bot.waitFor(2);
  t.deepEqual(bot.received.map((m) => m.text), ['first', 'second']);
  t.true(api.isDone());
  nock.cleanAll();
});

test.serial('webexteams: GET /people/me is made once per channel, then cached', async (t) => {
  const bot = new ScriptedBot([]);
  const { request } = await startServer(t, [WebexTeamsInput.fromCredentials(CREDENTIALS)], { bot });
  const second = webexId('MESSAGE', '92db3be0-43bd-11e6-8ae9-dd5b3dfc5601');
  const api = nock(API);
  api.get('/people/me').once().reply(200, { id: BOT });
  api.get(`/messages/${MESSAGE}`).reply(200, { id: MESSAGE, roomId: ROOM, text: 'a' });
  api.get(`/messages/${second}`).reply(200, { id: second, roomId: OTHER_ROOM, text: 'b' });
  for (const body of [messageCreated(MESSAGE), messageCreated(second, PERSON, OTHER_ROOM)]) {
    const raw = JSON.stringify(body);
    await request('/webhooks/webexteams/webhook', { method: 'POST', headers: { 'content-type': 'application/json', ...sign(raw) }, body: raw });
  }
  await bot.waitFor(2);
  t.deepEqual(bot.received.map((m) => [m.senderId, m.text]).sort(), [[OTHER_ROOM, 'b'], [ROOM, 'a']]);
  t.true(api.isDone());
  nock.cleanAll();
});

test.serial('webexteams: a message whose fetch failed is fetched again when Webex redelivers it', async (t) => {
  const bot = new ScriptedBot([]);
  const { request, logs } = await startServer(t, [WebexTeamsInput.fromCredentials(CREDENTIALS)], { bot });
  const api = nock(API);
  api.get('/people/me').reply(200, { id: BOT });
  api.get(`/messages/${MESSAGE}`).reply(404, { message: 'The requested resource could not be found.', trackingId: 'x' });
  const raw = JSON.stringify(messageCreated());
  const init = { method: 'POST', headers: { 'content-type': 'application/json', ...sign(raw) }, body: raw };
  await request('/webhooks/webexteams/webhook', init);
  const deadline = Date.now() + 2_000;
  while (!api.isDone() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
  await new Promise((resolve) => setTimeout(resolve, 50));
  t.is(bot.received.length, 0);
  t.regex(logs.text, /webex notification could not be processed/);
  t.false(logs.text.includes(TOKEN), 'the token is never logged');

  api.get(`/messages/${MESSAGE}`).reply(200, { id: MESSAGE, roomId: ROOM, text: 'again' });
  await request('/webhooks/webexteams/webhook', init);
  await bot.waitFor(1);
  t.is(bot.received[0]?.text, 'again');
  nock.cleanAll();
});

test('webexteams: a section without webhook_secret is refused, saying how to opt out', (t) => {
  const error = t.throws(() => WebexTeamsInput.fromCredentials({ access_token: TOKEN }));
  t.regex(error?.message ?? '', /^missing "webhook_secret", needed to verify .* allow_unverified: true/);
});

test('webexteams: access_token is required, api_url defaults to webexapis.com', (t) => {
  t.is(t.throws(() => WebexTeamsInput.fromCredentials({ webhook_secret: SECRET }))?.message, 'missing "access_token"');
  const channel = WebexTeamsInput.fromCredentials(CREDENTIALS);
  t.is(channel.credentials.api_url, 'https://webexapis.com/v1');
  t.false(channel.unverified);
});

test('webexteams verifySignature: hex HMAC-SHA1 of the raw body; reasons, never throws', (t) => {
  const raw = '{"resource":"messages"}';
  const good = createHmac('sha1', SECRET).update(raw).digest('hex');
  t.true(verifySignature(raw, { 'x-spark-signature': good }, SECRET));
  t.true(verifySignature(raw, { 'x-spark-signature': good.toUpperCase() }, SECRET));
  t.is(verifySignature(raw, {}, SECRET), 'missing X-Spark-Signature header');
  t.is(verifySignature(raw, { 'x-spark-signature': 'zz' }, SECRET), 'X-Spark-Signature does not match the body');
  t.is(verifySignature(raw + ' ', { 'x-spark-signature': good }, SECRET), 'X-Spark-Signature does not match the body');
  t.is(verifySignature(raw, { 'x-spark-signature': good }, undefined), 'no webhook_secret configured');
});

test('webexteams parseNotification and sameId', (t) => {
  t.like(parseNotification(messageCreated() as Record<string, unknown>), { kind: 'fetch', notification: { resource: 'messages', id: MESSAGE, roomId: ROOM, personId: PERSON } });
  t.deepEqual(parseNotification({ resource: 'rooms', event: 'created', data: { id: ROOM } }), { kind: 'ignored', reason: 'resource "rooms"' });
  t.is(parseNotification({ resource: 'messages', data: [] }).kind, 'invalid');
  t.true(sameId(BOT, webexId('PEOPLE', '1F7DE5CB-8561-4671-BC03-BC974314442D', 'urn:TEAM:eu-central-1_k')));
  t.false(sameId(BOT, PERSON));
  t.false(sameId(undefined, BOT));
});

test('webexteams actionToIncoming: inputs without payload arrive as JSON text', (t) => {
  const parsed = parseNotification(notification({ id: ACTION, roomId: ROOM, personId: PERSON, messageId: CARD_MESSAGE }, 'attachmentActions') as Record<string, unknown>);
  if (parsed.kind !== 'fetch') return t.fail();
  const incoming = actionToIncoming(parsed.notification, { id: ACTION, inputs: { name: 'Ada', size: 'L' } });
  t.is(incoming.text, '{"name":"Ada","size":"L"}');
  t.deepEqual(incoming.metadata.inputs, { name: 'Ada', size: 'L' });
});
