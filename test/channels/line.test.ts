import test from 'ava';
import nock from 'nock';
import { createHmac } from 'node:crypto';
import LineInput, { parseDelivery, verifySignature, checkEventTime, splitText } from '../../channels/line/index.js';
import type { BotMessage } from 'switchboard';
import { runChannelCases, startServer, ScriptedBot, type ChannelCase, type OutgoingCall } from '../harness.js';

// Shapes below follow LINE's Messaging API reference (webhook event objects, send reply/push message) and the
// line-openapi definitions (webhook.yml, messaging-api.yml).
const CHANNEL_SECRET = '8c570fa6dd201bb328f1c1eac23a96d8';
const ACCESS_TOKEN = 'W1TeHCgfH2Liwa9PtaAvsqDmHy+Ej0t6V2x3ZVRsYXVkZS1ub3QtZm9yLWxvZ3M=';
const CREDENTIALS = { channel_secret: CHANNEL_SECRET, channel_access_token: ACCESS_TOKEN };
const BOT_ID = 'Ub3a2f0c7e5d1234567890abcdef01234';
const USER_ID = 'U4af4980629e3b7b0cd2d8d6e7d3c2f91';
const GROUP_ID = 'Ca56f94637c5f8d6e3b1a2c4d5e6f7a81';
const REPLY_URL = 'https://api.line.me/v2/bot/message/reply';
const PUSH_URL = 'https://api.line.me/v2/bot/message/push';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

const sign = (raw: string) => ({ 'x-line-signature': createHmac('sha256', CHANNEL_SECRET).update(raw).digest('base64') });

/** When this file's events happened: each event's `timestamp` is checked against the replay window (1 h by default). */
const NOW = Date.now();

/** A delivery as LINE posts it. */
function delivery(...events: object[]): object {
  return { destination: BOT_ID, events };
}

let counter = 0;
/** A webhook event from a user in a one-on-one chat; ids are ULIDs and reply tokens 32 hex characters, as LINE's. */
function event(fields: object, options: { id?: string; replyToken?: string | null; source?: object; timestamp?: number } = {}): object {
  counter++;
  const id = options.id ?? `01HMQGW40RZJPJM3RAJP7B${String(counter).padStart(4, '0')}`;
  const replyToken = options.replyToken === undefined ? `nHuyWiB7yP5Zw52FIkcQobQuGDX${String(counter).padStart(5, '0')}` : options.replyToken;
  return {
    ...(replyToken === null ? {} : { replyToken }),
    mode: 'active',
    timestamp: options.timestamp ?? NOW,
    source: options.source ?? { type: 'user', userId: USER_ID },
    webhookEventId: id,
    deliveryContext: { isRedelivery: false },
    ...fields,
  };
}

const textMessage = (text: string, id = '444573844083572737') => ({ type: 'message', message: { id, type: 'text', quoteToken: 'q3Plxr4AgKd2i5yUEQY5aDUmNRMRAnEqd8dZ8fJsOB8TnBtCpZcGZU', text } });
const tokenOf = (e: object) => (e as { replyToken: string }).replyToken;
const idOf = (e: object) => (e as { webhookEventId: string }).webhookEventId;

const SENT = { sentMessages: [{ id: '461230966842064897', quoteToken: 'IStG5h1Tz7b7aS3wQWkQ0g' }] };

/** The reply API call the answers become. */
function reply(replyToken: string, messages: object[], extra: Partial<OutgoingCall> = {}): OutgoingCall {
  return {
    url: REPLY_URL,
    headers: { authorization: `Bearer ${ACCESS_TOKEN}`, 'content-type': 'application/json', 'x-line-retry-key': '' },
    body: { replyToken, messages },
    reply: { body: SENT },
    ...extra,
  };
}

/** A push API call, with its retry key. */
function push(messages: object[], to = USER_ID, extra: Partial<OutgoingCall> = {}): OutgoingCall {
  return {
    url: PUSH_URL,
    headers: { authorization: `Bearer ${ACCESS_TOKEN}`, 'content-type': 'application/json', 'x-line-retry-key': UUID },
    body: { to, messages },
    reply: { body: SENT },
    ...extra,
  };
}

const text = (value: string) => ({ type: 'text', text: value });
const postback = (label: string, data: string) => ({ type: 'postback', label, data, displayText: label });

