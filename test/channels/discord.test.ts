import test, { type ExecutionContext } from 'ava';
import nock from 'nock';
import { generateKeyPairSync, sign as ed25519Sign, type KeyObject } from 'node:crypto';
import DiscordInput, { DiscordOutput, actionRows, parseInteraction, publicKeyFromHex, splitText, verifyDiscordRequest } from '../../channels/discord/index.js';
import { HttpClient, silentLogger } from 'switchboard';
import { runChannelCases, startServer, ScriptedBot, type OutgoingCall } from '../harness.js';

/** The application's key pair: Discord signs with the private half; the Developer Portal shows the public one as hex. */
function keyPair(): { privateKey: KeyObject; publicHex: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const jwk = publicKey.export({ format: 'jwk' }) as { x: string };
  return { privateKey, publicHex: Buffer.from(jwk.x, 'base64url').toString('hex') };
}

const APP = keyPair();
const OTHER = keyPair();
const APPLICATION_ID = '290926444748734465';
const GUILD_ID = '290926798626357999';
const CHANNEL_ID = '645027906669510667';
const USER_ID = '53908232506183680';
const DM_USER_ID = '80351110224678912';
const CREDENTIALS = { public_key: APP.publicHex, application_id: APPLICATION_ID };

const nowS = () => Math.floor(Date.now() / 1000);

/** Signs as Discord does: hex Ed25519 of the timestamp followed by the raw body. */
function signWith(privateKey: KeyObject, timestamp = () => String(nowS())) {
  return (raw: string) => {
    const ts = timestamp();
    return { 'x-signature-timestamp': ts, 'x-signature-ed25519': ed25519Sign(null, Buffer.from(ts + raw), privateKey).toString('hex') };
  };
}
const sign = signWith(APP.privateKey);

/** A guild member who invoked the interaction (Interaction → member), shaped as Discord's example. */
const member = {
  user: { id: USER_ID, username: 'Mason', avatar: 'a_d5efa99b3eeaa7dd43acca82f5692432', discriminator: '1337', public_flags: 131141 },
  roles: ['539082325061836999'],
  premium_since: null,
  permissions: '2147483647',
  pending: false,
  nick: null,
  mute: false,
  joined_at: '2017-03-13T19:19:14.040000+00:00',
  deaf: false,
};

/** A slash command interaction (type 2) in a server, as in Discord's "Slash Commands: example interaction". */
function command(id: string, options: object[] | undefined, name = 'ask', extra: object = {}): object {
  return {
    type: 2,
    token: `aW50ZXJhY3Rpb246${id}OkRJU0NPUkRfVE9LRU4`,
    member,
    id,
    application_id: APPLICATION_ID,
    guild_id: GUILD_ID,
    app_permissions: '442368',
    guild_locale: 'en-US',
    locale: 'en-US',
    data: { ...(options ? { options } : {}), type: 1, name, id: '771825006014889984' },
    channel_id: CHANNEL_ID,
    version: 1,
    ...extra,
  };
}

const ask = (id: string, text: string) => command(id, [{ type: 3, name: 'text', value: text }]);

/** A button click (type 3) on one of our follow-up messages, as in Discord's message component example. */
function click(id: string, data: object, extra: object = {}): object {
  return {
    version: 1,
    type: 3,
    token: `aW50ZXJhY3Rpb246${id}OkRJU0NPUkRfVE9LRU4`,
    message: { type: 0, id: '1115683452853063751', channel_id: CHANNEL_ID, content: 'How are you?', author: { id: APPLICATION_ID, username: 'Switchboard', bot: true }, components: [] },
    member,
    id,
    guild_id: GUILD_ID,
    data,
    channel_id: CHANNEL_ID,
    application_id: APPLICATION_ID,
    app_permissions: '442368',
    locale: 'en-US',
    ...extra,
  };
}

const tokenOf = (id: string) => `aW50ZXJhY3Rpb246${id}OkRJU0NPUkRfVE9LRU4`;
const webhook = (id: string, base = 'https://discord.com/api') => `${base}/v10/webhooks/${APPLICATION_ID}/${tokenOf(id)}`;

