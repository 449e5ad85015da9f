import test from 'ava';
import nock from 'nock';
import RocketChatInput, { parseRequest, verifyToken } from '../../channels/rocketchat/index.js';
import { runChannelCases, startServer, ScriptedBot, type OutgoingCall } from '../harness.js';

const SERVER = 'https://chat.example.com';
const HOOK_TOKEN = 'kNmBf5YwX3ea2tMoZ/CvRLqfHTpDk9wGyEhJs8uQ4cA7nVxz';
const PASSWORD = 'correct-horse-battery-staple';
const AUTH_TOKEN = '9HqLlyZOugoStsXCUfD_0YdwnNnunAJF8V47U3QHXSq';
const USER_ID = 'aobEdbYhXfu5hkeqG';
const CREDENTIALS = { user: 'switchboard', password: PASSWORD, server_url: SERVER, webhook_token: HOOK_TOKEN };

const ROOM = 'GENERAL';
const DM_ROOM = 'aobEdbYhXfu5hkeqGrocket.cat9wkbGSTMHFDh4nf';
const LIVECHAT_ROOM = 'hFK3xNbQyXgTm5XZP';
const MESSAGE = 'Hk8E7RdeYXqTaXnqT';

/** An outgoing integration's request, as Rocket.Chat posts it (docs.rocket.chat, Outgoing webhooks). */
function integration(fields: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    token: HOOK_TOKEN,
    bot: false,
    channel_id: ROOM,
    channel_name: 'general',
    message_id: MESSAGE,
    timestamp: '2023-11-22T10:01:02.514Z',
    user_id: 'rocket.cat9wkbGSTMHFDh4nf',
    user_name: 'lena',
    text: 'hello there',
    siteUrl: SERVER,
    ...fields,
  };
}

/** An Omnichannel webhook "Message" delivery (a visitor wrote in a livechat room). */
function omnichannel(fields: Record<string, unknown> = {}, messages?: unknown[]): Record<string, unknown> {
  return {
    _id: LIVECHAT_ROOM,
    label: 'Visitor 42',
    createdAt: '2023-11-22T10:00:00.000Z',
    lastMessageAt: '2023-11-22T10:01:02.514Z',
    tags: [],
    customFields: {},
    visitor: { _id: 'qWgBxNRgpXPfHwA5E', token: 'visitor-token-e0a3c8', name: 'Visitor 42', username: 'guest-42', email: null, phone: null, department: null },
    agent: { _id: USER_ID, username: 'switchboard', name: 'Switchboard', email: 'bot@example.com' },
    type: 'Message',
    messages: messages ?? [{ u: { _id: 'qWgBxNRgpXPfHwA5E', username: 'guest-42', name: 'Visitor 42' }, msg: 'I need help', ts: '2023-11-22T10:01:02.514Z', _id: 'ZXy2rLkPqTa9bN3sW' }],
    ...fields,
  };
}

const login = (status = 200): OutgoingCall => ({
  method: 'POST',
  url: `${SERVER}/api/v1/login`,
  headers: { 'content-type': 'application/json' },
  body: { user: 'switchboard', password: PASSWORD },
  reply: status === 200
    ? { body: { status: 'success', data: { authToken: AUTH_TOKEN, userId: USER_ID, me: { _id: USER_ID, username: 'switchboard' } } } }
    : { status, body: { status: 'error', error: 'Unauthorized', message: 'Unauthorized' } },
});

const auth = { 'x-auth-token': AUTH_TOKEN, 'x-user-id': USER_ID };

/** The `chat.postMessage` an answer becomes. */
const post = (body: Record<string, unknown>, api = SERVER): OutgoingCall => ({
  method: 'POST',
  url: `${api}/api/v1/chat.postMessage`,
  headers: { ...auth, 'content-type': 'application/json' },
  body,
  reply: { body: { ts: 1700000000000, channel: 'general', message: { _id: 'fBXKZtcHSSdB2Yjws', rid: body.roomId, msg: body.text ?? '' }, success: true } },
});

