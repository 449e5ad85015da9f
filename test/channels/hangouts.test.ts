import test from 'ava';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT } from 'jose';
import { HttpClient, type BotMessage } from 'switchboard';
import HangoutsInput, { ChatCerts, HangoutsOutput, maxAgeMs, parseEvent, verifyToken, REFETCH_COOLDOWN_MS } from '../../channels/hangouts/index.js';
import { runChannelCases, startServer, ScriptedBot, type ChannelCase, type OutgoingCall } from '../harness.js';
import { certificates, chatKey, chatToken, type ChatKey } from './hangouts.tokens.js';

const PROJECT_NUMBER = '487193750562';
const CERTS_URL = 'https://www.googleapis.com/service_accounts/v1/metadata/x509/chat@system.gserviceaccount.com';
/** When this file's events were "sent": `eventTime` is checked against the replay window (1 h by default). */
const SENT = new Date().toISOString().replace('Z', '123Z');

// --- Google's signing keys (two, as Google lists them) and the tokens of each case

const key: ChatKey = chatKey('6f1a4c8e2b9d7035a1e4f6c8b2d0e9a7c5f3b1d4');
const secondKey: ChatKey = chatKey('0b3c5e7a9d1f2468ace13579bdf02468ace13579');
const strangerKey: ChatKey = chatKey('ffffffffffffffffffffffffffffffffffffffff');
const tokens: Record<string, string> = {};

test.before(async () => {
  tokens.valid = await chatToken(key, { aud: PROJECT_NUMBER });
  tokens.secondKey = await chatToken(secondKey, { aud: PROJECT_NUMBER });
  tokens.expired = await chatToken(key, { aud: PROJECT_NUMBER, iat: -70 * 60, exp: -10 * 60 });
  tokens.expiredWithinSkew = await chatToken(key, { aud: PROJECT_NUMBER, iat: -62 * 60, exp: -2 * 60 });
  tokens.notYetValid = await chatToken(key, { aud: PROJECT_NUMBER, extra: { nbf: Math.floor(Date.now() / 1000) + 600 } });
  tokens.wrongAudience = await chatToken(key, { aud: '999999999999' });
  tokens.wrongIssuer = await chatToken(key, { aud: PROJECT_NUMBER, iss: 'https://accounts.google.com' });
  tokens.noExp = await chatToken(key, { aud: PROJECT_NUMBER, exp: undefined });
  tokens.noKid = await chatToken(key, { aud: PROJECT_NUMBER }, { kid: undefined });
  tokens.unknownKey = await chatToken(strangerKey, { aud: PROJECT_NUMBER });
  tokens.wrongKeyKnownKid = await chatToken(strangerKey, { aud: PROJECT_NUMBER }, { kid: key.kid });
  tokens.rs384 = await chatToken(key, { aud: PROJECT_NUMBER }, { alg: 'RS384' });
  const [header, payload] = tokens.valid.split('.');
  tokens.badSignature = `${header}.${payload}.${tokens.wrongAudience.split('.')[2]}`;
  tokens.hs256 = await new SignJWT({})
    .setProtectedHeader({ alg: 'HS256', kid: key.kid })
    .setIssuer('chat@system.gserviceaccount.com')
    .setAudience(PROJECT_NUMBER)
    .setExpirationTime('1h')
    .sign(new TextEncoder().encode(PROJECT_NUMBER));
});

const bearer = (name: string) => () => ({ authorization: `Bearer ${tokens[name]}` });
const sign = bearer('valid');

/** Google's certificates endpoint, as it answers (a JSON map of key id → PEM certificate, cacheable for hours). */
const certsCall = (reply: OutgoingCall['reply'] = undefined): OutgoingCall => ({
  method: 'GET',
  url: CERTS_URL,
  reply: reply ?? { body: certificates(key, secondKey), headers: { 'cache-control': 'public, max-age=22631, must-revalidate, no-transform' } },
});

// --- events shaped as Google Chat's documentation shows them (Event resource; "Interaction events" examples)