/** What Discord answers a follow-up: the message it created. */
const created = { id: '1115683452853063752', type: 0, channel_id: CHANNEL_ID, content: '', author: { id: APPLICATION_ID, username: 'Switchboard', bot: true }, flags: 0 };

const NO_MENTIONS = { parse: [] };

/** One follow-up message: no Authorization header (the token in the path is the authority), JSON, this body. */
function followUp(id: string, body: object, extra: Partial<OutgoingCall> = {}): OutgoingCall {
  return { url: webhook(id), headers: { authorization: '', 'content-type': 'application/json' }, body, reply: { body: created }, ...extra };
}
const text = (id: string, content: string, extra: Partial<OutgoingCall> = {}) => followUp(id, { content, allowed_mentions: NO_MENTIONS }, extra);

const row = (...components: object[]) => ({ type: 1, components });
const button = (label: string, customId: string) => ({ type: 2, style: 1, label, custom_id: customId });

/** Discord's error answers (Reference → Error messages; Rate limits). */
const rateLimited = { message: 'You are being rate limited.', retry_after: 0.01, global: false };
const invalidForm = { code: 50035, errors: { content: { _errors: [{ code: 'BASE_TYPE_MAX_LENGTH', message: 'Must be 2000 or fewer in length.' }] } }, message: 'Invalid Form Body' };
const invalidToken = { message: 'Invalid Webhook Token', code: 50027 };

