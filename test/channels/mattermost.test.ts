import test from 'ava';
import nock from 'nock';
import { createHmac } from 'node:crypto';
import MattermostInput, { parseRequest, signAction, stripTrigger, verifyClick, verifyWebhookToken } from '../../channels/mattermost/index.js';
import { runChannelCases, startServer, ScriptedBot, type OutgoingCall } from '../harness.js';

const API = 'https://chat.example.com/api/v4';
const BOT_TOKEN = 'xjz4rbp6bjn3dgf8kmrnmxq1ah';
const HOOK_TOKEN = 'zmigewsanbbsdf59xnmduzypjc';
const SESSION = 'u7ygf9rmf3n8dm7ix3xnqjhm5c';
const WEBHOOK_URL = 'https://bot.example.com/webhooks/mattermost/webhook';
const CREDENTIALS = { url: API, token: BOT_TOKEN, webhook_url: WEBHOOK_URL, webhook_token: HOOK_TOKEN };

// Mattermost ids: 26 lower-case alphanumerics.
const CHANNEL = 'hawos4dqtby53pd64o4a4cmeoo';
const OTHER_CHANNEL = 'c3nkdqn1hfrkbyh5xn8m9z3jqa';
const TEAM = 'kwoknj9nwpypzgzy78wkw516qe';
const USER = 'rnina9994bde8mua79zqcg5hmo';
const BOT = 'bq6dkzc9ijbyuxrbfzmrxwdnhe';
const POST = 'axdygg1957njfe5pu38saikdho';
const BOT_POST = 'h4mzx8cq7pbq5k9rdm1zyyqfgo';

/** The table's clock: buttons are signed at NOW, clicks checked at NOW. */
const NOW = Date.parse('2026-12-02T12:00:00.000Z');
const NOW_S = NOW / 1000;
const DAY_S = 86_400;

/** The channel with its clock fixed at NOW, so the signed contexts of the answers are exact. */
class MattermostAtNow extends MattermostInput {
  override now(): number {
    return NOW;
  }
}

interface Signed {
  channel?: string;
  post?: string;
  iat?: number;
  token?: string;
}

/** The signature the channel must put in each button's context, computed here independently. */
const sig = (action: string, { channel = CHANNEL, post = BOT_POST, iat = NOW_S, token = HOOK_TOKEN }: Signed = {}) =>
  createHmac('sha256', token).update(`${channel}:${post}:${iat}:${action}`).digest('hex');

/** A button's context as the channel signs it (by default: in CHANNEL, on BOT_POST, a minute before NOW). */
const signed = (action: string, options: Signed = {}) => {
  const iat = options.iat ?? NOW_S - 60;
  return { action, iat, sig: sig(action, { ...options, iat }) };
};

/** An outgoing-webhook delivery as Mattermost posts it (developers.mattermost.com, Outgoing webhooks). */
function hook(fields: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    token: HOOK_TOKEN,
    team_id: TEAM,
    team_domain: 'someteam',
    channel_id: CHANNEL,
    channel_name: 'town-square',
    timestamp: 1445532266,
    user_id: USER,
    user_name: 'somename',
    post_id: POST,
    text: '@switchboard hello there',
    trigger_word: '@switchboard',
    file_ids: '',
    ...fields,
  };
}

/** The same delivery, form-encoded (the hook's other content type). */
const hookForm = (fields: Record<string, string> = {}) =>
  Object.fromEntries(Object.entries(hook(fields)).map(([k, v]) => [k, String(v)])) as Record<string, string>;

/** An interactive-message click as Mattermost posts it to the action's integration URL. */
function click(context: Record<string, unknown>, fields: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    user_id: USER,
    user_name: 'somename',
    channel_id: CHANNEL,
    channel_name: 'town-square',
    team_id: TEAM,
    team_domain: 'someteam',
    post_id: BOT_POST,
    trigger_id: 'a3NqYmtkYzl3N2JmdGJqNm9mYXM1ZW5pZGU6cm5pbmE5OTk0YmRlOG11YTc5enFjZzVobW86MTcwMDAwMDAwMDAwMDpNRVVDSVFD',
    type: '',
    data_source: '',
    context,
    ...fields,
  };
}