const hello = event(textMessage('Good Morning!! (love)'));
const sticker = event({ type: 'message', message: { type: 'sticker', id: '1501597916', quoteToken: 'q3Plxr4AgKd', stickerId: '52002738', packageId: '11537', stickerResourceType: 'ANIMATION', keywords: ['cony', 'sally', 'Staring', 'hi'] } });
const image = event({ type: 'message', message: { type: 'image', id: '354718705033693859', quoteToken: 'q3Plxr4AgKd', contentProvider: { type: 'line' }, imageSet: { id: 'E005D41A7288F41B65593ED38FF6E9834B046AB36A37921A56BC236F13A91855', index: 1, total: 2 } } });
const location = event({ type: 'message', message: { id: '325708', type: 'location', title: 'my location', address: '1-3 Kioicho, Chiyoda-ku, Tokyo, 102-8282, Japan', latitude: 35.67966, longitude: 139.73669 } });
const datetimePostback = event({ type: 'postback', postback: { data: 'action=buy&itemid=111', params: { datetime: '2017-12-25T01:00' } } });
const groupMessage = event(textMessage('@bot what time is it?'), { source: { type: 'group', groupId: GROUP_ID, userId: USER_ID } });

const cases: ChannelCase[] = [
  { label: 'line: GET / is the health route', method: 'GET', path: '/', status: 200, response: { status: 'ok' } },

  // --- verification
  { label: 'line: a delivery without X-Line-Signature is 401 and never reaches the bot', body: delivery(event(textMessage('unsigned'))), status: 401, received: [], outgoing: [] },
  {
    label: 'line: a delivery signed with another secret is 401',
    body: delivery(event(textMessage('forged'))),
    sign: (raw) => ({ 'x-line-signature': createHmac('sha256', 'not-the-channel-secret').update(raw).digest('base64') }),
    status: 401,
    received: [],
  },
  {
    label: 'line: a signature of other bytes (the body re-serialised with spaces) is 401',
    body: JSON.stringify(delivery(event(textMessage('tampered')))),
    headers: { 'content-type': 'application/json' },
    sign: (raw) => sign(JSON.stringify(JSON.parse(raw), null, 1)),
    status: 401,
    received: [],
  },
  {
    label: 'line: a hex signature (not base64) is 401',
    body: delivery(event(textMessage('hex'))),
    sign: (raw) => ({ 'x-line-signature': createHmac('sha256', CHANNEL_SECRET).update(raw).digest('hex') }),
    status: 401,
    received: [],
  },
  { label: "line: the console's Verify request (no events) is answered 200", body: { destination: BOT_ID, events: [] }, sign, status: 200, response: 'OK', received: [], outgoing: [] },

  // --- incoming kinds
  {
    label: 'line: a text message reaches the bot; the answer uses the reply token',
    roundTrip: true,
    body: delivery(hello),
    sign,
    answers: [{ text: 'Hey there!' }],
    status: 200,
    response: 'OK',
    received: [
      {
        text: 'Good Morning!! (love)',
        senderId: USER_ID,
        messageId: idOf(hello),
        inputChannel: 'line',
        metadata: { event_type: 'message', source_type: 'user', user_id: USER_ID, message_type: 'text', message_id: '444573844083572737', destination: BOT_ID, is_redelivery: false, timestamp: NOW },
      },
    ],
    outgoing: [reply(tokenOf(hello), [text('Hey there!')])],
  },
  {
    label: 'line: a sticker reaches the bot with empty text, the sticker in metadata',
    body: delivery(sticker),
    sign,
    answers: [],
    status: 200,
    received: [{ text: '', senderId: USER_ID, metadata: { message_type: 'sticker', sticker: { packageId: '11537', stickerId: '52002738', stickerResourceType: 'ANIMATION', keywords: ['cony', 'sally', 'Staring', 'hi'] } } }],
  },
  {
    label: 'line: an image reaches the bot with empty text, the content id and provider in metadata',
    body: delivery(image),
    sign,
    answers: [],
    status: 200,
    received: [{ text: '', metadata: { message_type: 'image', message_id: '354718705033693859', media: { contentProvider: { type: 'line' }, imageSet: { id: 'E005D41A7288F41B65593ED38FF6E9834B046AB36A37921A56BC236F13A91855', index: 1, total: 2 } } } }],
  },
  {
    label: 'line: a location reaches the bot with empty text, the place in metadata',
    body: delivery(location),
    sign,
    answers: [],
    status: 200,
    received: [{ text: '', metadata: { message_type: 'location', location: { title: 'my location', address: '1-3 Kioicho, Chiyoda-ku, Tokyo, 102-8282, Japan', latitude: 35.67966, longitude: 139.73669 } } }],
  },
  {
    label: 'line: a postback: its data is the text, its params in metadata; buttons answered as a buttons template',
    roundTrip: true,
    body: delivery(datetimePostback),
    sign,
    answers: [{ text: 'How are you?', buttons: [{ title: 'great', payload: '/mood_great' }, { title: 'sad', payload: '/mood_sad' }, { title: 'Help', url: 'https://example.com/help' }] }],
    status: 200,
    received: [{ text: 'action=buy&itemid=111', senderId: USER_ID, metadata: { event_type: 'postback', postback_data: 'action=buy&itemid=111', postback_params: { datetime: '2017-12-25T01:00' } } }],
    outgoing: [
      reply(tokenOf(datetimePostback), [
        {
          type: 'template',
          altText: 'How are you?\n1: great (/mood_great)\n2: sad (/mood_sad)\n3: Help (https://example.com/help)',
          template: { type: 'buttons', text: 'How are you?', actions: [postback('great', '/mood_great'), postback('sad', '/mood_sad'), { type: 'uri', label: 'Help', uri: 'https://example.com/help' }] },
        },
      ]),
    ],
  },
  {
    label: 'line: a group message: the group is the sender (answers go there), the speaker in metadata',
    roundTrip: true,
    body: delivery(groupMessage),
    sign,
    answers: [{ text: 'It is noon.' }],
    status: 200,
    received: [{ text: '@bot what time is it?', senderId: GROUP_ID, metadata: { source_type: 'group', group_id: GROUP_ID, user_id: USER_ID } }],
    outgoing: [reply(tokenOf(groupMessage), [text('It is noon.')])],
  },
  {
    label: 'line: follow and unfollow are ignored when no intent is configured',
    body: delivery(event({ type: 'follow', follow: { isUnblocked: false } }), event({ type: 'unfollow' }, { replyToken: null })),
    sign,
    status: 200,
    response: 'OK',
    received: [],
    outgoing: [],
  },
  {
    label: 'line: join, leave, unsend and standby-mode events are ignored',
    body: delivery(
      event({ type: 'join' }, { source: { type: 'group', groupId: GROUP_ID } }),
      event({ type: 'leave' }, { replyToken: null, source: { type: 'group', groupId: GROUP_ID } }),
      event({ type: 'unsend', unsend: { messageId: '325708' } }, { replyToken: null }),
      { ...event(textMessage('for the other module'), { replyToken: null }), mode: 'standby' },
    ),
    sign,
    status: 200,
    received: [],
    outgoing: [],
  },
  {
    label: 'line: two events in one delivery are both processed, in order, each answered with its own reply token',
    body: delivery(event(textMessage('first')), event(textMessage('second'))),
    sign,
    answers: [{ text: 'got it' }],
    status: 200,
    received: [{ text: 'first' }, { text: 'second' }],
    outgoing: [reply(`nHuyWiB7yP5Zw52FIkcQobQuGDX${String(counter - 1).padStart(5, '0')}`, [text('got it')]), reply(`nHuyWiB7yP5Zw52FIkcQobQuGDX${String(counter).padStart(5, '0')}`, [text('got it')])],
  },
  {
    label: 'line: a redelivered event (same webhookEventId) is answered 200 again but processed once',
    body: delivery(event(textMessage('hello again'), { id: '01HMQGW40RZJPJM3RAJP7BREDL' })),
    sign,
    repeat: 2,
    answers: [{ text: 'once' }],
    status: 200,
    response: 'OK',
    received: [{ text: 'hello again', messageId: '01HMQGW40RZJPJM3RAJP7BREDL' }],
    outgoing: [reply(`nHuyWiB7yP5Zw52FIkcQobQuGDX${String(counter).padStart(5, '0')}`, [text('once')])],
  },

  // --- replays: each event's timestamp is inside the signed body
  { label: 'line replay: a correctly signed event from 2023 is answered 200 and ignored', body: delivery(event(textMessage('old'), { timestamp: Date.parse('2023-03-14T09:26:53.589Z') })), sign, status: 200, response: 'OK', received: [], outgoing: [] },
  { label: 'line replay: an event 2 hours old is ignored', body: delivery(event(textMessage('late'), { timestamp: NOW - 2 * 3_600_000 })), sign, status: 200, received: [], outgoing: [] },
  { label: 'line replay: an event 10 minutes in the future is ignored', body: delivery(event(textMessage('future'), { timestamp: NOW + 10 * 60_000 })), sign, status: 200, received: [], outgoing: [] },
  { label: 'line replay: an event without a timestamp is ignored', body: delivery({ ...event(textMessage('no time')), timestamp: undefined }), sign, status: 200, received: [], outgoing: [] },
  {
    label: 'line replay: a stale event batched with a fresh one: only the fresh one reaches the bot',
    body: delivery(event(textMessage('stale'), { timestamp: NOW - 2 * 3_600_000 }), event(textMessage('fresh'))),
    sign,
    answers: [],
    status: 200,
    received: [{ text: 'fresh' }],
  },
];