const button = (text: string, msg: string) => ({ type: 'button', text, msg, msg_in_chat_window: true });

runChannelCases(test, {
  channel: RocketChatInput,
  credentials: CREDENTIALS,
  cases: [
    { label: 'rocketchat: GET / is the health route', method: 'GET', path: '/', status: 200, response: { status: 'ok' } },
    {
      label: 'rocketchat: an integration message is answered 200 empty; login, then chat.postMessage into the room',
      roundTrip: 1,
      body: integration(),
      answers: [{ text: 'Hey there!' }],
      status: 200,
      response: '',
      received: [
        {
          text: 'hello there',
          senderId: ROOM,
          messageId: MESSAGE,
          inputChannel: 'rocketchat',
          metadata: { type: 'integration', channel_id: ROOM, channel_name: 'general', user_name: 'lena', message_id: MESSAGE },
        },
      ],
      outgoing: [login(), post({ roomId: ROOM, text: 'Hey there!' })],
    },
    {
      label: 'rocketchat: a direct message: the room is the sender',
      body: integration({ channel_id: DM_ROOM, channel_name: undefined, text: 'hi bot' }),
      status: 200,
      received: [{ text: 'hi bot', senderId: DM_ROOM }],
      outgoing: [login(), post({ roomId: DM_ROOM, text: 'ok' })],
    },
    {
      label: "rocketchat: the bot's own message (user_name = user) is ignored",
      body: integration({ user_name: 'switchboard', user_id: USER_ID }),
      status: 200,
      response: '',
      received: [],
      outgoing: [],
    },
    {
      label: 'rocketchat: a message from a bot (bot: {i}) is ignored',
      body: integration({ bot: { i: 'wQ6Sq3S2pyw8HnMBH' }, user_name: 'rocket.cat' }),
      status: 200,
      received: [],
      outgoing: [],
    },
    {
      label: 'rocketchat: a message without text (a file) is answered 200 and ignored',
      body: integration({ text: '' }),
      status: 200,
      received: [],
      outgoing: [],
    },
    {
      label: 'rocketchat: a repeated message_id is processed once',
      body: integration(),
      repeat: 2,
      answers: [{ text: 'once' }],
      status: 200,
      received: [{ text: 'hello there', messageId: MESSAGE }],
      outgoing: [login(), post({ roomId: ROOM, text: 'once' })],
    },
    {
      label: 'rocketchat: a button click arrives as the user posting its payload (msg_in_chat_window)',
      body: integration({ text: '/mood_great', message_id: 'pR7cF2xQ9wLm4NvTz' }),
      answers: [{ text: 'Great!' }],
      status: 200,
      received: [{ text: '/mood_great', senderId: ROOM, messageId: 'pR7cF2xQ9wLm4NvTz' }],
      outgoing: [login(), post({ roomId: ROOM, text: 'Great!' })],
    },
    {
      label: 'rocketchat Omnichannel: a visitor message, verified by X-RocketChat-Livechat-Token; the livechat room is the sender',
      body: omnichannel(),
      headers: { 'x-rocketchat-livechat-token': HOOK_TOKEN },
      answers: [{ text: 'How can I help?' }],
      status: 200,
      response: '',
      received: [{ text: 'I need help', senderId: LIVECHAT_ROOM, messageId: 'ZXy2rLkPqTa9bN3sW', metadata: { type: 'omnichannel', username: 'guest-42' } }],
      outgoing: [login(), post({ roomId: LIVECHAT_ROOM, text: 'How can I help?' })],
    },
    {
      label: "rocketchat Omnichannel: the agent's (bot's) own messages are ignored",
      body: omnichannel({}, [{ u: { _id: USER_ID, username: 'switchboard' }, msg: 'How can I help?', ts: '2023-11-22T10:01:03.000Z', _id: 'aB3dE5gH7jK9mN1pQ', agentId: USER_ID }]),
      headers: { 'x-rocketchat-livechat-token': HOOK_TOKEN },
      status: 200,
      received: [],
      outgoing: [],
    },
    {
      label: 'rocketchat Omnichannel: a closed session (LivechatSession, the whole transcript) is ignored',
      body: omnichannel({ type: 'LivechatSession', closedAt: '2023-11-22T10:30:00.000Z' }),
      headers: { 'x-rocketchat-livechat-token': HOOK_TOKEN },
      status: 200,
      received: [],
      outgoing: [],
    },

    // --- verification and malformed input
    {
      label: 'rocketchat: a wrong token is 401, and the bot sees nothing',
      body: integration({ token: 'not-the-integration-token' }),
      status: 401,
      response: { error: 'request could not be verified' },
      received: [],
      outgoing: [],
    },
    {
      label: 'rocketchat: a missing token is 401',
      body: integration({ token: undefined }),
      status: 401,
      received: [],
      outgoing: [],
    },
    {
      label: 'rocketchat: a wrong X-RocketChat-Livechat-Token is 401 (the body token does not rescue it)',
      body: integration(),
      headers: { 'x-rocketchat-livechat-token': 'wrong' },
      status: 401,
      received: [],
      outgoing: [],
    },
    {
      label: "rocketchat Omnichannel: without the header it is 401 (the visitor's token is not the secret)",
      body: omnichannel(),
      status: 401,
      received: [],
      outgoing: [],
    },
    {
      label: 'rocketchat: malformed JSON is 400',
      body: '{"token": "x", "text": ',
      headers: { 'content-type': 'application/json' },
      status: 400,
      received: [],
      outgoing: [],
    },
    {
      label: 'rocketchat: a verified body without channel_id is 400',
      body: integration({ channel_id: undefined }),
      status: 400,
      response: { error: 'not a Rocket.Chat outgoing integration: expected "channel_id"' },
      received: [],
      outgoing: [],
    },

    // --- each answer kind
    {
      label: 'rocketchat answer: text split at blank lines, one post each, one login',
      body: integration(),
      answers: [{ text: 'First part.\n\nSecond part.' }],
      status: 200,
      outgoing: [login(), post({ roomId: ROOM, text: 'First part.' }), post({ roomId: ROOM, text: 'Second part.' })],
    },
    {
      label: 'rocketchat answer: an image is an image attachment, not collapsed',
      body: integration(),
      answers: [{ text: 'Here is something to cheer you up:', image: 'https://i.imgur.com/nGF1K8f.jpg' }],
      status: 200,
      outgoing: [
        login(),
        post({ roomId: ROOM, text: 'Here is something to cheer you up:' }),
        post({ roomId: ROOM, attachments: [{ image_url: 'https://i.imgur.com/nGF1K8f.jpg', collapsed: false }] }),
      ],
    },
    {
      label: 'rocketchat answer: buttons are attachment actions posting the payload in the chat window; a link button opens it',
      body: integration(),
      answers: [{ text: 'How are you?', buttons: [{ title: 'great', payload: '/mood_great' }, { title: 'sad', payload: '/mood_sad' }, { title: 'Help', url: 'https://example.com/help' }] }],
      status: 200,
      outgoing: [
        login(),
        post({
          roomId: ROOM,
          text: 'How are you?',
          attachments: [{ actions: [button('great', '/mood_great'), button('sad', '/mood_sad'), { type: 'button', text: 'Help', url: 'https://example.com/help' }] }],
        }),
      ],
    },
    {
      label: 'rocketchat answer: quick replies are buttons too (a missing payload sends the title)',
      body: integration(),
      answers: [{ text: 'Size?', quick_replies: [{ title: 'S', payload: '/size{"s":"S"}' }, { title: 'L' }] }],
      status: 200,
      outgoing: [login(), post({ roomId: ROOM, text: 'Size?', attachments: [{ actions: [button('S', '/size{"s":"S"}'), button('L', 'L')] }] })],
    },
    {
      label: 'rocketchat answer: elements are attachments (title, text, image_url, actions), in one message',
      body: integration(),
      answers: [{ elements: [{ title: 'Hat', subtitle: '12 €', image_url: 'https://example.com/hat.png', buttons: [{ title: 'Buy', payload: '/buy{"item":"hat"}' }] }, { title: 'Scarf' }] }],
      status: 200,
      outgoing: [
        login(),
        post({
          roomId: ROOM,
          attachments: [
            { title: 'Hat', text: '12 €', image_url: 'https://example.com/hat.png', actions: [button('Buy', '/buy{"item":"hat"}')] },
            { title: 'Scarf' },
          ],
        }),
      ],
    },
    {
      label: 'rocketchat answer: an attachment object is sent as one; a string attachment falls back to text',
      body: integration(),
      answers: [{ attachment: { title: 'Report', title_link: 'https://example.com/report.pdf', text: 'Q3' } }, { attachment: 'https://example.com/x.pdf' }],
      status: 200,
      outgoing: [
        login(),
        post({ roomId: ROOM, attachments: [{ title: 'Report', title_link: 'https://example.com/report.pdf', text: 'Q3' }] }),
        post({ roomId: ROOM, text: 'Attachment: https://example.com/x.pdf' }),
      ],
    },
    {
      label: 'rocketchat answer: custom JSON is the chat.postMessage body (roomId defaults; a channel is kept)',
      body: integration(),
      answers: [{ custom: { text: 'with emoji', emoji: ':robot:' } }, { custom: { channel: '#support', text: 'FYI', alias: 'Bot' } }],
      status: 200,
      outgoing: [login(), post({ roomId: ROOM, text: 'with emoji', emoji: ':robot:' }), post({ channel: '#support', text: 'FYI', alias: 'Bot' })],
    },

    // --- login
    {
      label: 'rocketchat: a 401 from chat.postMessage logs in again and the message is sent once more',
      body: integration(),
      answers: [{ text: 'again' }],
      status: 200,
      outgoing: [
        login(),
        { ...post({ roomId: ROOM, text: 'again' }), reply: { status: 401, body: { status: 'error', message: 'You must be logged in to do this.' } } },
        login(),
        post({ roomId: ROOM, text: 'again' }),
      ],
    },
    {
      label: 'rocketchat: a second 401 right after logging in again is given up (no loop)',
      body: integration(),
      answers: [{ text: 'denied' }],
      status: 200,
      outgoing: [
        login(),
        { ...post({ roomId: ROOM, text: 'denied' }), reply: { status: 401, body: { status: 'error', message: 'You must be logged in to do this.' } } },
        login(),
        { ...post({ roomId: ROOM, text: 'denied' }), reply: { status: 401, body: { status: 'error', message: 'You must be logged in to do this.' } } },
      ],
    },
    {
      label: 'rocketchat: a failed login (401) sends nothing and is not retried',
      body: integration(),
      answers: [{ text: 'never' }],
      status: 200,
      outgoing: [login(401)],
    },
  ],
});