const IZUMI = { name: 'users/12345678901234567890', displayName: 'Izumi', avatarUrl: 'https://lh3.googleusercontent.com/a/photo.jpg', email: 'izumi@example.com', type: 'HUMAN', domainId: '0abc12' };
const BOT_USER = { name: 'users/1234567', displayName: 'Switchboard', avatarUrl: 'https://lh3.googleusercontent.com/a/bot.png', type: 'BOT' };
const DM = { name: 'spaces/AAAAdMq1nN0', type: 'DM', spaceType: 'DIRECT_MESSAGE', singleUserBotDm: true };
const ROOM = { name: 'spaces/AAAAAAAAAAA', type: 'ROOM', spaceType: 'SPACE', displayName: 'Customer Support Superstars' };
const MESSAGE_NAME = 'spaces/AAAAdMq1nN0/messages/CCCCCCCCCCC.CCCCCCCCCCC';

function messageEvent(message: Record<string, unknown> = {}, space: Record<string, unknown> = DM, fields: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    type: 'MESSAGE',
    eventTime: SENT,
    space,
    message: {
      name: MESSAGE_NAME,
      sender: IZUMI,
      createTime: SENT,
      text: 'hello',
      argumentText: 'hello',
      thread: { name: `${String(space.name)}/threads/BBBBBBBBBBB` },
      space,
      ...message,
    },
    user: IZUMI,
    common: { userLocale: 'en', hostApp: 'CHAT', timeZone: { id: 'Europe/Berlin', offset: 3600000 } },
    ...fields,
  };
}

/** The bot @mentioned in a space: Chat annotates the mention and strips it from `argumentText`. */
const mentioned = messageEvent(
  {
    text: '@Switchboard Violets are blue',
    argumentText: ' Violets are blue',
    annotations: [{ type: 'USER_MENTION', startIndex: 0, length: 12, userMention: { user: BOT_USER, type: 'MENTION' } }],
  },
  ROOM,
);

function cardClicked(action: Record<string, unknown> | undefined, common: Record<string, unknown> | undefined): Record<string, unknown> {
  return {
    type: 'CARD_CLICKED',
    eventTime: SENT,
    space: DM,
    message: { name: 'spaces/AAAAdMq1nN0/messages/DDDDDDDDDDD.DDDDDDDDDDD', sender: BOT_USER, createTime: SENT, cardsV2: [{ cardId: 'card-1', card: {} }], space: DM },
    user: IZUMI,
    ...(action ? { action } : {}),
    ...(common ? { common: { userLocale: 'en', hostApp: 'CHAT', ...common } } : {}),
  };
}

const membership = (type: 'ADDED_TO_SPACE' | 'REMOVED_FROM_SPACE', space: Record<string, unknown>) => ({ type, eventTime: SENT, space, user: IZUMI });

/** An answer case: a DM message "hello", these answers, this response body. */
const answerCase = (label: string, answers: BotMessage[], response: object, extra: Partial<ChannelCase> = {}): ChannelCase => ({
  label: `hangouts: ${label}`,
  body: messageEvent(),
  sign,
  answers,
  status: 200,
  response,
  received: [{ text: 'hello' }],
  outgoing: [certsCall()],
  ...extra,
});

const refused = (label: string, token: string, fetchesCerts = true): ChannelCase => ({
  label: `hangouts: ${label} → 401, the bot never called`,
  body: messageEvent(),
  sign: bearer(token),
  status: 401,
  response: { error: 'request could not be verified' },
  received: [],
  outgoing: fetchesCerts ? [certsCall()] : [],
});

const buttons = (...pairs: Array<[string, string]>) => pairs.map(([title, payload]) => ({ text: title, onClick: { action: { function: payload } } }));