// --- outgoing kinds, each answering a fresh text event
function answering(label: string, answers: BotMessage[], outgoing: (token: string) => OutgoingCall[], roundTrip?: true): ChannelCase {
  const e = event(textMessage(label));
  return { label, body: delivery(e), sign, answers, status: 200, response: 'OK', outgoing: outgoing(tokenOf(e)), ...(roundTrip ? { roundTrip } : {}) };
}

const longText = (words: number) => Array.from({ length: words }, (_, i) => `w${String(i).padStart(4, '0')}`).join(' ');

cases.push(
  answering('line: the answers of one message go in one reply call (up to 5 messages): text, paragraphs, image', [{ text: 'one\n\ntwo' }, { text: 'Look:', image: 'https://i.imgur.com/nGF1K8f.jpg' }], (token) => [
    reply(token, [text('one'), text('two'), text('Look:'), { type: 'image', originalContentUrl: 'https://i.imgur.com/nGF1K8f.jpg', previewImageUrl: 'https://i.imgur.com/nGF1K8f.jpg' }]),
  ], true),
  answering('line: more than 5 messages: the first 5 by reply, the rest pushed 5 a call with a retry key', Array.from({ length: 11 }, (_, i) => ({ text: `answer ${i + 1}` })), (token) => [
    reply(token, [1, 2, 3, 4, 5].map((n) => text(`answer ${n}`))),
    push([6, 7, 8, 9, 10].map((n) => text(`answer ${n}`))),
    push([text('answer 11')]),
  ], true),
  answering('line: a text over 5,000 characters is split at a space into parts of at most 5,000', [{ text: longText(2000) }], (token) => {
    const words = longText(2000).split(' ');
    // 5 characters a word and a space: 833 words (4997 characters) fit in a part.
    return [reply(token, [words.slice(0, 833).join(' '), words.slice(833, 1666).join(' '), words.slice(1666).join(' ')].map(text))];
  }),
  answering('line: quick replies: the text with quickReply items (postback actions; a link item opens it)', [{ text: 'Size?', quick_replies: [{ title: 'Small', payload: '/size{"s":"S"}' }, { title: 'Large, extra roomy and comfy', payload: '/size{"s":"L"}', image_url: 'https://example.com/l.png' }, { title: 'Guide', url: 'https://example.com/sizes' }] }], (token) => [
    reply(token, [{
      type: 'text',
      text: 'Size?',
      quickReply: {
        items: [
          { type: 'action', action: postback('Small', '/size{"s":"S"}') },
          { type: 'action', imageUrl: 'https://example.com/l.png', action: { type: 'postback', label: 'Large, extra roomy a', data: '/size{"s":"L"}', displayText: 'Large, extra roomy and comfy' } },
          { type: 'action', action: { type: 'uri', label: 'Guide', uri: 'https://example.com/sizes' } },
        ],
      },
    }]),
  ], true),
  answering('line: more than 4 buttons become quick-reply items', [{ text: 'Pick a day', buttons: ['Mon', 'Tue', 'Wed', 'Thu', 'Fri'].map((d) => ({ title: d, payload: `/day{"d":"${d}"}` })) }], (token) => [
    reply(token, [{ type: 'text', text: 'Pick a day', quickReply: { items: ['Mon', 'Tue', 'Wed', 'Thu', 'Fri'].map((d) => ({ type: 'action', action: postback(d, `/day{"d":"${d}"}`) })) } }]),
  ]),
  answering('line: buttons with a text over 160 characters become quick-reply items', [{ text: 'x'.repeat(161), buttons: [{ title: 'ok', payload: '/ok' }] }], (token) => [
    reply(token, [{ type: 'text', text: 'x'.repeat(161), quickReply: { items: [{ type: 'action', action: postback('ok', '/ok') }] } }]),
  ]),
  answering('line: more than 13 buttons fall back to the numbered text list', [{ text: 'Pick', buttons: Array.from({ length: 14 }, (_, i) => ({ title: `option ${i + 1}`, payload: `/o${i + 1}` })) }], (token) => [
    reply(token, [text(['Pick', ...Array.from({ length: 14 }, (_, i) => `${i + 1}: option ${i + 1} (/o${i + 1})`)].join('\n'))]),
  ]),
  answering('line: a button payload over 300 characters (LINE refuses it) falls back to the numbered text list', [{ text: 'Pick', buttons: [{ title: 'long', payload: `/x{"v":"${'v'.repeat(300)}"}` }] }], (token) => [
    reply(token, [text(`Pick\n1: long (/x{"v":"${'v'.repeat(300)}"})`)]),
  ]),
  answering('line: an image that is not https falls back to its URL as text', [{ image: 'http://example.com/cat.jpg' }], (token) => [reply(token, [text('Image: http://example.com/cat.jpg')])]),
  answering('line: elements fall back to a buttons template per card (text alone without buttons); an attachment to text', [
    { elements: [{ title: 'Card one', subtitle: 'first', buttons: [{ title: 'open', payload: '/open' }] }, { title: 'Card two' }] },
    { attachment: 'https://example.com/report.pdf' },
  ], (token) => [
    reply(token, [
      { type: 'template', altText: 'Card one : first\n1: open (/open)', template: { type: 'buttons', text: 'Card one : first', actions: [postback('open', '/open')] } },
      text('Card two'),
      text('Attachment: https://example.com/report.pdf'),
    ]),
  ]),
  answering('line: custom JSON is a LINE message object (or a list of them), sent as it is; anything else as JSON text', [
    { custom: { type: 'sticker', packageId: '446', stickerId: '1988' } },
    { custom: [{ type: 'location', title: 'my location', address: '1-3 Kioicho, Chiyoda-ku, Tokyo', latitude: 35.67966, longitude: 139.73669 }, { type: 'text', text: 'Hello, world', sender: { name: 'Cony' } }] },
    { custom: { text: 'not a LINE message', data: { any: 'thing' } } },
  ], (token) => [
    reply(token, [
      { type: 'sticker', packageId: '446', stickerId: '1988' },
      { type: 'location', title: 'my location', address: '1-3 Kioicho, Chiyoda-ku, Tokyo', latitude: 35.67966, longitude: 139.73669 },
      { type: 'text', text: 'Hello, world', sender: { name: 'Cony' } },
      text('{"text":"not a LINE message","data":{"any":"thing"}}'),
    ]),
  ]),

  // --- platform errors
  answering('line: an expired or used reply token (400 Invalid reply token) falls back to the push API', [{ text: 'still delivered' }], (token) => [
    reply(token, [text('still delivered')], { reply: { status: 400, body: { message: 'Invalid reply token' } } }),
    push([text('still delivered')]),
  ]),
  answering('line: another 400 from the reply API is not retried (nor pushed)', [{ text: 'bad' }], (token) => [
    reply(token, [text('bad')], { reply: { status: 400, body: { message: 'The request body has 1 error(s)', details: [{ message: 'must be specified', property: 'messages[0].text' }] } } }),
  ]),
  answering('line: a 429 from the reply API is retried', [{ text: 'eventually' }], (token) => [
    reply(token, [text('eventually')], { reply: { status: 429, body: { message: 'The API rate limit has been exceeded. Try again later.' } } }),
    reply(token, [text('eventually')]),
  ]),
  answering('line: a 503 from the reply API is retried', [{ text: 'eventually' }], (token) => [
    reply(token, [text('eventually')], { reply: { status: 503, body: { message: 'Service Unavailable' } } }),
    reply(token, [text('eventually')]),
  ]),
);