const bearer = (token = BOT_TOKEN) => ({ authorization: `Bearer ${token}` });

const me = (id = BOT, api = API): OutgoingCall => ({
  method: 'GET',
  url: `${api}/users/me`,
  headers: bearer(),
  reply: { body: { id, username: 'switchboard', is_bot: true, roles: 'system_user' } },
});

/** The `POST /posts` an answer becomes. */
const post = (body: Record<string, unknown>, token = BOT_TOKEN, api = API): OutgoingCall => ({
  method: 'POST',
  url: `${api}/posts`,
  headers: { ...bearer(token), 'content-type': 'application/json' },
  body,
  reply: { status: 201, body: { id: BOT_POST, create_at: 1700000000000, ...body } },
});

const login = (): OutgoingCall => ({
  method: 'POST',
  url: `${API}/users/login`,
  body: { login_id: 'switchboard', password: 'hunter2-but-longer' },
  reply: { body: { id: BOT, username: 'switchboard', roles: 'system_user' }, headers: { Token: SESSION } },
});

/** A button as the post is created with: its context not signed yet (a click on it is refused). */
const action = (name: string, payload: string) => ({ name, integration: { url: WEBHOOK_URL, context: { action: payload } } });
/** The same button once signed, for BOT_POST at NOW. */
const signedAction = (name: string, payload: string) => ({
  name,
  integration: { url: WEBHOOK_URL, context: { action: payload, iat: NOW_S, sig: sig(payload, { iat: NOW_S }) } },
});

/** The `PUT /posts/{id}/patch` that signs the buttons of the post just created. */
const patch = (actions: unknown[], postId = BOT_POST): OutgoingCall => ({
  method: 'PUT',
  url: `${API}/posts/${postId}/patch`,
  headers: { ...bearer(), 'content-type': 'application/json' },
  body: { props: { attachments: [{ actions }] } },
  reply: { body: { id: postId, props: { attachments: [{ actions }] } } },
});