runChannelCases(test, {
  channel: DiscordInput,
  credentials: CREDENTIALS,
  cases: [
    { label: 'discord: GET / is the health route', method: 'GET', path: '/', status: 200, response: { status: 'ok' } },
    {
      label: 'discord: a signed PING is answered PONG ({"type":1}) and never reaches the bot',
      body: { id: '1115690000000000001', application_id: APPLICATION_ID, type: 1, token: 'ping-token', version: 1 },
      sign,
      status: 200,
      response: (t: ExecutionContext, r: { json: unknown; headers: Headers }) => {
        t.deepEqual(r.json, { type: 1 });
        t.regex(r.headers.get('content-type') ?? '', /^application\/json/);
      },
      received: [],
      outgoing: [],
    },

    // --- verification fails closed (Discord sends badly signed requests itself when the endpoint URL is saved)
    { label: 'discord: an unsigned PING is 401', body: { type: 1 }, status: 401, received: [], outgoing: [] },
    { label: 'discord: an unsigned command is 401 and never reaches the bot', body: ask('1115690000000000002', 'hi'), status: 401, received: [], outgoing: [] },
    {
      label: 'discord: a signature by another key is 401',
      body: ask('1115690000000000003', 'hi'),
      sign: signWith(OTHER.privateKey),
      status: 401,
      received: [],
    },
    {
      label: 'discord: a signature of another body (tampered text) is 401',
      body: ask('1115690000000000004', 'tampered'),
      sign: (raw) => sign(raw.replace('tampered', 'original')),
      status: 401,
      received: [],
    },
    {
      label: 'discord: a signature without its timestamp header is 401',
      body: ask('1115690000000000005', 'hi'),
      sign: (raw) => ({ 'x-signature-ed25519': sign(raw)['x-signature-ed25519'] }),
      status: 401,
      received: [],
    },
    {
      label: 'discord: a signature over another timestamp than the header says is 401',
      body: ask('1115690000000000006', 'hi'),
      sign: (raw) => ({ ...sign(raw), 'x-signature-timestamp': String(nowS() - 1) }),
      status: 401,
      received: [],
    },
    {
      label: 'discord: a correctly signed request from 10 minutes ago (a replay) is 401',
      body: ask('1115690000000000007', 'hi'),
      sign: signWith(APP.privateKey, () => String(nowS() - 600)),
      status: 401,
      received: [],
    },
    {
      label: 'discord: a correctly signed request dated 10 minutes ahead is 401',
      body: ask('1115690000000000008', 'hi'),
      sign: signWith(APP.privateKey, () => String(nowS() + 600)),
      status: 401,
      received: [],
    },
    {
      label: 'discord: a signature that is not 64 bytes of hex is 401',
      body: ask('1115690000000000009', 'hi'),
      sign: (raw) => ({ ...sign(raw), 'x-signature-ed25519': 'zz' }),
      status: 401,
      received: [],
    },

    // --- incoming kinds
    {
      label: 'discord: /ask text reaches the bot; acknowledged with type 5; the answer is a follow-up message on the interaction webhook',
      roundTrip: true,
      body: ask('786008729715212338', 'The Gitrog Monster'),
      sign,
      answers: [{ text: 'Hey there!' }],
      status: 200,
      response: { type: 5 },
      received: [
        {
          text: 'The Gitrog Monster',
          senderId: USER_ID,
          messageId: '786008729715212338',
          inputChannel: 'discord',
          metadata: { type: 'command', command: 'ask', application_id: APPLICATION_ID, guild_id: GUILD_ID, channel_id: CHANNEL_ID, username: 'Mason', locale: 'en-US' },
        },
      ],
      outgoing: [text('786008729715212338', 'Hey there!')],
    },
    {
      label: 'discord: /ask in a DM with the bot (user, not member) reaches the bot as that user',
      roundTrip: true,
      body: command('786008729715212339', [{ type: 3, name: 'text', value: 'hello in private' }], 'ask', {
        member: undefined,
        guild_id: undefined,
        user: { id: DM_USER_ID, username: 'Nelly', discriminator: '0', global_name: 'Nelly', avatar: null },
        context: 1,
      }),
      sign,
      answers: [{ text: 'hello' }],
      status: 200,
      response: { type: 5 },
      received: [{ text: 'hello in private', senderId: DM_USER_ID, metadata: { type: 'command', username: 'Nelly', channel_id: CHANNEL_ID } }],
      outgoing: [text('786008729715212339', 'hello')],
    },
    {
      label: 'discord: /ask without its text option reaches the bot with empty text',
      body: command('786008729715212340', undefined),
      sign,
      answers: [{ text: 'ask me something' }],
      status: 200,
      response: { type: 5 },
      received: [{ text: '' }],
      outgoing: [text('786008729715212340', 'ask me something')],
    },
    {
      label: 'discord: a button click: its custom_id is the text; acknowledged with type 6 (DEFERRED_UPDATE_MESSAGE)',
      roundTrip: true,
      body: click('846462639134605312', { custom_id: '/mood_great', component_type: 2 }),
      sign,
      answers: [{ text: 'Great, carry on!' }],
      status: 200,
      response: { type: 6 },
      received: [
        {
          text: '/mood_great',
          senderId: USER_ID,
          messageId: '846462639134605312',
          metadata: { type: 'component', component_type: 2, custom_id: '/mood_great', message_id: '1115683452853063751', guild_id: GUILD_ID },
        },
      ],
      outgoing: [text('846462639134605312', 'Great, carry on!')],
    },
    {
      label: 'discord: a string select: the chosen value is the text, the values and custom_id in metadata',
      body: click('846462639134605313', { custom_id: 'mood_select', component_type: 3, values: ['/mood_unhappy'] }),
      sign,
      status: 200,
      response: { type: 6 },
      received: [{ text: '/mood_unhappy', metadata: { type: 'component', custom_id: 'mood_select', values: ['/mood_unhappy'] } }],
      outgoing: [text('846462639134605313', 'ok')],
    },
    {
      label: 'discord: another slash command is answered with an ephemeral notice and never reaches the bot',
      body: command('786008729715212341', [{ type: 3, name: 'cardname', value: 'The Gitrog Monster' }], 'cardsearch'),
      sign,
      status: 200,
      response: { type: 4, data: { content: '/cardsearch is not handled here; use /ask.', flags: 64 } },
      received: [],
      outgoing: [],
    },
    {
      label: 'discord: autocomplete (type 4) gets no choices, never the bot',
      body: command('786008729715212342', [{ type: 3, name: 'text', value: 'Gi', focused: true }], 'ask', { type: 4 }),
      sign,
      status: 200,
      response: { type: 8, data: { choices: [] } },
      received: [],
    },
    {
      label: 'discord: a modal submit (type 5) is answered with an ephemeral notice, never the bot',
      body: click('846462639134605314', { custom_id: 'feedback_modal', components: [] }, { type: 5 }),
      sign,
      status: 200,
      response: { type: 4, data: { content: 'This interaction is not supported.', flags: 64 } },
      received: [],
    },
    {
      label: 'discord: a signed interaction without a token is 400',
      body: { ...(ask('786008729715212343', 'hi') as Record<string, unknown>), token: undefined },
      sign,
      status: 400,
      response: { error: 'interaction without a token' },
      received: [],
    },
    {
      label: 'discord: the same interaction delivered twice reaches the bot once',
      body: ask('786008729715212344', 'twice'),
      sign,
      repeat: 2,
      answers: [{ text: 'once' }],
      status: 200,
      response: { type: 5 },
      received: [{ text: 'twice' }],
      outgoing: [text('786008729715212344', 'once')],
    },

    // --- outgoing kinds
    {
      label: 'discord: paragraphs are follow-ups of their own; a text over 2000 characters is split at a space',
      body: ask('786008729715212345', 'long'),
      sign,
      answers: [{ text: `first\n\n${'word '.repeat(500)}end` }],
      status: 200,
      outgoing: [
        text('786008729715212345', 'first'),
        text('786008729715212345', `${'word '.repeat(399)}word`),
        text('786008729715212345', `${'word '.repeat(100)}end`),
      ],
    },
    {
      label: 'discord: buttons are an action row of style-1 buttons (custom_id = payload) under the text',
      roundTrip: true,
      body: ask('786008729715212346', 'hi'),
      sign,
      answers: [{ text: 'How are you?', buttons: [{ title: 'great', payload: '/mood_great' }, { title: 'sad', payload: '/mood_unhappy' }] }],
      status: 200,
      outgoing: [followUp('786008729715212346', { content: 'How are you?', components: [row(button('great', '/mood_great'), button('sad', '/mood_unhappy'))], allowed_mentions: NO_MENTIONS })],
    },
    {
      label: 'discord: 7 buttons are two rows (5 + 2); a link button is style 5 with its url; labels cut to 80 characters',
      body: ask('786008729715212347', 'hi'),
      sign,
      answers: [
        {
          text: 'Pick one',
          buttons: [
            ...['1', '2', '3', '4', '5', '6'].map((n) => ({ title: n === '6' ? 'x'.repeat(90) : `option ${n}`, payload: `/pick{"n":${n}}` })),
            { title: 'Docs', url: 'https://example.com/docs' },
          ],
        },
      ],
      status: 200,
      outgoing: [
        followUp('786008729715212347', {
          content: 'Pick one',
          components: [
            row(...['1', '2', '3', '4', '5'].map((n) => button(`option ${n}`, `/pick{"n":${n}}`))),
            row(button('x'.repeat(80), '/pick{"n":6}'), { type: 2, style: 5, label: 'Docs', url: 'https://example.com/docs' }),
          ],
          allowed_mentions: NO_MENTIONS,
        }),
      ],
    },
    {
      label: 'discord: quick replies are buttons too',
      body: ask('786008729715212348', 'hi'),
      sign,
      answers: [{ text: 'Yes?', quick_replies: [{ title: 'yes', payload: '/affirm' }] }],
      status: 200,
      outgoing: [followUp('786008729715212348', { content: 'Yes?', components: [row(button('yes', '/affirm'))], allowed_mentions: NO_MENTIONS })],
    },
    {
      label: 'discord: more than 25 buttons fall back to the numbered text list',
      body: ask('786008729715212349', 'hi'),
      sign,
      answers: [{ text: 'Many', buttons: Array.from({ length: 26 }, (_, i) => ({ title: `b${i + 1}`, payload: `/b${i + 1}` })) }],
      status: 200,
      outgoing: [text('786008729715212349', ['Many', ...Array.from({ length: 26 }, (_, i) => `${i + 1}: b${i + 1} (/b${i + 1})`)].join('\n'))],
    },
    {
      label: 'discord: a payload over 100 characters (no custom_id can hold it) falls back to the numbered text list',
      body: ask('786008729715212350', 'hi'),
      sign,
      answers: [{ text: 'Long', buttons: [{ title: 'go', payload: `/go${'x'.repeat(100)}` }] }],
      status: 200,
      outgoing: [text('786008729715212350', `Long\n1: go (/go${'x'.repeat(100)})`)],
    },
    {
      label: 'discord: a text over 2000 characters with buttons: its start as text, its end with the buttons',
      body: ask('786008729715212351', 'hi'),
      sign,
      answers: [{ text: `${'a'.repeat(1999)} tail`, buttons: [{ title: 'ok', payload: '/ok' }] }],
      status: 200,
      outgoing: [text('786008729715212351', 'a'.repeat(1999)), followUp('786008729715212351', { content: 'tail', components: [row(button('ok', '/ok'))], allowed_mentions: NO_MENTIONS })],
    },
    {
      label: 'discord: an image is an embed with the image url',
      roundTrip: true,
      body: ask('786008729715212352', 'cat'),
      sign,
      answers: [{ image: 'https://i.imgur.com/nGF1K8f.jpg' }],
      status: 200,
      outgoing: [followUp('786008729715212352', { embeds: [{ image: { url: 'https://i.imgur.com/nGF1K8f.jpg' } }], allowed_mentions: NO_MENTIONS })],
    },
    {
      label: 'discord: a card is an embed (title, subtitle as description, image) with its buttons as an action row',
      body: ask('786008729715212353', 'cards'),
      sign,
      answers: [{ elements: [{ title: 'Gitrog', subtitle: 'Legendary frog horror', image_url: 'https://example.com/gitrog.png', buttons: [{ title: 'buy', payload: '/buy' }] }, { title: 'Plain' }] }],
      status: 200,
      outgoing: [
        followUp('786008729715212353', {
          embeds: [{ title: 'Gitrog', description: 'Legendary frog horror', image: { url: 'https://example.com/gitrog.png' } }],
          components: [row(button('buy', '/buy'))],
          allowed_mentions: NO_MENTIONS,
        }),
        followUp('786008729715212353', { embeds: [{ title: 'Plain' }], allowed_mentions: NO_MENTIONS }),
      ],
    },
    {
      label: 'discord: an attachment falls back to text',
      body: ask('786008729715212354', 'file'),
      sign,
      answers: [{ attachment: 'https://example.com/menu.pdf' }],
      status: 200,
      outgoing: [text('786008729715212354', 'Attachment: https://example.com/menu.pdf')],
    },
    {
      label: 'discord: custom JSON is the follow-up message itself (an ephemeral one); a list item by item; a non-object as JSON text',
      body: ask('786008729715212355', 'custom'),
      sign,
      answers: [{ custom: [{ content: 'only you can see this', flags: 64 }, { poll: { question: { text: 'Lunch?' }, answers: [{ poll_media: { text: 'Pizza' } }] } }, 42] }],
      status: 200,
      outgoing: [
        followUp('786008729715212355', { content: 'only you can see this', flags: 64 }),
        followUp('786008729715212355', { poll: { question: { text: 'Lunch?' }, answers: [{ poll_media: { text: 'Pizza' } }] } }),
        text('786008729715212355', '42'),
      ],
    },

    // --- platform errors
    {
      label: 'discord: a 400 (invalid form body) is not retried',
      body: ask('786008729715212356', 'bad'),
      sign,
      answers: [{ text: 'never arrives' }],
      status: 200,
      outgoing: [text('786008729715212356', 'never arrives', { reply: { status: 400, body: invalidForm } })],
    },
    {
      label: 'discord: a 401 (expired interaction token) is not retried, and the next answers are not tried',
      body: ask('786008729715212357', 'late'),
      sign,
      answers: [{ text: 'too late' }, { text: 'also too late' }],
      status: 200,
      outgoing: [text('786008729715212357', 'too late', { reply: { status: 401, body: invalidToken } })],
    },
    {
      label: 'discord: a 429 is retried after the wait in its body (retry_after), without a Retry-After header',
      body: ask('786008729715212358', 'busy'),
      sign,
      answers: [{ text: 'eventually' }],
      status: 200,
      outgoing: [text('786008729715212358', 'eventually', { reply: { status: 429, body: rateLimited } }), text('786008729715212358', 'eventually')],
    },
    {
      label: 'discord: a 429 with Retry-After is retried',
      body: ask('786008729715212359', 'busy'),
      sign,
      answers: [{ text: 'eventually' }],
      status: 200,
      outgoing: [text('786008729715212359', 'eventually', { reply: { status: 429, headers: { 'retry-after': '0' }, body: rateLimited } }), text('786008729715212359', 'eventually')],
    },
    {
      label: 'discord: a 503 is retried',
      body: ask('786008729715212360', 'down'),
      sign,
      answers: [{ text: 'eventually' }],
      status: 200,
      outgoing: [text('786008729715212360', 'eventually', { reply: { status: 503, body: { message: 'upstream connect error', code: 0 } } }), text('786008729715212360', 'eventually')],
    },
    {
      label: 'discord: a 500 (the message may have been posted) is not retried, so nobody gets it twice',
      body: ask('786008729715212361', 'maybe'),
      sign,
      answers: [{ text: 'maybe sent' }],
      status: 200,
      outgoing: [text('786008729715212361', 'maybe sent', { reply: { status: 500, body: { message: '500: Internal Server Error', code: 0 } } })],
    },
  ],
});