runChannelCases(test, {
  channel: RocketChatInput,
  credentials: { ...CREDENTIALS, api_url: 'https://rc-proxy.example.com/' },
  cases: [
    {
      label: 'rocketchat api_url: replaces server_url for login and posts',
      body: integration(),
      status: 200,
      outgoing: [{ ...login(), url: 'https://rc-proxy.example.com/api/v1/login' }, post({ roomId: ROOM, text: 'ok' }, 'https://rc-proxy.example.com')],
    },
  ],
});

runChannelCases(test, {
  channel: RocketChatInput,
  credentials: { user: 'switchboard', password: PASSWORD, server_url: SERVER, allow_unverified: true },
  cases: [
    {
      label: 'rocketchat allow_unverified: a message without token is processed',
      body: integration({ token: undefined }),
      status: 200,
      received: [{ text: 'hello there' }],
      outgoing: [login(), post({ roomId: ROOM, text: 'ok' })],
    },
  ],
});

// --- beyond one request

test.serial('rocketchat: the session token obtained at login is masked when Rocket.Chat echoes it in a failed answer', async (t) => {
  const bot = new ScriptedBot([{ text: 'hi' }]);
  const { request, logs } = await startServer(t, [RocketChatInput.fromCredentials(CREDENTIALS)], { bot });
  const api = nock(SERVER);
  api.post('/api/v1/login').once().reply(200, { status: 'success', data: { authToken: AUTH_TOKEN, userId: USER_ID } });
  // A failed call whose answer repeats the token (a proxy's error page, a verbose server): the log keeps the answer.
  api.post('/api/v1/chat.postMessage').reply(400, { success: false, error: `room not found for token ${AUTH_TOKEN}` });
  const response = await request('/webhooks/rocketchat/webhook', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(integration()) });
  t.is(response.status, 200);
  const deadline = Date.now() + 2_000;
  while (!logs.text.includes('sending an answer failed') && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
  t.regex(logs.text, /room not found for token \[redacted\]/);
  t.false(logs.text.includes(AUTH_TOKEN), 'the session token is never logged');
  nock.cleanAll();
});