runChannelCases(test, {
  channel: MattermostAtNow,
  credentials: CREDENTIALS,
  cases: [
    { label: 'mattermost: GET / is the health route', method: 'GET', path: '/', status: 200, response: { status: 'ok' } },
    {
      label: 'mattermost: a JSON webhook post, the @mention stripped, is answered "success" and replied to in its channel',
      roundTrip: 1,
      body: hook(),
      answers: [{ text: 'Hey there!' }],
      status: 200,
      response: 'success',
      received: [
        {
          text: 'hello there',
          senderId: USER,
          messageId: POST,
          inputChannel: 'mattermost',
          metadata: { type: 'post', channel_id: CHANNEL, channel_name: 'town-square', team_id: TEAM, user_name: 'somename', post_id: POST, trigger_word: '@switchboard' },
        },
      ],
      outgoing: [me(), post({ channel_id: CHANNEL, message: 'Hey there!' })],
    },
    {
      label: 'mattermost: a form-encoded webhook post, the trigger word stripped',
      roundTrip: 1,
      form: hookForm({ text: '!ask  what time is it? ', trigger_word: '!ask' }),
      status: 200,
      response: 'success',
      received: [{ text: 'what time is it?', senderId: USER, messageId: POST, metadata: { channel_id: CHANNEL, timestamp: '1445532266' } }],
      outgoing: [me(), post({ channel_id: CHANNEL, message: 'ok' })],
    },
    {
      label: 'mattermost: a channel-wide hook (no trigger word) keeps the whole text',
      body: hook({ text: 'good morning everyone', trigger_word: '' }),
      status: 200,
      received: [{ text: 'good morning everyone' }],
      outgoing: [me(), post({ channel_id: CHANNEL, message: 'ok' })],
    },
    {
      label: "mattermost: the bot's own post (user_id = GET /users/me id) is answered and ignored",
      body: hook({ user_id: BOT, user_name: 'switchboard', text: '@switchboard echo' }),
      status: 200,
      response: 'success',
      received: [],
      outgoing: [me()],
    },
    {
      label: 'mattermost: a post without text (files only) is answered 200 and ignored',
      body: hook({ text: '', trigger_word: '', file_ids: 'x1y2z3' }),
      status: 200,
      response: 'success',
      received: [],
      outgoing: [],
    },
    {
      label: 'mattermost: a repeated post_id is processed once',
      body: hook(),
      repeat: 2,
      answers: [{ text: 'once' }],
      status: 200,
      response: 'success',
      received: [{ text: 'hello there', messageId: POST }],
      outgoing: [me(), post({ channel_id: CHANNEL, message: 'once' })],
    },
    {
      label: 'mattermost: a button click with a valid context signature is the payload as text, answered {}',
      body: click(signed('/mood_great')),
      answers: [{ text: 'Great!' }],
      status: 200,
      response: {},
      received: [{ text: '/mood_great', senderId: USER, metadata: { type: 'button', channel_id: CHANNEL, post_id: BOT_POST } }],
      outgoing: [post({ channel_id: CHANNEL, message: 'Great!' })],
    },

    // --- verification and malformed input
    {
      label: 'mattermost: a button click with a forged context signature is 401, and the bot sees nothing',
      body: click({ ...signed('/mood_great'), action: '/admin_reset' }),
      status: 401,
      response: { error: 'request could not be verified' },
      received: [],
      outgoing: [],
    },
    {
      label: "mattermost: a click replayed into another channel (the signature is the first channel's) is 401",
      body: click(signed('/mood_great'), { channel_id: OTHER_CHANNEL }),
      status: 401,
      received: [],
      outgoing: [],
    },
    // A leaked `sig` is good for one post and one day only (button_max_age), never for another post or forever.
    {
      label: 'mattermost: a click with the signed context of another post (a leaked sig) is 401',
      body: click(signed('/mood_great', { post: POST })),
      status: 401,
      response: { error: 'request could not be verified' },
      received: [],
      outgoing: [],
    },
    {
      label: "mattermost: a post's signed context clicked with another post_id is 401",
      body: click(signed('/mood_great'), { post_id: POST }),
      status: 401,
      received: [],
      outgoing: [],
    },
    {
      label: 'mattermost: a click without post_id is 401 (the signature covers the post)',
      body: click(signed('/mood_great'), { post_id: undefined }),
      status: 401,
      received: [],
      outgoing: [],
    },
    {
      label: 'mattermost: an expired button (signed a day and a second ago) is 401',
      body: click(signed('/mood_great', { iat: NOW_S - DAY_S - 1 })),
      status: 401,
      received: [],
      outgoing: [],
    },
    {
      label: 'mattermost: an expired button with its issue time moved forward (the sig kept) is 401',
      body: click({ ...signed('/mood_great', { iat: NOW_S - 30 * DAY_S }), iat: NOW_S - 60 }),
      status: 401,
      received: [],
      outgoing: [],
    },
    {
      label: 'mattermost: a button issued 10 minutes in the future is 401',
      body: click(signed('/mood_great', { iat: NOW_S + 600 })),
      status: 401,
      received: [],
      outgoing: [],
    },
    {
      label: 'mattermost: a button signed the old way (channel and action only) is 401',
      body: click({ action: '/mood_great', sig: createHmac('sha256', HOOK_TOKEN).update(`${CHANNEL}:/mood_great`).digest('hex') }),
      status: 401,
      received: [],
      outgoing: [],
    },
    {
      label: 'mattermost: a button signed almost a day ago still works',
      body: click(signed('/mood_great', { iat: NOW_S - DAY_S + 1 })),
      answers: [],
      status: 200,
      response: {},
      received: [{ text: '/mood_great', metadata: { type: 'button', post_id: BOT_POST } }],
      outgoing: [],
    },
    {
      label: 'mattermost: a click without context.sig is 401',
      body: click({ action: '/mood_great' }),
      status: 401,
      received: [],
      outgoing: [],
    },
    {
      label: 'mattermost: a wrong webhook token is 401, and the bot sees nothing',
      body: hook({ token: 'not-the-webhook-token-at-all' }),
      status: 401,
      response: { error: 'request could not be verified' },
      received: [],
      outgoing: [],
    },
    {
      label: 'mattermost: a missing webhook token is 401',
      body: hook({ token: undefined }),
      status: 401,
      received: [],
      outgoing: [],
    },
    {
      label: 'mattermost: a form post with a wrong token is 401',
      form: hookForm({ token: 'x' + HOOK_TOKEN.slice(1) }),
      status: 401,
      received: [],
      outgoing: [],
    },
    {
      label: 'mattermost: the token may come as "Authorization: Token <webhook_token>" (a relay)',
      body: hook({ token: undefined }),
      headers: { authorization: `Token ${HOOK_TOKEN}` },
      status: 200,
      received: [{ text: 'hello there' }],
      outgoing: [me(), post({ channel_id: CHANNEL, message: 'ok' })],
    },
    {
      label: 'mattermost: a wrong Authorization token is 401, even with the right body token',
      body: hook(),
      headers: { authorization: 'Token wrong' },
      status: 401,
      received: [],
      outgoing: [],
    },
    {
      label: 'mattermost: malformed JSON is 400',
      body: '{"token": "zmigewsanbbsdf59xnmduzypjc", "text": ',
      headers: { 'content-type': 'application/json' },
      status: 400,
      received: [],
      outgoing: [],
    },
    {
      label: 'mattermost: a verified post without channel_id is 400',
      body: hook({ channel_id: undefined }),
      status: 400,
      response: { error: 'not a Mattermost outgoing webhook: expected "channel_id" and "user_id"' },
      received: [],
      outgoing: [],
    },
    {
      label: 'mattermost: a signed click without channel_id is 401 (the signature covers the channel)',
      body: click(signed('/mood_great'), { channel_id: undefined }),
      status: 401,
      received: [],
      outgoing: [],
    },

    // --- each answer kind
    {
      label: 'mattermost answer: text split at blank lines, one post each',
      body: hook(),
      answers: [{ text: 'First part.\n\nSecond part.' }],
      status: 200,
      outgoing: [me(), post({ channel_id: CHANNEL, message: 'First part.' }), post({ channel_id: CHANNEL, message: 'Second part.' })],
    },
    {
      label: 'mattermost answer: an image is a message attachment with image_url',
      body: hook(),
      answers: [{ text: 'Here is something to cheer you up:', image: 'https://i.imgur.com/nGF1K8f.jpg' }],
      status: 200,
      outgoing: [
        me(),
        post({ channel_id: CHANNEL, message: 'Here is something to cheer you up:' }),
        post({ channel_id: CHANNEL, message: '', props: { attachments: [{ image_url: 'https://i.imgur.com/nGF1K8f.jpg' }] } }),
      ],
    },
    {
      label: 'mattermost answer: buttons are attachment actions calling webhook_url with a signed context; a link button is a link',
      body: hook(),
      answers: [{ text: 'How are you?', buttons: [{ title: 'great', payload: '/mood_great' }, { title: 'sad', payload: '/mood_sad' }, { title: 'Help', url: 'https://example.com/help' }] }],
      status: 200,
      outgoing: [
        me(),
        post({
          channel_id: CHANNEL,
          message: 'How are you?\n[Help](https://example.com/help)',
          props: { attachments: [{ actions: [action('great', '/mood_great'), action('sad', '/mood_sad')] }] },
        }),
        patch([signedAction('great', '/mood_great'), signedAction('sad', '/mood_sad')]),
      ],
    },
    {
      label: 'mattermost answer: quick replies are buttons too (a missing payload sends the title)',
      body: hook(),
      answers: [{ text: 'Size?', quick_replies: [{ title: 'S', payload: '/size{"s":"S"}' }, { title: 'L' }] }],
      status: 200,
      outgoing: [
        me(),
        post({ channel_id: CHANNEL, message: 'Size?', props: { attachments: [{ actions: [action('S', '/size{"s":"S"}'), action('L', 'L')] }] } }),
        patch([signedAction('S', '/size{"s":"S"}'), signedAction('L', 'L')]),
      ],
    },
    {
      label: 'mattermost answer: elements are "title : subtitle" posts with their buttons',
      body: hook(),
      answers: [{ elements: [{ title: 'Hat', subtitle: '12 €', buttons: [{ title: 'Buy', payload: '/buy{"item":"hat"}' }] }, { title: 'Scarf' }] }],
      status: 200,
      outgoing: [
        me(),
        post({ channel_id: CHANNEL, message: 'Hat : 12 €', props: { attachments: [{ actions: [action('Buy', '/buy{"item":"hat"}')] }] } }),
        patch([signedAction('Buy', '/buy{"item":"hat"}')]),
        post({ channel_id: CHANNEL, message: 'Scarf' }),
      ],
    },
    {
      label: 'mattermost answer: an attachment falls back to text',
      body: hook(),
      answers: [{ attachment: 'https://example.com/report.pdf' }],
      status: 200,
      outgoing: [me(), post({ channel_id: CHANNEL, message: 'Attachment: https://example.com/report.pdf' })],
    },
    {
      label: 'mattermost answer: custom JSON is the post body; channel_id and message default',
      body: hook(),
      answers: [{ custom: { props: { attachments: [{ pretext: 'Look', text: 'This is *bold*' }] } } }, { custom: { channel_id: OTHER_CHANNEL, message: 'elsewhere', root_id: POST } }],
      status: 200,
      outgoing: [
        me(),
        post({ channel_id: CHANNEL, message: '', props: { attachments: [{ pretext: 'Look', text: 'This is *bold*' }] } }),
        post({ channel_id: OTHER_CHANNEL, message: 'elsewhere', root_id: POST }),
      ],
    },
    {
      label: 'mattermost: a failing POST /posts (403) is not retried, and nothing else is sent for that reply',
      body: hook(),
      answers: [{ text: 'one' }, { text: 'two' }],
      status: 200,
      outgoing: [me(), { ...post({ channel_id: CHANNEL, message: 'one' }), reply: { status: 403, body: { id: 'api.context.permissions.app_error', message: 'You do not have the appropriate permissions.', status_code: 403 } } }],
    },
  ],
});