runChannelCases(test, {
  channel: DiscordInput,
  credentials: { ...CREDENTIALS, api_url: 'https://discord-proxy.example.com/api/', command: 'bot' },
  cases: [
    {
      label: 'discord: api_url replaces the API base (/v10 added); command names the slash command',
      roundTrip: true,
      body: command('786008729715212362', [{ type: 3, name: 'text', value: 'proxied' }], 'bot'),
      sign,
      answers: [{ text: 'via proxy' }],
      status: 200,
      response: { type: 5 },
      received: [{ text: 'proxied', metadata: { command: 'bot' } }],
      outgoing: [text('786008729715212362', 'via proxy', { url: webhook('786008729715212362', 'https://discord-proxy.example.com/api') })],
    },
    {
      label: 'discord: with command set, /ask is not the bot\'s',
      body: ask('786008729715212363', 'hi'),
      sign,
      status: 200,
      response: { type: 4, data: { content: '/ask is not handled here; use /bot.', flags: 64 } },
      received: [],
    },
  ],
});

runChannelCases(test, {
  channel: DiscordInput,
  credentials: { application_id: APPLICATION_ID, allow_unverified: true },
  cases: [
    {
      label: 'discord allow_unverified: an unsigned command is processed',
      body: ask('786008729715212364', 'no key'),
      status: 200,
      response: { type: 5 },
      received: [{ text: 'no key' }],
      outgoing: [text('786008729715212364', 'ok')],
    },
  ],
});