runChannelCases(test, { channel: LineInput, credentials: CREDENTIALS, cases });

// --- follow / unfollow intents
const follow = event({ type: 'follow', follow: { isUnblocked: true } });
runChannelCases(test, {
  channel: LineInput,
  credentials: { ...CREDENTIALS, follow_intent: '/greet', unfollow_intent: '/goodbye' },
  cases: [
    {
      label: 'line follow_intent: a follow reaches the bot as the intent and is answered with its reply token',
      roundTrip: true,
      body: delivery(follow),
      sign,
      answers: [{ text: 'Thanks for adding me!' }],
      status: 200,
      received: [{ text: '/greet', senderId: USER_ID, messageId: idOf(follow), metadata: { event_type: 'follow', is_unblocked: true } }],
      outgoing: [reply(tokenOf(follow), [text('Thanks for adding me!')])],
    },
    {
      label: 'line unfollow_intent: an unfollow reaches the bot as the intent; its answers are dropped (the user blocked the account)',
      body: delivery(event({ type: 'unfollow' }, { replyToken: null })),
      sign,
      answers: [{ text: 'bye' }],
      status: 200,
      received: [{ text: '/goodbye', senderId: USER_ID, metadata: { event_type: 'unfollow' } }],
      outgoing: [],
    },
  ],
});