runChannelCases(test, {
  channel: MattermostInput,
  credentials: { url: 'https://mattermost.internal/api/v4', api_url: 'https://mm-proxy.example.com/api/v4/', token: BOT_TOKEN, webhook_token: HOOK_TOKEN },
  cases: [
    {
      label: 'mattermost api_url: replaces url; without webhook_url buttons are a numbered text list',
      body: hook(),
      answers: [{ text: 'Pick', buttons: [{ title: 'great', payload: '/mood_great' }, { title: 'sad', payload: '/mood_sad' }] }],
      status: 200,
      outgoing: [
        me(BOT, 'https://mm-proxy.example.com/api/v4'),
        post({ channel_id: CHANNEL, message: 'Pick\n1: great (/mood_great)\n2: sad (/mood_sad)' }, BOT_TOKEN, 'https://mm-proxy.example.com/api/v4'),
      ],
    },
  ],
});

runChannelCases(test, {
  channel: MattermostInput,
  credentials: { url: API, user: 'switchboard', pw: 'hunter2-but-longer', team: 'someteam', webhook_url: WEBHOOK_URL, webhook_token: HOOK_TOKEN },
  cases: [
    {
      label: 'mattermost user+pw: logs in (Token header; the bot id from the login answer), then posts with the session',
      body: hook(),
      answers: [{ text: 'logged in' }],
      status: 200,
      received: [{ text: 'hello there' }],
      outgoing: [login(), post({ channel_id: CHANNEL, message: 'logged in' }, SESSION)],
    },
    {
      label: "mattermost user+pw: the bot's own post is recognised from the login answer",
      body: hook({ user_id: BOT }),
      status: 200,
      received: [],
      outgoing: [login()],
    },
    {
      label: 'mattermost user+pw: a 401 (expired session) logs in again and the post is sent once more',
      body: hook(),
      answers: [{ text: 'again' }],
      status: 200,
      outgoing: [
        login(),
        { ...post({ channel_id: CHANNEL, message: 'again' }, SESSION), reply: { status: 401, body: { id: 'api.context.session_expired.app_error', message: 'Invalid or expired session, please login again.', status_code: 401 } } },
        login(),
        post({ channel_id: CHANNEL, message: 'again' }, SESSION),
      ],
    },
    {
      label: 'mattermost user+pw: a second 401 right after logging in again is given up (no loop)',
      body: hook(),
      answers: [{ text: 'denied' }],
      status: 200,
      outgoing: [
        login(),
        { ...post({ channel_id: CHANNEL, message: 'denied' }, SESSION), reply: { status: 401, body: { status_code: 401 } } },
        login(),
        { ...post({ channel_id: CHANNEL, message: 'denied' }, SESSION), reply: { status: 401, body: { status_code: 401 } } },
      ],
    },
  ],
});