// --- credentials

test('discord: a section without public_key is refused, saying why and how to opt out', (t) => {
  const error = t.throws(() => DiscordInput.fromCredentials({ application_id: APPLICATION_ID }));
  t.regex(error?.message ?? '', /^missing "public_key", needed to verify that requests come from the platform \(or set allow_unverified: true/);
});

test('discord: application_id is required; a public key that is not 64 hex digits is refused; defaults', (t) => {
  t.is(t.throws(() => DiscordInput.fromCredentials({ public_key: APP.publicHex }))?.message, 'missing "application_id"');
  t.regex(t.throws(() => DiscordInput.fromCredentials({ ...CREDENTIALS, public_key: 'not-a-key' }))?.message ?? '', /^"public_key": must be the 64 hex digits/);
  t.regex(t.throws(() => DiscordInput.fromCredentials({ ...CREDENTIALS, command: '/ask' }))?.message ?? '', /^"command": must be a slash command name without the slash/);
  const channel = DiscordInput.fromCredentials(CREDENTIALS);
  t.like(channel.credentials, { command: 'ask', api_url: 'https://discord.com/api' });
  // YAML reads a bare snowflake as a number.
  t.is(DiscordInput.fromCredentials({ ...CREDENTIALS, application_id: 1234567890123 }).credentials.application_id, '1234567890123');
});

test('discord: a reply address without a token, or with one that is not a token, is refused', (t) => {
  const channel = DiscordInput.fromCredentials(CREDENTIALS);
  t.throws(() => channel.outputChannel({}), { message: 'reply address without "token"' });
  t.throws(() => channel.outputChannel({ token: '../../users/@me' }), { message: 'reply address "token" is not an interaction token' });
});

// --- on a server of their own

function offline(t: ExecutionContext): void {
  nock.disableNetConnect();
  nock.enableNetConnect('127.0.0.1');
  t.teardown(() => nock.cleanAll());
}

async function deliver(request: (path: string, init?: RequestInit) => Promise<{ status: number; text: string; json: unknown }>, body: object) {
  const raw = JSON.stringify(body);
  return request('/webhooks/discord/webhook', { method: 'POST', headers: { 'content-type': 'application/json', ...sign(raw) }, body: raw });
}

async function until(check: () => boolean, timeoutMs = 3_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
}

test.serial('discord: a slow bot: Discord gets its deferred response at once, the answer follows', async (t) => {
  offline(t);
  const calls: unknown[] = [];
  nock('https://discord.com').post(`/api/v10/webhooks/${APPLICATION_ID}/${tokenOf('786008729715212370')}`).reply(200, (_uri, body) => {
    calls.push(body);
    return created;
  });
  const bot = new ScriptedBot(async () => {
    await new Promise((resolve) => setTimeout(resolve, 700));
    return [{ text: 'done thinking' }];
  });
  const { request } = await startServer(t, [DiscordInput.fromCredentials(CREDENTIALS)], { bot });
  const started = Date.now();
  const response = await deliver(request, ask('786008729715212370', 'think hard'));
  t.is(response.status, 200);
  t.deepEqual(response.json, { type: 5 });
  t.true(Date.now() - started < 500, 'acknowledged before the bot answered');
  await until(() => calls.length >= 1);
  t.deepEqual(calls, [{ content: 'done thinking', allowed_mentions: NO_MENTIONS }]);
});

test.serial('discord: an expired interaction token is logged with its reason; the token never appears in the logs', async (t) => {
  offline(t);
  nock('https://discord.com').post(`/api/v10/webhooks/${APPLICATION_ID}/${tokenOf('786008729715212371')}`).reply(401, invalidToken);
  const { request, logs } = await startServer(t, [DiscordInput.fromCredentials(CREDENTIALS)], { bot: new ScriptedBot([{ text: 'hi' }]) });
  await deliver(request, ask('786008729715212371', 'hello'));
  await until(() => logs.text.includes('sending an answer failed'));
  const line = logs.lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => typeof l.msg === 'string' && l.msg.startsWith('discord refused the answer'));
  t.like(line, { level: 40, recipient: USER_ID, code: 50027, reason: 'interaction token expired or unknown' });
  t.true(logs.text.includes('outgoing call failed'));
  t.false(logs.text.includes(tokenOf('786008729715212371')), 'the interaction token is masked');
});