// --- push only (reply_window: 0): push errors, api_url
const pushCase = (label: string, answers: BotMessage[], outgoing: OutgoingCall[], roundTrip?: true): ChannelCase => ({ label, body: delivery(event(textMessage(label))), sign, answers, status: 200, outgoing, ...(roundTrip ? { roundTrip } : {}) });
runChannelCases(test, {
  channel: LineInput,
  credentials: { ...CREDENTIALS, reply_window: 0 },
  cases: [
    pushCase('line reply_window: 0: answers are pushed', [{ text: 'pushed' }], [push([text('pushed')])], true),
    pushCase('line push: a 500 is retried (the retry key makes it safe)', [{ text: 'again' }], [push([text('again')], USER_ID, { reply: { status: 500, body: { message: 'Internal Server Error' } } }), push([text('again')])]),
    pushCase('line push: a 429 is retried', [{ text: 'again' }], [push([text('again')], USER_ID, { reply: { status: 429, body: { message: 'The API rate limit has been exceeded. Try again later.' } } }), push([text('again')])]),
    pushCase('line push: a 400 is not retried', [{ text: 'no' }], [push([text('no')], USER_ID, { reply: { status: 400, body: { message: 'The property, \'to\', in the request body is invalid' } } })]),
    pushCase('line push: a 403 is not retried', [{ text: 'no' }], [push([text('no')], USER_ID, { reply: { status: 403, body: { message: 'Access to this API is not available for your account' } } })]),
  ],
});