runChannelCases(test, {
  channel: MattermostAtNow,
  credentials: { ...CREDENTIALS, button_max_age: 600 },
  cases: [
    {
      label: 'mattermost button_max_age 600: a button signed 11 minutes ago is 401',
      body: click(signed('/mood_great', { iat: NOW_S - 660 })),
      status: 401,
      received: [],
      outgoing: [],
    },
    {
      label: 'mattermost button_max_age 600: a button signed 5 minutes ago works',
      body: click(signed('/mood_great', { iat: NOW_S - 300 })),
      answers: [],
      status: 200,
      received: [{ text: '/mood_great' }],
      outgoing: [],
    },
  ],
});

runChannelCases(test, {
  channel: MattermostInput,
  credentials: { url: API, token: BOT_TOKEN, allow_unverified: true },
  cases: [
    {
      label: 'mattermost allow_unverified: a post without token is processed; unsigned clicks too',
      body: click({ action: '/mood_great' }),
      status: 200,
      response: {},
      received: [{ text: '/mood_great' }],
      outgoing: [post({ channel_id: CHANNEL, message: 'ok' })],
    },
  ],
});

// --- beyond one request

test.serial('mattermost user+pw: the session token from the login is masked when Mattermost echoes it in a failed answer', async (t) => {
  const bot = new ScriptedBot([{ text: 'hi' }]);
  const channel = MattermostInput.fromCredentials({ url: API, user: 'switchboard', pw: 'hunter2-but-longer', webhook_token: HOOK_TOKEN });
  const { request, logs } = await startServer(t, [channel], { bot });
  const api = nock(API);
  api.post('/users/login').once().reply(200, { id: BOT }, { Token: SESSION });
  api.post('/posts').reply(403, { id: 'api.context.permissions.app_error', message: `session ${SESSION} may not post here`, status_code: 403 });
  const response = await request('/webhooks/mattermost/webhook', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(hook()) });
  t.is(response.status, 200);
  const deadline = Date.now() + 2_000;
  while (!logs.text.includes('sending an answer failed') && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
  t.regex(logs.text, /session \[redacted\] may not post here/);
  t.false(logs.text.includes(SESSION), 'the session token is never logged');
  nock.cleanAll();
});