test.serial('discord: a follow-up waits until the deferred response was sent to Discord', async (t) => {
  offline(t);
  const calls: unknown[] = [];
  nock('https://discord.com').post(`/api/v10/webhooks/${APPLICATION_ID}/${tokenOf('786008729715212372')}`).reply(200, (_uri, body) => {
    calls.push(body);
    return created;
  });
  let acknowledge: () => void = () => undefined;
  const acknowledged = new Promise<void>((resolve) => {
    acknowledge = resolve;
  });
  const output = new DiscordOutput(new HttpClient(), { webhookUrl: webhook('786008729715212372'), logger: silentLogger, acknowledged });
  const sending = output.sendTextMessage(USER_ID, 'not before the ack');
  await new Promise((resolve) => setTimeout(resolve, 100));
  t.deepEqual(calls, [], 'nothing sent while the deferred response is on its way');
  acknowledge();
  await sending;
  t.deepEqual(calls, [{ content: 'not before the ack', allowed_mentions: NO_MENTIONS }]);
});

// --- the pure parts

test('discord verifyDiscordRequest: reasons, never throws', (t) => {
  const key = publicKeyFromHex(APP.publicHex);
  const now = Date.now();
  const raw = '{"type":1}';
  t.true(verifyDiscordRequest(raw, sign(raw), key, now));
  t.true(verifyDiscordRequest(Buffer.from(raw), sign(raw), key, now));
  t.is(verifyDiscordRequest(raw, sign(raw), undefined, now), 'no public key configured');
  t.is(verifyDiscordRequest(raw, {}, key, now), 'missing X-Signature-Ed25519 header');
  t.is(verifyDiscordRequest(raw, { 'x-signature-ed25519': 'ab' }, key, now), 'missing X-Signature-Timestamp header');
  t.is(verifyDiscordRequest(raw, { ...sign(raw), 'x-signature-timestamp': 'yesterday' }, key, now), 'malformed X-Signature-Timestamp header');
  t.is(verifyDiscordRequest(raw, { ...sign(raw), 'x-signature-ed25519': 'ab' }, key, now), 'malformed X-Signature-Ed25519 header');
  t.is(verifyDiscordRequest('{"type":2}', sign(raw), key, now), 'X-Signature-Ed25519 does not match the timestamp and body');
  t.regex(String(verifyDiscordRequest(raw, sign(raw), key, now + 301_000)), /^X-Signature-Timestamp: timestamp is \d+ s old/);
  t.is(publicKeyFromHex('00'), undefined);
});