runChannelCases(test, {
  channel: HangoutsInput,
  credentials: { project_id: PROJECT_NUMBER },
  cases: [
    { label: 'hangouts: GET / is the health route', method: 'GET', path: '/', status: 200, response: { status: 'ok' } },

    // --- incoming
    {
      label: "hangouts: a direct message reaches the bot (sender the user's resource name) and the answer is the response",
      body: messageEvent(),
      sign,
      answers: [{ text: 'Hey there!' }],
      status: 200,
      response: { text: 'Hey there!' },
      received: [
        {
          text: 'hello',
          senderId: IZUMI.name,
          messageId: MESSAGE_NAME,
          inputChannel: 'hangouts',
          metadata: {
            room: null,
            space: { name: DM.name, type: 'DM', spaceType: 'DIRECT_MESSAGE' },
            user: { name: IZUMI.name, displayName: 'Izumi', email: 'izumi@example.com', type: 'HUMAN' },
            thread: 'spaces/AAAAdMq1nN0/threads/BBBBBBBBBBB',
            eventTime: SENT,
          },
        },
      ],
      outgoing: [certsCall()],
    },
    {
      label: 'hangouts: @mentioned in a space, the bot reads argumentText (the mention removed); metadata.room is the space',
      body: mentioned,
      sign,
      answers: [],
      status: 200,
      response: {},
      received: [{ text: 'Violets are blue', senderId: IZUMI.name, metadata: { room: 'Customer Support Superstars' } }],
      outgoing: [certsCall()],
    },
    {
      label: "hangouts: a human's mention is not the bot's: the whole text",
      body: messageEvent({ text: '@Ana hello', argumentText: ' hello', annotations: [{ type: 'USER_MENTION', startIndex: 0, length: 4, userMention: { user: { name: 'users/42', displayName: 'Ana', type: 'HUMAN' }, type: 'MENTION' } }] }),
      sign,
      answers: [],
      status: 200,
      received: [{ text: '@Ana hello' }],
      outgoing: [certsCall()],
    },
    {
      label: 'hangouts: files the user sent are in metadata.attachment',
      body: messageEvent({
        text: '',
        argumentText: '',
        attachment: [{ name: 'spaces/AAAAdMq1nN0/messages/CCCCCCCCCCC.CCCCCCCCCCC/attachments/AAAAAA', contentName: 'report.pdf', contentType: 'application/pdf', downloadUri: 'https://chat.google.com/api/get_attachment_url?url_type=DOWNLOAD_URL', source: 'UPLOADED_CONTENT' }],
      }),
      sign,
      answers: [],
      status: 200,
      received: [{ text: '', metadata: { attachment: [{ name: 'spaces/AAAAdMq1nN0/messages/CCCCCCCCCCC.CCCCCCCCCCC/attachments/AAAAAA', contentName: 'report.pdf', contentType: 'application/pdf', downloadUri: 'https://chat.google.com/api/get_attachment_url?url_type=DOWNLOAD_URL', source: 'UPLOADED_CONTENT' }] } }],
      outgoing: [certsCall()],
    },
    {
      label: "hangouts: a card button click sends the button's function (action.actionMethodName), as Rasa reads it",
      body: cardClicked({ actionMethodName: '/mood_great', parameters: [] }, { invokedFunction: '/mood_great' }),
      sign,
      answers: [{ text: 'Great!' }],
      status: 200,
      response: { text: 'Great!' },
      received: [{ text: '/mood_great', senderId: IZUMI.name, messageId: undefined }],
      outgoing: [certsCall()],
    },
    {
      label: 'hangouts: a card click with only common.invokedFunction',
      body: cardClicked(undefined, { invokedFunction: '/inform{"size":"large"}', parameters: { origin: 'menu' } }),
      sign,
      answers: [],
      status: 200,
      received: [{ text: '/inform{"size":"large"}', metadata: { parameters: { origin: 'menu' } } }],
      outgoing: [certsCall()],
    },
    {
      label: 'hangouts: a card click without an action is answered {} and ignored',
      body: cardClicked(undefined, undefined),
      sign,
      status: 200,
      response: {},
      received: [],
      outgoing: [certsCall()],
    },
    {
      label: 'hangouts: added to a direct message → /user_added, and the welcome is the response',
      body: membership('ADDED_TO_SPACE', DM),
      sign,
      answers: [{ text: 'Thanks for adding me!' }],
      status: 200,
      response: { text: 'Thanks for adding me!' },
      received: [{ text: '/user_added', senderId: IZUMI.name, metadata: { room: null } }],
      outgoing: [certsCall()],
    },
    {
      label: 'hangouts: added to a space → /room_added',
      body: membership('ADDED_TO_SPACE', ROOM),
      sign,
      answers: [{ text: 'Hello, Superstars' }],
      status: 200,
      response: { text: 'Hello, Superstars' },
      received: [{ text: '/room_added', metadata: { room: 'Customer Support Superstars' } }],
      outgoing: [certsCall()],
    },
    {
      label: 'hangouts: removed from a space → /bot_removed; the response is {} (Chat posts nothing there)',
      body: membership('REMOVED_FROM_SPACE', ROOM),
      sign,
      answers: [{ text: 'bye' }],
      status: 200,
      response: {},
      received: [{ text: '/bot_removed' }],
      outgoing: [certsCall()],
    },
    {
      label: 'hangouts: another event type is answered {} and ignored',
      body: { type: 'WIDGET_UPDATED', eventTime: SENT, space: DM, user: IZUMI },
      sign,
      status: 200,
      response: {},
      received: [],
      outgoing: [certsCall()],
    },
    {
      label: 'hangouts: a redelivered message reaches the bot once; the repeat is answered {}',
      body: messageEvent(),
      sign,
      repeat: 2,
      answers: [{ text: 'once' }],
      status: 200,
      response: {},
      received: [{ text: 'hello', messageId: MESSAGE_NAME }],
      outgoing: [certsCall()],
    },
    {
      label: 'hangouts: an event older than the replay window is answered {} and ignored',
      body: messageEvent({}, DM, { eventTime: new Date(Date.now() - 2 * 3600_000).toISOString() }),
      sign,
      status: 200,
      response: {},
      received: [],
      outgoing: [certsCall()],
    },

    // --- outgoing: the one Chat message of the response
    answerCase('two texts are one message, at a blank line', [{ text: 'Hi!' }, { text: 'How are you?' }], { text: 'Hi!\n\nHow are you?' }),
    answerCase('a text with blank lines keeps them', [{ text: 'one\n\ntwo' }], { text: 'one\n\ntwo' }),
    answerCase('no answer is {} (no message)', [], {}),
    answerCase('buttons are a card: the text, then a button list whose functions are the payloads', [{ text: 'How do you feel?', buttons: [{ title: 'great', payload: '/mood_great' }, { title: 'sad', payload: '/mood_unhappy' }] }], {
      cardsV2: [{ cardId: 'card-1', card: { sections: [{ widgets: [{ textParagraph: { text: 'How do you feel?' } }, { buttonList: { buttons: buttons(['great', '/mood_great'], ['sad', '/mood_unhappy']) } }] }] } }],
    }),
    answerCase('a link button opens its URL', [{ text: 'Docs', buttons: [{ title: 'Open', url: 'https://example.com/docs' }] }], {
      cardsV2: [{ cardId: 'card-1', card: { sections: [{ widgets: [{ textParagraph: { text: 'Docs' } }, { buttonList: { buttons: [{ text: 'Open', onClick: { openLink: { url: 'https://example.com/docs' } } }] } }] }] } }],
    }),
    answerCase('quick replies are buttons', [{ text: 'Pick', quick_replies: [{ title: 'yes', payload: '/affirm' }] }], {
      cardsV2: [{ cardId: 'card-1', card: { sections: [{ widgets: [{ textParagraph: { text: 'Pick' } }, { buttonList: { buttons: buttons(['yes', '/affirm']) } }] }] } }],
    }),
    answerCase('an image is an image card, after the text', [{ text: 'Here is something to cheer you up:', image: 'https://i.imgur.com/nGF1K8f.jpg' }], {
      text: 'Here is something to cheer you up:',
      cardsV2: [{ cardId: 'card-1', card: { sections: [{ widgets: [{ image: { imageUrl: 'https://i.imgur.com/nGF1K8f.jpg' } }] }] } }],
    }),
    answerCase('a text after a card becomes a text card, so the order holds', [{ image: 'https://example.com/a.png' }, { text: 'Did that help?' }], {
      cardsV2: [
        { cardId: 'card-1', card: { sections: [{ widgets: [{ image: { imageUrl: 'https://example.com/a.png' } }] }] } },
        { cardId: 'card-2', card: { sections: [{ widgets: [{ textParagraph: { text: 'Did that help?' } }] }] } },
      ],
    }),
    answerCase('elements are cards: header, image, buttons', [{ elements: [{ title: 'Pizza', subtitle: 'Margherita', image_url: 'https://example.com/pizza.png', buttons: [{ title: 'Order', payload: '/order' }] }, { title: 'Salad' }] }], {
      cardsV2: [
        { cardId: 'card-1', card: { header: { title: 'Pizza', subtitle: 'Margherita' }, sections: [{ widgets: [{ image: { imageUrl: 'https://example.com/pizza.png', altText: 'Pizza' } }, { buttonList: { buttons: buttons(['Order', '/order']) } }] }] } },
        { cardId: 'card-2', card: { header: { title: 'Salad' } } },
      ],
    }),
    answerCase('an attachment falls back to text', [{ attachment: 'https://example.com/report.pdf' }], { text: 'Attachment: https://example.com/report.pdf' }),
    answerCase(
      'custom JSON is a Chat message merged in: its text, its cards (ids kept), its other fields',
      [{ text: 'Before' }, { custom: { text: 'Custom', cardsV2: [{ cardId: 'poll', card: { header: { title: 'Poll' } } }], privateMessageViewer: { name: IZUMI.name } } }],
      { text: 'Before\n\nCustom', cardsV2: [{ cardId: 'poll', card: { header: { title: 'Poll' } } }], privateMessageViewer: { name: IZUMI.name } },
    ),
    answerCase('legacy cards (v1) in custom JSON pass as they are, as Rasa sends them', [{ custom: { cards: [{ sections: [{ widgets: [{ textParagraph: { text: 'v1' } }] }] }] } }], {
      cards: [{ sections: [{ widgets: [{ textParagraph: { text: 'v1' } }] }] }],
    }),
    answerCase('custom JSON that is not an object falls back to JSON text', [{ custom: ['a', 1] }], { text: '["a",1]' }),
    answerCase(
      'a text over 4096 characters: the first part in text, the rest in text cards',
      [{ text: `${'a'.repeat(4000)} ${'b'.repeat(200)}` }],
      { text: 'a'.repeat(4000), cardsV2: [{ cardId: 'card-1', card: { sections: [{ widgets: [{ textParagraph: { text: 'b'.repeat(200) } }] }] } }] },
    ),

    // --- verification
    { label: 'hangouts: missing Authorization → 401, the bot never called', body: messageEvent(), status: 401, response: { error: 'request could not be verified' }, received: [], outgoing: [] },
    { label: 'hangouts: a Basic Authorization → 401', body: messageEvent(), headers: { authorization: 'Basic dXNlcjpwYXNz' }, status: 401, received: [], outgoing: [] },
    { label: 'hangouts: a Bearer that is not a JWT → 401', body: messageEvent(), headers: { authorization: 'Bearer AbCdEf123456' }, status: 401, received: [], outgoing: [] },
    refused('a token whose header names no key (kid)', 'noKid', false),
    refused('an expired token (10 minutes ago)', 'expired'),
    refused('a token not valid for 10 more minutes', 'notYetValid'),
    refused('a token for another project', 'wrongAudience'),
    refused('a token from another issuer', 'wrongIssuer'),
    refused('a token without an expiry (exp)', 'noExp'),
    refused("a token signed by a key Google's certificates do not list", 'unknownKey'),
    refused("a token signed by another key under a listed key's id", 'wrongKeyKnownKid'),
    refused('a token whose signature does not match', 'badSignature'),
    refused('an RS384 token', 'rs384', false),
    refused('an HS256 token signed with the project number', 'hs256', false),
    {
      label: 'hangouts: a token expired less than 5 minutes ago is accepted (clock skew)',
      body: messageEvent(),
      sign: bearer('expiredWithinSkew'),
      answers: [],
      status: 200,
      received: [{ text: 'hello' }],
      outgoing: [certsCall()],
    },
    {
      label: "hangouts: a token of Google's second listed key is accepted",
      body: messageEvent(),
      sign: bearer('secondKey'),
      answers: [],
      status: 200,
      received: [{ text: 'hello' }],
      outgoing: [certsCall()],
    },

    // --- Google's certificates endpoint failing: 429 and 5xx retried, other 4xx not; without keys, 401
    {
      label: 'hangouts: the certificates answer 503, then 200: retried, the event accepted',
      body: messageEvent(),
      sign,
      answers: [],
      status: 200,
      received: [{ text: 'hello' }],
      outgoing: [certsCall({ status: 503, body: 'Service Unavailable' }), certsCall()],
    },
    {
      label: 'hangouts: the certificates answer 500, then 200: retried (a GET is safe to repeat)',
      body: messageEvent(),
      sign,
      answers: [],
      status: 200,
      received: [{ text: 'hello' }],
      outgoing: [certsCall({ status: 500, body: { error: { code: 500, message: 'Internal error', status: 'INTERNAL' } } }), certsCall()],
    },
    {
      label: 'hangouts: the certificates answer 429 with Retry-After, then 200: retried',
      body: messageEvent(),
      sign,
      answers: [],
      status: 200,
      received: [{ text: 'hello' }],
      outgoing: [certsCall({ status: 429, body: { error: { code: 429, status: 'RESOURCE_EXHAUSTED' } }, headers: { 'retry-after': '0' } }), certsCall()],
    },
    {
      label: 'hangouts: the certificates answer 404: not retried, 401',
      body: messageEvent(),
      sign,
      status: 401,
      received: [],
      outgoing: [certsCall({ status: 404, body: { error: { code: 404, message: 'Not Found', status: 'NOT_FOUND' } } })],
    },
    {
      label: 'hangouts: the certificates are not a JSON object of certificates: 401',
      body: messageEvent(),
      sign,
      status: 401,
      received: [],
      outgoing: [certsCall({ body: { [key.kid]: 'not a certificate' } })],
    },

    // --- malformed input
    { label: 'hangouts: malformed JSON with a valid token → 400', body: '{"type": "MESSAGE", ', headers: { 'content-type': 'application/json' }, sign, status: 400, received: [], outgoing: [certsCall()] },
    { label: 'hangouts: malformed JSON without a token → 401 before any parsing', body: '{"type": "MESSAGE", ', headers: { 'content-type': 'application/json' }, status: 401, received: [], outgoing: [] },
    { label: 'hangouts: a JSON object that is not an event (no type) → 400', body: { text: 'hi' }, sign, status: 400, received: [], outgoing: [certsCall()] },
    { label: 'hangouts: a MESSAGE without a message → 400', body: { type: 'MESSAGE', eventTime: SENT, space: DM, user: IZUMI }, sign, status: 400, received: [], outgoing: [certsCall()] },
  ],
});