test.serial('mattermost user+pw: one login, cached across two messages', async (t) => {
  const bot = new ScriptedBot([{ text: 'hi' }]);
  const channel = MattermostInput.fromCredentials({ url: API, user: 'switchboard', pw: 'hunter2-but-longer', webhook_token: HOOK_TOKEN });
  const { request } = await startServer(t, [channel], { bot });
  const api = nock(API);
  api.post('/users/login', { login_id: 'switchboard', password: 'hunter2-but-longer' }).once().reply(200, { id: BOT }, { Token: SESSION });
  api.post('/posts').times(2).matchHeader('authorization', `Bearer ${SESSION}`).reply(201, { id: BOT_POST });
  for (const id of [POST, 'b9hzm3kq1jg5pxr7dw8ya4tcne']) {
    const response = await request('/webhooks/mattermost/webhook', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(hook({ post_id: id })) });
    t.is(response.status, 200);
  }
  await bot.waitFor(2);
  const deadline = Date.now() + 2_000;
  while (!api.isDone() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
  t.true(api.isDone(), api.pendingMocks().join(', '));
  nock.cleanAll();
});

test.serial('mattermost buttons, real clock: the signed context of the patch is clickable on its post only, the unsigned one of the create never', async (t) => {
  const bot = new ScriptedBot((message) => (message.text === '/mood_great' ? [{ text: 'Great!' }] : [{ text: 'How are you?', buttons: [{ title: 'great', payload: '/mood_great' }] }]));
  const { request } = await startServer(t, [MattermostInput.fromCredentials(CREDENTIALS)], { bot });
  const api = nock(API);
  let created: { props: { attachments: Array<{ actions: Array<{ integration: { context: Record<string, unknown> } }> }> } } | undefined;
  let patched: typeof created;
  api.get('/users/me').reply(200, { id: BOT });
  api.post('/posts', (body) => ((created = body), true)).reply(201, (_uri, body) => ({ id: BOT_POST, ...(body as object) }));
  api.put(`/posts/${BOT_POST}/patch`, (body) => ((patched = body), true)).reply(200, (_uri, body) => ({ id: BOT_POST, ...(body as object) }));
  api.post('/posts', { channel_id: CHANNEL, message: 'Great!' }).reply(201, { id: 'k8yz3tq6xbfumxnrjcgw5a9hpe' });
  const before = Math.floor(Date.now() / 1000);
  await request('/webhooks/mattermost/webhook', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(hook()) });
  const deadline = Date.now() + 3_000;
  while (patched === undefined && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
  const unsigned = created!.props.attachments[0]!.actions[0]!.integration.context;
  const context = patched!.props.attachments[0]!.actions[0]!.integration.context;
  t.deepEqual(unsigned, { action: '/mood_great' });
  t.true((context.iat as number) >= before && (context.iat as number) <= Math.ceil(Date.now() / 1000));
  t.is(context.sig, sig('/mood_great', { iat: context.iat as number }));
  const send = (body: object) => request('/webhooks/mattermost/webhook', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  t.is((await send(click(unsigned))).status, 401, 'the unsigned context of the create');
  t.is((await send(click(context, { post_id: POST }))).status, 401, 'the signed context on another post');
  t.is(bot.received.length, 1);
  const legit = await send(click(context));
  t.is(legit.status, 200);
  await bot.waitFor(2);
  t.is(bot.received[1]?.text, '/mood_great');
  while (!api.isDone() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
  t.true(api.isDone(), api.pendingMocks().join(', '));
  nock.cleanAll();
});

test.serial('mattermost: GET /users/me is made once per channel, and the token is never logged', async (t) => {
  const bot = new ScriptedBot([]);
  const { request, logs } = await startServer(t, [MattermostInput.fromCredentials(CREDENTIALS)], { bot });
  const api = nock(API);
  api.get('/users/me').once().reply(200, { id: BOT });
  for (const id of [POST, 'b9hzm3kq1jg5pxr7dw8ya4tcne']) {
    await request('/webhooks/mattermost/webhook', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(hook({ post_id: id })) });
  }
  await bot.waitFor(2);
  t.true(api.isDone());
  t.false(logs.text.includes(BOT_TOKEN) || logs.text.includes(HOOK_TOKEN));
  nock.cleanAll();
});

test.serial('mattermost: a slow bot shows typing with POST /users/me/typing {channel_id}', async (t) => {
  const bot = new ScriptedBot(async () => {
    await new Promise((resolve) => setTimeout(resolve, 800));
    return [{ text: 'slow' }];
  });
  const { request } = await startServer(t, [MattermostInput.fromCredentials(CREDENTIALS)], { bot });
  const api = nock(API);
  const typing: unknown[] = [];
  api.get('/users/me').reply(200, { id: BOT });
  api.post('/users/me/typing').reply(200, (_uri, body) => {
    typing.push(body);
    return { status: 'OK' };
  });
  api.post('/posts', { channel_id: CHANNEL, message: 'slow' }).reply(201, { id: BOT_POST });
  await request('/webhooks/mattermost/webhook', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(hook()) });
  const deadline = Date.now() + 3_000;
  while (!api.isDone() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
  t.true(api.isDone(), api.pendingMocks().join(', '));
  t.deepEqual(typing[0], { channel_id: CHANNEL });
  nock.cleanAll();
});

test('mattermost credentials: a token or user + pw; webhook_token unless allow_unverified', (t) => {
  t.is(t.throws(() => MattermostInput.fromCredentials({ url: API, webhook_token: HOOK_TOKEN }))?.message, 'missing "token" (or "user" and "pw" to log in)');
  t.is(t.throws(() => MattermostInput.fromCredentials({ url: API, user: 'bot', webhook_token: HOOK_TOKEN }))?.message, 'missing "pw" (the password of "user")');
  t.regex(t.throws(() => MattermostInput.fromCredentials({ url: API, token: BOT_TOKEN }))?.message ?? '', /^missing "webhook_token", needed to verify .* allow_unverified: true/);
  t.is(t.throws(() => MattermostInput.fromCredentials({ token: BOT_TOKEN, webhook_token: HOOK_TOKEN }))?.message, 'missing "url"');
  const channel = MattermostInput.fromCredentials(CREDENTIALS);
  t.false(channel.unverified);
  t.is(channel.credentials.typing_indicator, true);
});

test('mattermost stripTrigger: the first word when it is the trigger word or a mention', (t) => {
  t.is(stripTrigger('@switchboard  hi there', '@switchboard'), 'hi there');
  t.is(stripTrigger('!askme what', '!ask'), 'what');
  t.is(stripTrigger('@bot hi', undefined), 'hi');
  t.is(stripTrigger('just talking', undefined), 'just talking');
  t.is(stripTrigger('@switchboard', '@switchboard'), '@switchboard');
});

test('mattermost verify: body token, Authorization header, signed clicks; reasons, never throws', (t) => {
  t.true(verifyWebhookToken({ token: HOOK_TOKEN }, {}, HOOK_TOKEN));
  t.is(verifyWebhookToken({}, {}, HOOK_TOKEN), 'missing "token" field');
  t.is(verifyWebhookToken({ token: 'x' }, {}, HOOK_TOKEN), '"token" does not match webhook_token');
  t.is(verifyWebhookToken({ token: HOOK_TOKEN }, {}, undefined), 'no webhook_token configured');
  t.true(verifyWebhookToken({}, { authorization: `token ${HOOK_TOKEN}` }, HOOK_TOKEN));
  t.is(signAction(HOOK_TOKEN, { channelId: CHANNEL, postId: BOT_POST, issuedAt: NOW_S, action: '/a' }), sig('/a'));
  const at = { channel_id: CHANNEL, post_id: BOT_POST };
  const check = { maxAgeSeconds: DAY_S, now: NOW };
  t.true(verifyClick({ ...signed('/a'), sig: signed('/a').sig.toUpperCase() }, at, HOOK_TOKEN, check));
  t.is(verifyClick({ ...signed('/a'), sig: sig('/b') }, at, HOOK_TOKEN, check), '"context.sig" does not match the action, time, post and channel');
  t.is(verifyClick({ action: 5, sig: 'x' }, at, HOOK_TOKEN, check), 'a button click needs "context.action" and "channel_id"');
  t.is(verifyClick(signed('/a'), { channel_id: CHANNEL }, HOOK_TOKEN, check), 'a button click needs "post_id"');
  t.is(verifyClick({ action: '/a', sig: sig('/a') }, at, HOOK_TOKEN, check), 'missing "context.iat": not a button this channel signed');
  t.true(verifyClick({ ...signed('/a'), iat: String(NOW_S - 60) }, at, HOOK_TOKEN, check), 'iat as a string of digits');
  t.is(verifyClick({ ...signed('/a'), iat: `${NOW_S - 60}.0` }, at, HOOK_TOKEN, check), 'missing "context.iat": not a button this channel signed');
  t.is(verifyClick({ ...signed('/a'), iat: -1 }, at, HOOK_TOKEN, check), 'missing "context.iat": not a button this channel signed');
  t.is(verifyClick(signed('/a', { post: POST }), at, HOOK_TOKEN, check), '"context.sig" does not match the action, time, post and channel');
  t.regex(verifyClick(signed('/a', { iat: NOW_S - DAY_S - 1 }), at, HOOK_TOKEN, check) as string, /^button expired: timestamp is 86401 s old/);
  t.true(verifyClick(signed('/a', { iat: NOW_S - DAY_S }), at, HOOK_TOKEN, check));
  t.regex(verifyClick(signed('/a', { iat: NOW_S + 600 }), at, HOOK_TOKEN, check) as string, /^button expired: .* in the future/);
  t.is(verifyClick(signed('/a'), at, undefined, check), 'no webhook_token configured');
  t.like(parseRequest(click({ action: '/x' })), { kind: 'message', click: true, message: { text: '/x' } });
  t.is(parseRequest(click({ sig: 'x' })).kind, 'invalid');
});