test('discord parseInteraction: kinds and reasons', (t) => {
  t.deepEqual(parseInteraction({ type: 1 }, 'ask'), { kind: 'ping' });
  t.deepEqual(parseInteraction([], 'ask'), { kind: 'invalid', reason: 'interaction is not a JSON object' });
  t.deepEqual(parseInteraction({ type: 'x' }, 'ask'), { kind: 'invalid', reason: 'interaction without a numeric type' });
  t.deepEqual(parseInteraction({ ...(ask('1', 'x') as object), member: undefined }, 'ask'), { kind: 'invalid', reason: 'interaction without member.user or user' });
  t.deepEqual(parseInteraction(click('2', { component_type: 2 }), 'ask'), { kind: 'invalid', reason: 'component interaction without data.custom_id' });
  const parsed = parseInteraction(ask('3', 'hi'), 'ask');
  t.like(parsed, { kind: 'message', token: tokenOf('3'), ack: { type: 5 }, message: { text: 'hi', senderId: USER_ID, messageId: '3' } });
});

test('discord actionRows and splitText', (t) => {
  t.is(actionRows([]), undefined);
  t.is(actionRows([{ title: 'a', payload: '/x' }, { title: 'b', payload: '/x' }]), undefined, 'repeated custom_ids');
  t.deepEqual(actionRows([{ title: 'a', payload: '/a' }]), [{ type: 1, components: [{ type: 2, style: 1, label: 'a', custom_id: '/a' }] }]);
  t.is(actionRows(Array.from({ length: 25 }, (_, i) => ({ title: `${i}`, payload: `/${i}` })))?.length, 5);
  const parts = splitText('word '.repeat(1000).trim());
  t.true(parts.every((p) => p.length <= 2000));
  t.is(parts.join(' '), 'word '.repeat(1000).trim());
});