// --- the certificates: served by a local server, as Google serves them, to count the fetches

interface KeyServer {
  url: string;
  hits: () => number;
  serve: (body: unknown, headers?: Record<string, string>, status?: number) => void;
}

async function keyServer(t: import('ava').ExecutionContext): Promise<KeyServer> {
  let hits = 0;
  let answer = { status: 200, body: {} as unknown, headers: {} as Record<string, string> };
  const server: Server = createServer((req, res) => {
    hits++;
    res.writeHead(answer.status, { 'content-type': 'application/json; charset=UTF-8', ...answer.headers });
    res.end(JSON.stringify(answer.body));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    hits: () => hits,
    serve: (body, headers = {}, status = 200) => {
      answer = { status, body, headers };
    },
  };
}

const quietHttp = () => new HttpClient({ minDelayMs: 1, maxDelayMs: 2, retries: 1 });

test('hangouts certificates: kept for max-age, shared by concurrent requests, fetched again after it', async (t) => {
  const server = await keyServer(t);
  server.serve(certificates(key), { 'cache-control': 'public, max-age=600' });
  let now = 1_000_000;
  const certs = new ChatCerts(quietHttp(), `${server.url}/certs`, { now: () => now });
  const [a, b] = await Promise.all([certs.key(key.kid), certs.key(key.kid)]);
  t.truthy(a);
  t.is(a, b);
  t.is(server.hits(), 1, 'one fetch for concurrent requests');
  now += 599_000;
  await certs.key(key.kid);
  t.is(server.hits(), 1, 'within max-age: no fetch');
  now += 2_000;
  await certs.key(key.kid);
  t.is(server.hits(), 2, 'past max-age: fetched again');
});

test('hangouts certificates: an unknown kid fetches again (Google rotated), at most every 30 s', async (t) => {
  const server = await keyServer(t);
  server.serve(certificates(key), { 'cache-control': 'public, max-age=20000' });
  let now = 1_000_000;
  const certs = new ChatCerts(quietHttp(), `${server.url}/certs`, { now: () => now });
  t.truthy(await certs.key(key.kid));
  server.serve(certificates(key, secondKey), { 'cache-control': 'public, max-age=20000' });
  t.is(await certs.key(secondKey.kid), undefined, 'within the cooldown: not fetched again');
  t.is(server.hits(), 1);
  now += REFETCH_COOLDOWN_MS;
  t.truthy(await certs.key(secondKey.kid), 'after it: fetched again and found');
  t.is(server.hits(), 2);
  now += REFETCH_COOLDOWN_MS;
  t.is(await certs.key(strangerKey.kid), undefined);
  t.is(await certs.key(strangerKey.kid), undefined);
  t.is(server.hits(), 3, 'a flood of unknown kids costs one fetch per cooldown');
});

test('hangouts certificates: a failed refresh keeps the keys held; without any, it throws', async (t) => {
  const server = await keyServer(t);
  server.serve(certificates(key), { 'cache-control': 'max-age=60' });
  let now = 1_000_000;
  const certs = new ChatCerts(quietHttp(), `${server.url}/certs`, { now: () => now });
  t.truthy(await certs.key(key.kid));
  server.serve({ error: 'down' }, {}, 500);
  now += 61_000;
  t.truthy(await certs.key(key.kid), 'the held key still verifies');
  const empty = new ChatCerts(quietHttp(), `${server.url}/certs`, { now: () => now });
  await t.throwsAsync(empty.key(key.kid));
});

test('hangouts maxAgeMs: read from Cache-Control, bounded to 1 min … 24 h', (t) => {
  t.is(maxAgeMs('public, max-age=22631, must-revalidate, no-transform'), 22_631_000);
  t.is(maxAgeMs('max-age=5'), 60_000);
  t.is(maxAgeMs('max-age=999999'), 86_400_000);
  t.is(maxAgeMs('no-cache'), undefined);
  t.is(maxAgeMs(undefined), undefined);
});

test('hangouts: certificates are read from api_url once and kept across requests', async (t) => {
  const server = await keyServer(t);
  server.serve(certificates(key), { 'cache-control': 'public, max-age=20000' });
  const channel = HangoutsInput.fromCredentials({ project_id: PROJECT_NUMBER, api_url: server.url });
  const { request } = await startServer(t, [channel], { bot: new ScriptedBot([{ text: 'ok' }]) });
  const post = (id: string) => request('/webhooks/hangouts/webhook', { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${tokens.valid}` }, body: JSON.stringify(messageEvent({ name: `${MESSAGE_NAME}.${id}` })) });
  const first = await post('1');
  t.is(first.status, 200);
  t.deepEqual(first.json, { text: 'ok' });
  t.is((await post('2')).status, 200);
  t.is(server.hits(), 1, 'the certificates were fetched once');
});

test('hangouts verifyToken: reasons, never throws', async (t) => {
  const getKey = async () => (await import('jose')).importX509(key.certificate, 'RS256');
  t.true(await verifyToken({ authorization: `Bearer ${tokens.valid}` }, getKey, { projectId: PROJECT_NUMBER }));
  t.is(await verifyToken({}, getKey, { projectId: PROJECT_NUMBER }), 'missing Authorization header');
  t.is(await verifyToken({ authorization: 'Basic x' }, getKey, { projectId: PROJECT_NUMBER }), 'Authorization is not a Bearer token');
  t.is(await verifyToken({ authorization: `Bearer ${tokens.expired}` }, getKey, { projectId: PROJECT_NUMBER }), 'token expired');
  t.regex(String(await verifyToken({ authorization: `Bearer ${tokens.wrongAudience}` }, getKey, { projectId: PROJECT_NUMBER })), /"aud"/);
  t.regex(String(await verifyToken({ authorization: `Bearer ${tokens.wrongIssuer}` }, getKey, { projectId: PROJECT_NUMBER })), /"iss"/);
  t.true(await verifyToken({ authorization: `Bearer ${tokens.expired}` }, getKey, { projectId: PROJECT_NUMBER, now: new Date(Date.now() - 3600_000) }), 'the clock is injectable');
  const throwing = async () => {
    throw new Error('certificates unreachable');
  };
  t.regex(String(await verifyToken({ authorization: `Bearer ${tokens.valid}` }, throwing, { projectId: PROJECT_NUMBER })), /certificates unreachable/);
});

test('hangouts parseEvent: configured intents, rooms by spaceType, invalid events', (t) => {
  const intents = { userAdded: '/greet', roomAdded: '/greet_room', removed: '/goodbye' };
  const text = (event: unknown) => {
    const parsed = parseEvent(event, intents);
    return parsed.kind === 'message' ? parsed.message.text : parsed.kind;
  };
  t.is(text(membership('ADDED_TO_SPACE', DM)), '/greet');
  t.is(text(membership('ADDED_TO_SPACE', { name: 'spaces/X', spaceType: 'GROUP_CHAT' })), '/greet_room');
  t.is(text(membership('ADDED_TO_SPACE', { name: 'spaces/X', spaceType: 'SPACE' })), '/greet_room');
  t.is(text(membership('REMOVED_FROM_SPACE', DM)), '/goodbye');
  t.is(text(null), 'invalid');
  t.is(text([]), 'invalid');
  t.is(text({ type: 7 }), 'invalid');
  t.is(text({ type: 'MESSAGE', message: 'hello' }), 'invalid');
  t.is(text({ type: 'MESSAGE', message: {} }), '');
});

test('hangouts: credentials — project_id required unless allow_unverified, digits only; Rasa defaults', (t) => {
  t.throws(() => HangoutsInput.fromCredentials({}), { message: /project_id/ });
  t.throws(() => HangoutsInput.fromCredentials({ project_id: 'my-chat-app' }), { message: /project_id.*project number/ });
  const numeric = HangoutsInput.fromCredentials({ project_id: 487193750562 });
  t.is(numeric.credentials.project_id, '487193750562', 'a YAML number is read as the string it is');
  const open = HangoutsInput.fromCredentials({ allow_unverified: true });
  t.true(open.unverified);
  t.is(open.credentials.hangouts_user_added_intent_name, '/user_added');
  t.is(open.credentials.hangouts_room_added_intent_name, '/room_added');
  t.is(open.credentials.hangouts_removed_intent_name, '/bot_removed');
  t.is(open.credentials.api_url, 'https://www.googleapis.com');
});

test('hangouts: with allow_unverified, events are taken without a token', async (t) => {
  const channel = HangoutsInput.fromCredentials({ allow_unverified: true });
  const { request, bot } = await startServer(t, [channel], { bot: new ScriptedBot([{ text: 'hi' }]) });
  const response = await request('/webhooks/hangouts/webhook', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(messageEvent()) });
  t.is(response.status, 200);
  t.deepEqual(response.json, { text: 'hi' });
  t.is(bot.received.length, 1);
});

test('hangouts: a failing bot is answered 200 with what was said (no apology configured: {}), as Rasa answers; Chat shows an error for anything else', async (t) => {
  const channel = HangoutsInput.fromCredentials({ allow_unverified: true });
  const bot = new ScriptedBot();
  (bot as unknown as { handle: () => Promise<never> }).handle = async () => {
    throw new Error('bot down');
  };
  const { request } = await startServer(t, [channel], { bot });
  const response = await request('/webhooks/hangouts/webhook', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(messageEvent()) });
  t.is(response.status, 200);
  t.deepEqual(response.json, {});
});

test('hangouts output: the message is built from the answers in order', async (t) => {
  const output = new HangoutsOutput();
  t.true(output.empty);
  t.deepEqual(output.message(), {});
  await output.sendResponse('u', { text: 'a', buttons: [] });
  t.deepEqual(output.message(), { text: 'a' });
});

test('hangouts: an answer over 32,000 bytes is still sent, and a warning says Chat will not post it', async (t) => {
  const channel = HangoutsInput.fromCredentials({ allow_unverified: true });
  const { request, logs } = await startServer(t, [channel], { bot: new ScriptedBot([{ text: 'word '.repeat(8000) }]) });
  const response = await request('/webhooks/hangouts/webhook', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(messageEvent()) });
  t.is(response.status, 200);
  t.is(((response.json as { text: string }).text).length <= 4096, true);
  t.regex(logs.text, /over Google Chat's 32000 bytes per message/);
});