test.serial('rocketchat: one login, cached across two messages; the password and tokens are never logged', async (t) => {
  const bot = new ScriptedBot([{ text: 'hi' }]);
  const { request, logs } = await startServer(t, [RocketChatInput.fromCredentials(CREDENTIALS)], { bot });
  const api = nock(SERVER);
  api.post('/api/v1/login', { user: 'switchboard', password: PASSWORD }).once().reply(200, { status: 'success', data: { authToken: AUTH_TOKEN, userId: USER_ID } });
  api.post('/api/v1/chat.postMessage').times(2).matchHeader('x-auth-token', AUTH_TOKEN).matchHeader('x-user-id', USER_ID).reply(200, { success: true });
  for (const id of [MESSAGE, 'Jq3Lm8Nw2Rt6Yv9Xb']) {
    const response = await request('/webhooks/rocketchat/webhook', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(integration({ message_id: id })) });
    t.is(response.status, 200);
  }
  await bot.waitFor(2);
  const deadline = Date.now() + 2_000;
  while (!api.isDone() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
  t.true(api.isDone(), api.pendingMocks().join(', '));
  t.false([PASSWORD, AUTH_TOKEN, HOOK_TOKEN].some((s) => logs.text.includes(s)));
  nock.cleanAll();
});

test('rocketchat credentials: user, password, server_url; webhook_token unless allow_unverified', (t) => {
  t.is(t.throws(() => RocketChatInput.fromCredentials({ password: PASSWORD, server_url: SERVER, webhook_token: HOOK_TOKEN }))?.message, 'missing "user"');
  t.is(t.throws(() => RocketChatInput.fromCredentials({ user: 'switchboard', server_url: SERVER, webhook_token: HOOK_TOKEN }))?.message, 'missing "password"');
  t.regex(t.throws(() => RocketChatInput.fromCredentials({ user: 'switchboard', password: PASSWORD, server_url: SERVER }))?.message ?? '', /^missing "webhook_token", needed to verify .* allow_unverified: true/);
  t.false(RocketChatInput.fromCredentials(CREDENTIALS).unverified);
});

test('rocketchat verifyToken and parseRequest', (t) => {
  t.true(verifyToken({ token: HOOK_TOKEN }, {}, HOOK_TOKEN));
  t.true(verifyToken({}, { 'x-rocketchat-livechat-token': HOOK_TOKEN }, HOOK_TOKEN));
  t.is(verifyToken({}, {}, HOOK_TOKEN), 'missing "token" field (or X-RocketChat-Livechat-Token header)');
  t.is(verifyToken({ token: HOOK_TOKEN }, {}, undefined), 'no webhook_token configured');
  // Older Omnichannel payloads put `username` on the message itself (Rasa reads it there).
  const parsed = parseRequest(omnichannel({}, [{ username: 'guest-42', msg: 'a', _id: 'm1' }, { username: 'switchboard', msg: 'b', _id: 'm2' }, { u: { username: 'guest-42' }, msg: 'c', _id: 'm3' }]), 'switchboard');
  t.like(parsed, { kind: 'messages', messages: [{ text: 'a', messageId: 'm1' }, { text: 'c', messageId: 'm3' }] });
  t.is(parseRequest(omnichannel({ messages: 'x' }), 'switchboard').kind, 'invalid');
});