runChannelCases(test, {
  channel: LineInput,
  credentials: { ...CREDENTIALS, api_url: 'https://line-proxy.example.com/' },
  cases: [
    (() => {
      const e = event(textMessage('proxied'));
      return { label: 'line: api_url replaces the Messaging API base', body: delivery(e), sign, answers: [{ text: 'via proxy' }], status: 200, outgoing: [reply(tokenOf(e), [text('via proxy')], { url: 'https://line-proxy.example.com/v2/bot/message/reply' })] };
    })(),
  ],
});

runChannelCases(test, {
  channel: LineInput,
  credentials: { channel_access_token: ACCESS_TOKEN, allow_unverified: true },
  cases: [
    (() => {
      const e = event(textMessage('no secret'));
      return { label: 'line allow_unverified: an unsigned delivery is processed', body: delivery(e), answers: [{ text: 'ok' }], status: 200, received: [{ text: 'no secret' }], outgoing: [reply(tokenOf(e), [text('ok')])] };
    })(),
  ],
});

// --- credentials

test('line: a section without channel_secret is refused, saying why and how to opt out', (t) => {
  const error = t.throws(() => LineInput.fromCredentials({ channel_access_token: ACCESS_TOKEN }));
  t.regex(error?.message ?? '', /^missing "channel_secret", needed to verify that requests come from the platform \(or set allow_unverified: true/);
});

test('line: channel_access_token is required, by name', (t) => {
  t.is(t.throws(() => LineInput.fromCredentials({ channel_secret: CHANNEL_SECRET }))?.message, 'missing "channel_access_token"');
});

test('line: defaults', (t) => {
  const channel = LineInput.fromCredentials(CREDENTIALS);
  t.like(channel.credentials, { api_url: 'https://api.line.me', typing_indicator: true, reply_window: 25, replay_window: 3600 });
  t.is(channel.credentials.follow_intent, undefined);
  t.false(channel.unverified);
  t.regex(t.throws(() => LineInput.fromCredentials({ ...CREDENTIALS, reply_window: -1 }))?.message ?? '', /^"reply_window": /);
});

// --- the output, on servers of their own

async function until(check: () => boolean, timeoutMs = 3_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
}

function interceptLine(t: { teardown: (fn: () => void) => void }) {
  nock.disableNetConnect();
  nock.enableNetConnect('127.0.0.1');
  t.teardown(() => nock.cleanAll());
}

test.serial('line: a retried push carries the same X-Line-Retry-Key; a 409 (key already accepted) counts as delivered', async (t) => {
  interceptLine(t);
  const keys: string[] = [];
  nock('https://api.line.me')
    .post('/v2/bot/message/push')
    .times(2)
    .reply(function answer() {
      keys.push(String(this.req.headers['x-line-retry-key']));
      return keys.length === 1 ? [500, { message: 'Internal Server Error' }] : [409, { message: 'The retry key is already accepted' }, { 'x-line-accepted-request-id': '123e4567-e89b-12d3-a456-426614174000' }];
    });
  const channel = LineInput.fromCredentials({ ...CREDENTIALS, reply_window: 0 });
  const output = channel.outputChannel({ to: USER_ID });
  await output.sendResponse(USER_ID, { text: 'exactly once' });
  await t.notThrowsAsync(output.flush(USER_ID));
  t.is(keys.length, 2);
  t.regex(keys[0]!, UUID);
  t.is(keys[1], keys[0]);
  t.deepEqual(output.queued, []);
});

test.serial('line: a message round-tripped after the reply window is answered by push; a token is used once across outputs', async (t) => {
  interceptLine(t);
  const calls: Array<{ path: string; body: unknown }> = [];
  nock('https://api.line.me')
    .post(/\/v2\/bot\/message\/(reply|push)/)
    .times(3)
    .reply(200, (uri, body) => {
      calls.push({ path: uri, body });
      return SENT;
    });
  const channel = LineInput.fromCredentials(CREDENTIALS);
  const late = channel.outputChannel({ to: USER_ID, reply_token: 'b60d432864f44d079f6d8efe86cf404b', received_at: Date.now() - 60_000 });
  await late.sendResponse(USER_ID, { text: 'late' });
  await late.flush(USER_ID);
  const address = { to: USER_ID, reply_token: '85cbe770fa8b4f45bbe077b1d4be4a36', received_at: Date.now() };
  for (const answer of ['first', 'second']) {
    const output = channel.outputChannel(address);
    await output.sendResponse(USER_ID, { text: answer });
    await output.flush(USER_ID);
  }
  t.deepEqual(calls, [
    { path: '/v2/bot/message/push', body: { to: USER_ID, messages: [text('late')] } },
    { path: '/v2/bot/message/reply', body: { replyToken: '85cbe770fa8b4f45bbe077b1d4be4a36', messages: [text('first')] } },
    { path: '/v2/bot/message/push', body: { to: USER_ID, messages: [text('second')] } },
  ]);
});

test('line: outputChannel refuses an address it did not make', (t) => {
  const channel = LineInput.fromCredentials(CREDENTIALS);
  t.throws(() => channel.outputChannel({ chat_id: USER_ID }), { message: 'reply address without "to"' });
  t.throws(() => channel.outputChannel({ to: USER_ID, reply_token: 5 }), { message: 'reply address "reply_token" is not a string' });
});

function slowBot(ms: number): ScriptedBot {
  return new ScriptedBot(async () => {
    await new Promise((resolve) => setTimeout(resolve, ms));
    return [{ text: 'done thinking' }];
  });
}

test.serial('line: a slow bot shows the loading animation in a one-on-one chat; LINE got its 200 first', async (t) => {
  interceptLine(t);
  const calls: Array<{ path: string; body: unknown }> = [];
  nock('https://api.line.me')
    .post(/.*/)
    .times(5)
    .reply((uri, body) => {
      calls.push({ path: uri, body });
      return uri.includes('loading') ? [202, {}] : [200, SENT];
    });
  const { request } = await startServer(t, [LineInput.fromCredentials(CREDENTIALS)], { bot: slowBot(700) });
  const e = event(textMessage('think hard'));
  const raw = JSON.stringify(delivery(e));
  const started = Date.now();
  const response = await request('/webhooks/line/webhook', { method: 'POST', headers: { 'content-type': 'application/json', ...sign(raw) }, body: raw });
  t.is(response.status, 200);
  t.true(Date.now() - started < 500, 'acknowledged before the bot answered');
  await until(() => calls.length >= 2);
  t.deepEqual(calls, [
    { path: '/v2/bot/chat/loading/start', body: { chatId: USER_ID, loadingSeconds: 20 } },
    { path: '/v2/bot/message/reply', body: { replyToken: tokenOf(e), messages: [text('done thinking')] } },
  ]);
});

for (const [label, typing, source] of [
  ['in a group (LINE has none)', true, { type: 'group', groupId: GROUP_ID, userId: USER_ID }],
  ['with typing_indicator: false', false, { type: 'user', userId: USER_ID }],
] as const) {
  test.serial(`line: no loading animation ${label}`, async (t) => {
    interceptLine(t);
    const calls: string[] = [];
    nock('https://api.line.me')
      .post(/.*/)
      .times(5)
      .reply((uri) => {
        calls.push(uri);
        return [200, SENT];
      });
    const { request } = await startServer(t, [LineInput.fromCredentials({ ...CREDENTIALS, typing_indicator: typing })], { bot: slowBot(700) });
    const raw = JSON.stringify(delivery(event(textMessage('think'), { source })));
    await request('/webhooks/line/webhook', { method: 'POST', headers: { 'content-type': 'application/json', ...sign(raw) }, body: raw });
    await until(() => calls.length >= 1);
    await new Promise((resolve) => setTimeout(resolve, 50));
    t.deepEqual(calls, ['/v2/bot/message/reply']);
  });
}

test.serial('line: a failed call is logged with the recipient, never with the access token', async (t) => {
  interceptLine(t);
  nock('https://api.line.me').post('/v2/bot/message/reply').reply(401, { message: 'Authentication failed due to the following reason: invalid token. Confirm that the access token in the authorization header is valid.' });
  const { request, logs } = await startServer(t, [LineInput.fromCredentials(CREDENTIALS)], { bot: new ScriptedBot([{ text: 'hi' }]) });
  const raw = JSON.stringify(delivery(event(textMessage('hello'))));
  await request('/webhooks/line/webhook', { method: 'POST', headers: { 'content-type': 'application/json', ...sign(raw) }, body: raw });
  await until(() => logs.text.includes('sending the answers failed'));
  t.regex(logs.text, /outgoing call failed/);
  t.regex(logs.text, new RegExp(USER_ID));
  t.false(logs.text.includes(ACCESS_TOKEN), 'the access token is not in the logs');
  t.false(logs.text.includes(CHANNEL_SECRET), 'the channel secret is not in the logs');
});

// --- the pure parts

test('line verifySignature: reasons, never throws', (t) => {
  const raw = '{"destination":"x","events":[]}';
  t.true(verifySignature(raw, sign(raw), CHANNEL_SECRET));
  t.true(verifySignature(Buffer.from(raw), sign(raw), CHANNEL_SECRET));
  t.is(verifySignature(raw, {}, CHANNEL_SECRET), 'missing X-Line-Signature header');
  t.is(verifySignature(raw, { 'x-line-signature': '' }, CHANNEL_SECRET), 'missing X-Line-Signature header');
  t.is(verifySignature(raw, { 'x-line-signature': 'zz' }, CHANNEL_SECRET), 'X-Line-Signature does not match the body');
  t.is(verifySignature(raw, sign(raw), undefined), 'no channel secret configured');
  // base64 is case-sensitive.
  t.is(verifySignature(raw, { 'x-line-signature': sign(raw)['x-line-signature'].toLowerCase() }, CHANNEL_SECRET), 'X-Line-Signature does not match the body');
});

test('line checkEventTime and parseDelivery: messages in order, ignored events with their reason', (t) => {
  t.true(checkEventTime({ timestamp: NOW }, 60, NOW));
  t.regex(String(checkEventTime({ timestamp: NOW - 120_000 }, 60, NOW)), /over the replay window of 60 s/);
  t.true(checkEventTime({ timestamp: 1 }, 0, NOW));
  const options = { replayWindow: 3600, now: NOW };
  const parsed = parseDelivery(delivery(event(textMessage('a')), event({ type: 'beacon', beacon: { hwid: 'd41d8cd98f', type: 'enter' } }), event({ type: 'message', message: { id: '1', type: 'text' } })), options);
  t.deepEqual(parsed.messages.map((m) => m.text), ['a']);
  t.deepEqual(parsed.ignored.map((i) => i.reason), ['beacon event is not handled', 'text message without text']);
  t.deepEqual(parseDelivery(null, options), { messages: [], ignored: [{ reason: 'not a LINE webhook delivery (no events list)' }] });
  t.deepEqual(parseDelivery({ events: [event(textMessage('x'), { source: { type: 'user' } })] }, options).ignored.map((i) => i.reason), ['message event without a source user, group or room id']);
});

test('line splitText: over 5000 characters splits at a space; a word longer than that is cut', (t) => {
  t.deepEqual(splitText('x'.repeat(5001)), ['x'.repeat(5000), 'x']);
  t.deepEqual(splitText('short'), ['short']);
});

test.serial("line: every answer kind of the conformance kit becomes LINE message objects within LINE's limits", async (t) => {
  const { EVERY_ANSWER_KIND } = await import('#src/testing/conformance.js');
  interceptLine(t);
  const bodies: Array<{ messages: Array<Record<string, unknown>> }> = [];
  nock('https://api.line.me')
    .post('/v2/bot/message/push')
    .times(50)
    .reply(200, (_uri, body) => {
      bodies.push(body as (typeof bodies)[number]);
      return SENT;
    });
  const channel = LineInput.fromCredentials({ ...CREDENTIALS, reply_window: 0 });
  for (const { kind, message } of EVERY_ANSWER_KIND) {
    const before = bodies.length;
    const output = channel.outputChannel({ to: USER_ID });
    await output.sendResponse(USER_ID, structuredClone(message));
    await output.flush(USER_ID);
    const sent = bodies.slice(before).flatMap((b) => b.messages);
    t.true(sent.length > 0, `${kind}: something was sent`);
    for (const item of sent) {
      t.is(typeof item.type, 'string', `${kind}: a typed message object`);
      if (item.type === 'text') t.true(String(item.text).length > 0 && String(item.text).length <= 5000, `${kind}: text length`);
      if (item.type === 'template') {
        const template = item.template as { text: string; actions: unknown[] };
        t.true(template.actions.length >= 1 && template.actions.length <= 4 && template.text.length <= 160, `${kind}: template limits`);
      }
    }
  }
  t.true(bodies.every((b) => b.messages.length >= 1 && b.messages.length <= 5), 'one to five messages a call');
});
