import test from 'ava';
import nock from 'nock';
import { createHmac } from 'node:crypto';
import TelegramInput from '../../channels/telegram/index.js';
import { customCalls, splitText } from '../../channels/telegram/output.js';
import { parseUpdate, readText } from '../../channels/telegram/parse.js';
import { ScriptedBot, runChannelCases, startServer, type ChannelCase } from '../harness.js';

// The token format of Telegram's documentation; never a real one.
const TOKEN = '123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw';
const API = 'https://api.telegram.org';
const BOT = `${API}/bot${TOKEN}`;
const WEBHOOK_URL = 'https://bot.example.com/webhooks/telegram/webhook';
// Computed here, not by the channel: the derivation is part of the contract (webhooks registered by one version must
// keep verifying in the next).
const DERIVED = createHmac('sha256', TOKEN).update('switchboard-telegram-secret-token').digest('hex');
const SIGNED = { 'x-telegram-bot-api-secret-token': DERIVED };
const CREDENTIALS = { access_token: TOKEN, verify: 'moodbot', webhook_url: WEBHOOK_URL };

const OWN_API = 'https://tg-bot-api.example.internal';
const OWN_SECRET = 'my-own_Secret-Token-123';

// Every server start registers the webhook (as Rasa does): answered here, so each case sees only its own calls.
test.beforeEach(() => {
  nock(API).post(`/bot${TOKEN}/setWebhook`).reply(200, { ok: true, result: true, description: 'Webhook was set' });
  nock(OWN_API).post(`/bot${TOKEN}/setWebhook`).reply(200, { ok: true, result: true, description: 'Webhook was set' });
});

const alice = { id: 1111111, is_bot: false, first_name: 'Alice', last_name: 'Liddell', username: 'alice', language_code: 'en' };
const privateChat = { id: 1111111, first_name: 'Alice', last_name: 'Liddell', username: 'alice', type: 'private' };
const groupChat = { id: -1001234567890, title: 'Mood club', type: 'supergroup' };
const botUser = { id: 987654321, is_bot: true, first_name: 'Mood Bot', username: 'moodbot' };

/** An Update as Telegram's webhook posts it (https://core.telegram.org/bots/webhooks#testing-your-bot-with-updates). */
function privateUpdate(updateId: number, message: Record<string, unknown>) {
  return { update_id: updateId, message: { message_id: 1365, from: alice, chat: privateChat, date: 1441645532, ...message } };
}
function groupUpdate(updateId: number, message: Record<string, unknown>) {
  return { update_id: updateId, message: { message_id: 2001, from: alice, chat: groupChat, date: 1441645532, ...message } };
}

const send = (text: string, chat: string | number = 1111111) => ({ url: `${BOT}/sendMessage`, body: { chat_id: String(chat), text } });

/** A private "hi" answered with `answers`, expecting `outgoing`. */
function answerCase(label: string, answers: ChannelCase['answers'], outgoing: ChannelCase['outgoing'], updateId = 500): ChannelCase {
  return { label: `telegram out: ${label}`, headers: SIGNED, body: privateUpdate(updateId, { text: 'hi' }), answers, status: 200, response: 'success', outgoing, ...(outgoing?.length ? { roundTrip: true as const } : {}) };
}

const longWords = `${'a'.repeat(4000)} ${'b'.repeat(200)} ${'c'.repeat(100)}`;

runChannelCases(test, {
  channel: TelegramInput,
  credentials: CREDENTIALS,
  cases: [
    { label: 'telegram: health route', method: 'GET', path: '/', status: 200, response: { status: 'ok' } },
    {
      label: 'telegram: a private text message reaches the bot (sender chat.id, id update_id) and is answered with sendMessage',
      roundTrip: true,
      headers: SIGNED,
      body: privateUpdate(10000, { text: ' hello ' }),
      answers: [{ text: 'Hey! How are you?' }],
      status: 200,
      response: 'success',
      received: [{ text: 'hello', senderId: '1111111', messageId: '10000', inputChannel: 'telegram', metadata: { update_type: 'message', chat_type: 'private', message_id: 1365, from: alice } }],
      outgoing: [{ url: `${BOT}/sendMessage`, headers: { 'content-type': 'application/json' }, body: { chat_id: '1111111', text: 'Hey! How are you?' } }],
    },
    {
      label: 'telegram: /start@moodbot loses its @moodbot',
      headers: SIGNED,
      body: privateUpdate(10001, { text: '/start@moodbot', entities: [{ offset: 0, length: 14, type: 'bot_command' }] }),
      status: 200,
      received: [{ text: '/start' }],
      outgoing: [send('ok')],
    },
    {
      label: "telegram: Rasa's /bot prefix is dropped",
      headers: SIGNED,
      body: privateUpdate(10002, { text: '/bot how are you' }),
      status: 200,
      received: [{ text: 'how are you' }],
      outgoing: [send('ok')],
    },
    {
      label: 'telegram: /restart is followed by /start, as in Rasa',
      headers: SIGNED,
      body: privateUpdate(10003, { text: '/restart' }),
      answers: [],
      status: 200,
      received: [{ text: '/restart', messageId: '10003' }, { text: '/start', messageId: '10003:start' }],
    },
    {
      label: 'telegram: a group message not addressed to the bot is ignored, still 200 success',
      headers: SIGNED,
      body: groupUpdate(10010, { text: 'anyone up for lunch?' }),
      status: 200,
      response: 'success',
      received: [],
      outgoing: [],
    },
    {
      label: 'telegram: a group message mentioning @moodbot is processed without the mention; the group is the sender',
      headers: SIGNED,
      body: groupUpdate(10011, { text: '@MoodBot how are you?', entities: [{ offset: 0, length: 8, type: 'mention' }] }),
      status: 200,
      received: [{ text: 'how are you?', senderId: '-1001234567890', metadata: { chat_type: 'supergroup', chat_title: 'Mood club', from: alice } }],
      outgoing: [send('ok', -1001234567890)],
    },
    {
      label: 'telegram: a group /help@moodbot command is processed',
      headers: SIGNED,
      body: groupUpdate(10012, { text: '/help@moodbot' }),
      status: 200,
      received: [{ text: '/help' }],
      outgoing: [send('ok', -1001234567890)],
    },
    {
      label: 'telegram: a group command for another bot is ignored',
      headers: SIGNED,
      body: groupUpdate(10013, { text: '/start@otherbot' }),
      status: 200,
      received: [],
      outgoing: [],
    },
    {
      label: "telegram: a group reply to the bot's message is processed",
      headers: SIGNED,
      body: groupUpdate(10014, { text: 'great, thanks', reply_to_message: { message_id: 2000, from: botUser, chat: groupChat, date: 1441645500, text: 'How are you?' } }),
      status: 200,
      received: [{ text: 'great, thanks' }],
      outgoing: [send('ok', -1001234567890)],
    },
    {
      label: "telegram: a group reply to someone else's message is ignored",
      headers: SIGNED,
      body: groupUpdate(10015, { text: 'me too', reply_to_message: { message_id: 1999, from: { ...alice, id: 2, username: 'bob' }, chat: groupChat, date: 1, text: 'hungry' } }),
      status: 200,
      received: [],
      outgoing: [],
    },
    {
      label: 'telegram: a callback_query (button press) sends its data as text, and is answered with answerCallbackQuery',
      headers: SIGNED,
      body: {
        update_id: 10020,
        callback_query: {
          id: '4382bfdwdsb323b2d9',
          from: alice,
          message: { message_id: 1366, from: botUser, chat: privateChat, date: 1441645540, text: 'How are you?' },
          chat_instance: '-8271635',
          data: '/mood_great',
        },
      },
      status: 200,
      response: 'success',
      received: [{ text: '/mood_great', senderId: '1111111', messageId: '10020', metadata: { update_type: 'callback_query', callback_query_id: '4382bfdwdsb323b2d9', message_id: 1366 } }],
      outgoing: [{ url: `${BOT}/answerCallbackQuery`, body: { callback_query_id: '4382bfdwdsb323b2d9' } }, send('ok')],
    },
    {
      label: 'telegram: an edited_message is processed as a new message',
      headers: SIGNED,
      body: { update_id: 10030, edited_message: { message_id: 1365, from: alice, chat: privateChat, date: 1441645532, edit_date: 1441646600, text: 'hello again' } },
      status: 200,
      received: [{ text: 'hello again', metadata: { update_type: 'edited_message' } }],
      outgoing: [send('ok')],
    },
    {
      label: "telegram: a location becomes Rasa's {\"lng\", \"lat\"} text",
      headers: SIGNED,
      body: privateUpdate(10040, { location: { latitude: 37.7749, longitude: -122.4194 } }),
      status: 200,
      received: [{ text: '{"lng":-122.4194, "lat":37.7749}' }],
      outgoing: [send('ok')],
    },
    {
      label: 'telegram: a photo without caption text is ignored, 200',
      headers: SIGNED,
      body: privateUpdate(10041, { photo: [{ file_id: 'AgADBAAD', file_unique_id: 'AQAD', width: 90, height: 90 }] }),
      status: 200,
      response: 'success',
      received: [],
      outgoing: [],
    },
    {
      label: 'telegram: a redelivered update_id is processed once',
      headers: SIGNED,
      body: privateUpdate(10050, { text: 'once' }),
      repeat: 2,
      status: 200,
      response: 'success',
      received: [{ text: 'once' }],
      outgoing: [send('ok')],
    },
    {
      label: 'telegram: a wrong secret token is a 401 and never reaches the bot',
      headers: { 'x-telegram-bot-api-secret-token': 'not-the-token' },
      body: privateUpdate(10060, { text: 'hello' }),
      status: 401,
      response: { error: 'request could not be verified' },
      received: [],
      outgoing: [],
    },
    {
      label: 'telegram: a missing secret token header is a 401',
      body: privateUpdate(10061, { text: 'hello' }),
      status: 401,
      received: [],
      outgoing: [],
    },
    {
      label: 'telegram: malformed JSON is a 400',
      headers: { ...SIGNED, 'content-type': 'application/json' },
      body: '{"update_id": 1, "message": ',
      status: 400,
      received: [],
      outgoing: [],
    },
    {
      label: 'telegram: a JSON array is a 400',
      headers: SIGNED,
      body: [{ update_id: 1 }],
      status: 400,
      received: [],
    },
    {
      label: 'telegram: an update of an unhandled kind (poll) is answered 200 and ignored',
      headers: SIGNED,
      body: { update_id: 10070, poll: { id: '1', question: 'Lunch?', options: [], total_voter_count: 0, is_closed: false } },
      status: 200,
      response: 'success',
      received: [],
      outgoing: [],
    },
    {
      label: 'telegram: a message without chat (missing fields) is answered 200 and ignored',
      headers: SIGNED,
      body: { update_id: 10071, message: { message_id: 1, text: 'hi' } },
      status: 200,
      response: 'success',
      received: [],
      outgoing: [],
    },

    // What the bot answers → the exact Bot API calls.
    answerCase('text split at blank lines, one sendMessage each', [{ text: 'one\n\ntwo' }], [send('one'), send('two')]),
    answerCase('a text over 4096 characters is split at a word boundary', [{ text: longWords }], [send('a'.repeat(4000)), send(`${'b'.repeat(200)} ${'c'.repeat(100)}`)]),
    answerCase('a 5000-character word is cut at 4096', [{ text: 'x'.repeat(5000) }], [send('x'.repeat(4096)), send('x'.repeat(904))]),
    answerCase(
      'buttons default to one row of inline_keyboard',
      [{ text: 'How are you?', buttons: [{ title: 'great', payload: '/mood_great' }, { title: 'sad', payload: '/mood_unhappy' }] }],
      [{ url: `${BOT}/sendMessage`, body: { chat_id: '1111111', text: 'How are you?', reply_markup: { inline_keyboard: [[{ text: 'great', callback_data: '/mood_great' }, { text: 'sad', callback_data: '/mood_unhappy' }]] } } }],
    ),
    answerCase(
      'button_type vertical puts one button per row; a url button opens the link',
      [{ text: 'Pick', button_type: 'vertical', buttons: [{ title: 'great', payload: '/mood_great' }, { title: 'docs', url: 'https://rasa.com/docs' }] }],
      [{ url: `${BOT}/sendMessage`, body: { chat_id: '1111111', text: 'Pick', reply_markup: { inline_keyboard: [[{ text: 'great', callback_data: '/mood_great' }], [{ text: 'docs', url: 'https://rasa.com/docs' }]] } } }],
    ),
    answerCase(
      'button_type inline (said explicitly) is one row, as the default',
      [{ text: 'Pick', button_type: 'inline', buttons: [{ title: 'great', payload: '/mood_great' }, { title: 'sad', payload: '/mood_unhappy' }, { title: 'meh', payload: '/mood_meh' }] }],
      [{ url: `${BOT}/sendMessage`, body: { chat_id: '1111111', text: 'Pick', reply_markup: { inline_keyboard: [[{ text: 'great', callback_data: '/mood_great' }, { text: 'sad', callback_data: '/mood_unhappy' }, { text: 'meh', callback_data: '/mood_meh' }]] } } }],
    ),
    answerCase(
      'button_type reply sends a one-time reply keyboard of titles, one button per row (as Rasa)',
      [{ text: 'Pick', button_type: 'reply', buttons: [{ title: 'great', payload: '/mood_great' }, { title: 'sad', payload: '/mood_unhappy' }, { title: 'meh', payload: '/mood_meh' }] }],
      [{ url: `${BOT}/sendMessage`, body: { chat_id: '1111111', text: 'Pick', reply_markup: { keyboard: [[{ text: 'great' }], [{ text: 'sad' }], [{ text: 'meh' }]], resize_keyboard: true, one_time_keyboard: true } } }],
    ),
    answerCase(
      'button_type reply with rows (lists of buttons) keeps each row; a single button beside them gets its own row',
      [{ text: 'Pick', button_type: 'reply', buttons: [[{ title: 'yes', payload: '/affirm' }, { title: 'no', payload: '/deny' }], { title: 'not sure', payload: '/unsure' }] as never }],
      [{ url: `${BOT}/sendMessage`, body: { chat_id: '1111111', text: 'Pick', reply_markup: { keyboard: [[{ text: 'yes' }, { text: 'no' }], [{ text: 'not sure' }]], resize_keyboard: true, one_time_keyboard: true } } }],
    ),
    answerCase(
      'quick replies are an inline keyboard',
      [{ text: 'Did that help?', quick_replies: [{ title: 'yes', payload: '/affirm' }] }],
      [{ url: `${BOT}/sendMessage`, body: { chat_id: '1111111', text: 'Did that help?', reply_markup: { inline_keyboard: [[{ text: 'yes', callback_data: '/affirm' }]] } } }],
    ),
    answerCase(
      'a button payload over 64 bytes (Telegram would refuse the message) falls back to text',
      [{ text: 'Pick', buttons: [{ title: 'long', payload: `/inform{"note": "${'n'.repeat(60)}"}` }] }],
      [send(`Pick\n1: long (/inform{"note": "${'n'.repeat(60)}"})`)],
    ),
    answerCase('an image is sendPhoto', [{ image: 'https://i.imgur.com/nGF1K8f.jpg' }], [{ url: `${BOT}/sendPhoto`, body: { chat_id: '1111111', photo: 'https://i.imgur.com/nGF1K8f.jpg' } }]),
    answerCase('an attachment falls back to text', [{ attachment: 'https://example.com/menu.pdf' }], [send('Attachment: https://example.com/menu.pdf')]),
    answerCase(
      'elements fall back to "title : subtitle" with an inline keyboard',
      [{ elements: [{ title: 'Card', subtitle: 'sub', buttons: [{ title: 'go', payload: '/go' }] }] }],
      [{ url: `${BOT}/sendMessage`, body: { chat_id: '1111111', text: 'Card : sub', reply_markup: { inline_keyboard: [[{ text: 'go', callback_data: '/go' }]] } } }],
    ),
    answerCase(
      'custom photo with caption is sendPhoto, parameters passed through',
      [{ custom: { photo: 'https://example.com/cat.jpg', caption: 'A cat', parse_mode: 'HTML' } }],
      [{ url: `${BOT}/sendPhoto`, body: { chat_id: '1111111', photo: 'https://example.com/cat.jpg', caption: 'A cat', parse_mode: 'HTML' } }],
    ),
    answerCase('custom latitude+longitude is sendLocation', [{ custom: { latitude: 52.52, longitude: 13.405 } }], [{ url: `${BOT}/sendLocation`, body: { chat_id: '1111111', latitude: 52.52, longitude: 13.405 } }]),
    answerCase(
      'custom latitude+longitude+title+address is sendVenue only',
      [{ custom: { latitude: 52.52, longitude: 13.405, title: 'Rasa HQ', address: 'Schönhauser Allee 175, Berlin' } }],
      [{ url: `${BOT}/sendVenue`, body: { chat_id: '1111111', latitude: 52.52, longitude: 13.405, title: 'Rasa HQ', address: 'Schönhauser Allee 175, Berlin' } }],
    ),
    answerCase(
      'custom phone_number+first_name is sendContact',
      [{ custom: { phone_number: '+4930123456', first_name: 'Rasa', last_name: 'Support' } }],
      [{ url: `${BOT}/sendContact`, body: { chat_id: '1111111', phone_number: '+4930123456', first_name: 'Rasa', last_name: 'Support' } }],
    ),
    answerCase(
      'custom with chat_id answers in that chat; text and sticker both fire, in order',
      [{ custom: { chat_id: -100555, text: 'look', sticker: 'CAACAgIAAxkBAAE' } }],
      [
        { url: `${BOT}/sendMessage`, body: { chat_id: -100555, text: 'look' } },
        { url: `${BOT}/sendSticker`, body: { chat_id: -100555, sticker: 'CAACAgIAAxkBAAE' } },
      ],
    ),
    answerCase('custom without a method key sends nothing (logged)', [{ custom: { foo: 'bar' } }], []),
    {
      label: 'telegram out: a Bot API failure (400) is not retried and does not break the ack',
      headers: SIGNED,
      body: privateUpdate(600, { text: 'hi' }),
      answers: [{ text: 'one' }],
      status: 200,
      response: 'success',
      outgoing: [{ url: `${BOT}/sendMessage`, body: { chat_id: '1111111', text: 'one' }, reply: { status: 400, body: { ok: false, error_code: 400, description: 'Bad Request: chat not found' } } }],
    },

    // Webhook registration: POST only, with the secret token (a crawler's GET must not make Telegram calls).
    {
      label: 'telegram: POST /set_webhook with the secret token header registers webhook_url with the derived secret token',
      method: 'POST',
      path: '/set_webhook',
      headers: SIGNED,
      body: '',
      status: 200,
      response: 'Webhook setup successful',
      outgoing: [{ url: `${BOT}/setWebhook`, body: { url: WEBHOOK_URL, secret_token: DERIVED }, reply: { body: { ok: true, result: true, description: 'Webhook was set' } } }],
    },
    {
      label: 'telegram: POST /set_webhook with Authorization: Bearer <secret token> works too',
      method: 'POST',
      path: '/set_webhook',
      headers: { authorization: `Bearer ${DERIVED}` },
      body: '',
      status: 200,
      response: 'Webhook setup successful',
      outgoing: [{ url: `${BOT}/setWebhook`, body: { url: WEBHOOK_URL, secret_token: DERIVED } }],
    },
    {
      label: "telegram: /set_webhook failure answers 502 'Invalid webhook' with Telegram's reason",
      method: 'POST',
      path: '/set_webhook',
      headers: SIGNED,
      body: '',
      status: 502,
      response: 'Invalid webhook: Bad Request: bad webhook: Failed to resolve host: Name or service not known',
      outgoing: [{ url: `${BOT}/setWebhook`, reply: { status: 400, body: { ok: false, error_code: 400, description: 'Bad Request: bad webhook: Failed to resolve host: Name or service not known' } } }],
    },
    { label: 'telegram: GET /set_webhook (a crawler, a link preview) is a 405, no Telegram call', method: 'GET', path: '/set_webhook', status: 405, outgoing: [] },
    { label: 'telegram: GET /set_webhook with the secret token is a 405 too', method: 'GET', path: '/set_webhook', headers: SIGNED, status: 405, outgoing: [] },
    {
      label: 'telegram: POST /set_webhook without a token is a 401, no Telegram call',
      method: 'POST',
      path: '/set_webhook',
      body: '',
      status: 401,
      response: { error: 'request could not be verified' },
      outgoing: [],
    },
    { label: 'telegram: POST /set_webhook with a wrong secret token header is a 401', method: 'POST', path: '/set_webhook', headers: { 'x-telegram-bot-api-secret-token': 'not-the-token' }, body: '', status: 401, outgoing: [] },
    { label: 'telegram: POST /set_webhook with a wrong Bearer token is a 401', method: 'POST', path: '/set_webhook', headers: { authorization: `Bearer ${DERIVED.slice(0, -1)}${DERIVED.endsWith('0') ? '1' : '0'}` }, body: '', status: 401, outgoing: [] },
    { label: 'telegram: POST /set_webhook with the bot token as Bearer is a 401', method: 'POST', path: '/set_webhook', headers: { authorization: `Bearer ${TOKEN}` }, body: '', status: 401, outgoing: [] },
    { label: 'telegram: POST /set_webhook with the secret token as Basic credentials is a 401', method: 'POST', path: '/set_webhook', headers: { authorization: `Basic ${DERIVED}` }, body: '', status: 401, outgoing: [] },
    {
      label: 'telegram: a wrong secret token header is not rescued by a right Bearer token',
      method: 'POST',
      path: '/set_webhook',
      headers: { 'x-telegram-bot-api-secret-token': 'not-the-token', authorization: `Bearer ${DERIVED}` },
      body: '',
      status: 401,
      outgoing: [],
    },
  ],
});

runChannelCases(test, {
  channel: TelegramInput,
  credentials: { ...CREDENTIALS, secret_token: OWN_SECRET, api_url: `${OWN_API}/`, edited_messages: false, typing_indicator: false },
  cases: [
    {
      label: 'telegram secret_token: the configured token is accepted; api_url replaces the base URL',
      headers: { 'x-telegram-bot-api-secret-token': OWN_SECRET },
      body: privateUpdate(20000, { text: 'hello' }),
      status: 200,
      received: [{ text: 'hello' }],
      outgoing: [{ url: `${OWN_API}/bot${TOKEN}/sendMessage`, body: { chat_id: '1111111', text: 'ok' } }],
    },
    { label: 'telegram secret_token: /set_webhook with the derived token (not the configured one) is a 401', method: 'POST', path: '/set_webhook', headers: SIGNED, body: '', status: 401, outgoing: [] },
    {
      label: 'telegram secret_token: the derived token no longer is',
      headers: SIGNED,
      body: privateUpdate(20001, { text: 'hello' }),
      status: 401,
      received: [],
      outgoing: [],
    },
    {
      label: 'telegram edited_messages: false ignores edits',
      headers: { 'x-telegram-bot-api-secret-token': OWN_SECRET },
      body: { update_id: 20002, edited_message: { message_id: 1365, from: alice, chat: privateChat, date: 1441645532, edit_date: 1441646600, text: 'hello again' } },
      status: 200,
      response: 'success',
      received: [],
      outgoing: [],
    },
    {
      label: 'telegram secret_token: /set_webhook registers the configured token',
      method: 'POST',
      path: '/set_webhook',
      headers: { 'x-telegram-bot-api-secret-token': OWN_SECRET },
      body: '',
      status: 200,
      response: 'Webhook setup successful',
      outgoing: [{ url: `${OWN_API}/bot${TOKEN}/setWebhook`, body: { url: WEBHOOK_URL, secret_token: OWN_SECRET } }],
    },
  ],
});

runChannelCases(test, {
  channel: TelegramInput,
  credentials: { ...CREDENTIALS, allow_unverified: true },
  cases: [
    {
      label: 'telegram allow_unverified: a request without the header is processed',
      body: privateUpdate(30000, { text: 'hello' }),
      status: 200,
      received: [{ text: 'hello' }],
      outgoing: [send('ok')],
    },
    { label: 'telegram allow_unverified: /set_webhook still needs the secret token (401)', method: 'POST', path: '/set_webhook', body: '', status: 401, outgoing: [] },
  ],
});

test.serial('telegram: the derived secret token is the documented HMAC, in Telegram’s alphabet', (t) => {
  const channel = TelegramInput.fromCredentials(CREDENTIALS);
  t.is(channel.secretToken, DERIVED);
  t.regex(channel.secretToken, /^[A-Za-z0-9_-]{1,256}$/);
  t.false(channel.unverified);
});

test.serial('telegram: credentials are checked, naming the key, never echoing a secret', (t) => {
  t.is(t.throws(() => TelegramInput.fromCredentials({ verify: 'moodbot', webhook_url: WEBHOOK_URL }))?.message, 'missing "access_token"');
  t.is(t.throws(() => TelegramInput.fromCredentials({ access_token: TOKEN, webhook_url: WEBHOOK_URL }))?.message, 'missing "verify"');
  const bad = t.throws(() => TelegramInput.fromCredentials({ ...CREDENTIALS, secret_token: 'has spaces and $ecret' }));
  t.regex(bad?.message ?? '', /^"secret_token": /);
  t.false((bad?.message ?? '').includes('$ecret'));
  t.regex(t.throws(() => TelegramInput.fromCredentials({ ...CREDENTIALS, webhook_url: 'not a url' }))?.message ?? '', /^"webhook_url": /);
});

test.serial('telegram: startup registers the webhook with the secret token', async (t) => {
  nock.cleanAll();
  let registered: unknown;
  const scope = nock(API).post(`/bot${TOKEN}/setWebhook`, (body) => ((registered = body), true)).reply(200, { ok: true, result: true });
  const { logs, request } = await startServer(t, [TelegramInput.fromCredentials(CREDENTIALS)]);
  t.true(scope.isDone());
  t.deepEqual(registered, { url: WEBHOOK_URL, secret_token: DERIVED });
  t.true(logs.text.includes('webhook registered with Telegram'));
  t.is((await request('/webhooks/telegram/')).status, 200);
});

test.serial('telegram /set_webhook: unauthenticated calls make no Telegram call (the interceptor stays pending); the authenticated one does', async (t) => {
  nock.cleanAll();
  nock(API).post(`/bot${TOKEN}/setWebhook`).reply(200, { ok: true, result: true });
  const { request } = await startServer(t, [TelegramInput.fromCredentials(CREDENTIALS)]);
  t.true(nock.isDone(), 'the startup registration');
  let calls = 0;
  const scope = nock(API)
    .persist()
    .post(`/bot${TOKEN}/setWebhook`)
    .reply(() => {
      calls += 1;
      return [200, { ok: true, result: true }];
    });
  const path = '/webhooks/telegram/set_webhook';
  const attacks: Array<[string, RequestInit, number]> = [
    ['a crawler GET', {}, 405],
    ['a link preview HEAD', { method: 'HEAD' }, 405],
    ['a GET with the token', { headers: SIGNED }, 405],
    ['a POST without a token', { method: 'POST' }, 401],
    ['a POST with a wrong token', { method: 'POST', headers: { 'x-telegram-bot-api-secret-token': 'guess' } }, 401],
    ['a POST with the bot token as Bearer', { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } }, 401],
    ['a POST with the token in the query', { method: 'POST' }, 401],
  ];
  for (const [label, init, status] of attacks) {
    const response = await request(label.includes('query') ? `${path}?token=${DERIVED}` : path, init);
    t.is(response.status, status, label);
  }
  t.is(calls, 0, 'no Telegram call was made');
  t.is((await request(path, { method: 'POST', headers: SIGNED })).status, 200);
  t.is((await request(path, { method: 'POST', headers: { authorization: `bearer ${DERIVED}` } })).status, 200);
  t.is(calls, 2);
  scope.persist(false);
  nock.cleanAll();
});

test.serial('telegram: a failed startup registration is logged, the server runs, and no token reaches the logs', async (t) => {
  nock.cleanAll();
  nock(API).post(`/bot${TOKEN}/setWebhook`).reply(401, { ok: false, error_code: 401, description: 'Unauthorized' });
  nock(API).post(`/bot${TOKEN}/sendMessage`).reply(403, { ok: false, error_code: 403, description: 'Forbidden: bot was blocked by the user' });
  const bot = new ScriptedBot([{ text: 'hi back' }]);
  const { logs, request } = await startServer(t, [TelegramInput.fromCredentials(CREDENTIALS)], { bot });
  t.regex(logs.text, /registering the webhook with Telegram failed/);
  t.regex(logs.text, /Unauthorized/);
  const answer = await request('/webhooks/telegram/webhook', { method: 'POST', headers: { 'content-type': 'application/json', ...SIGNED }, body: JSON.stringify(privateUpdate(40000, { text: 'hi' })) });
  t.is(answer.status, 200);
  await bot.waitFor(1);
  const deadline = Date.now() + 2_000;
  while (!logs.text.includes('sending an answer failed') && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
  t.regex(logs.text, /bot\[redacted\]\/sendMessage/);
  t.false(logs.text.includes(TOKEN), 'bot token in the logs');
  t.false(logs.text.includes(TOKEN.split(':')[1]!), 'secret half of the bot token in the logs');
  t.false(logs.text.includes(DERIVED), 'secret token in the logs');
});

test.serial('telegram: a slow bot shows sendChatAction typing, then answers', async (t) => {
  nock.cleanAll();
  nock(API).post(`/bot${TOKEN}/setWebhook`).reply(200, { ok: true, result: true });
  const calls: Array<[string, unknown]> = [];
  nock(API).persist().post(/\/bot.+\/(sendChatAction|sendMessage)$/).reply(function reply(uri, body) {
    calls.push([uri.split('/').pop()!, body]);
    return [200, { ok: true, result: true }];
  });
  const bot = new ScriptedBot(async () => {
    await new Promise((resolve) => setTimeout(resolve, 800));
    return [{ text: 'done thinking' }];
  });
  const { request } = await startServer(t, [TelegramInput.fromCredentials(CREDENTIALS)], { bot });
  const answer = await request('/webhooks/telegram/webhook', { method: 'POST', headers: { 'content-type': 'application/json', ...SIGNED }, body: JSON.stringify(privateUpdate(40001, { text: 'think hard' })) });
  t.is(answer.status, 200);
  const deadline = Date.now() + 3_000;
  while (!calls.some(([method]) => method === 'sendMessage') && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
  t.deepEqual(calls[0], ['sendChatAction', { chat_id: '1111111', action: 'typing' }]);
  t.deepEqual(calls.at(-1), ['sendMessage', { chat_id: '1111111', text: 'done thinking' }]);
  nock.cleanAll();
});

test.serial('telegram: typing_indicator false shows no typing', async (t) => {
  nock.cleanAll();
  nock(API).post(`/bot${TOKEN}/setWebhook`).reply(200, { ok: true, result: true });
  const calls: string[] = [];
  nock(API).persist().post(/\/bot.+\/(sendChatAction|sendMessage)$/).reply(function reply(uri) {
    calls.push(uri.split('/').pop()!);
    return [200, { ok: true, result: true }];
  });
  const bot = new ScriptedBot(async () => {
    await new Promise((resolve) => setTimeout(resolve, 700));
    return [{ text: 'done' }];
  });
  const { request } = await startServer(t, [TelegramInput.fromCredentials({ ...CREDENTIALS, typing_indicator: false })], { bot });
  await request('/webhooks/telegram/webhook', { method: 'POST', headers: { 'content-type': 'application/json', ...SIGNED }, body: JSON.stringify(privateUpdate(40002, { text: 'x' })) });
  const deadline = Date.now() + 3_000;
  while (!calls.includes('sendMessage') && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
  t.deepEqual(calls, ['sendMessage']);
  nock.cleanAll();
});

// ---------------------------------------------------------------------------------------------------------------------
// Flood control and slow answers (issue 14, item 5): Telegram puts the wait in the body of its 429, and an answer whose
// call timed out may have been delivered, so it is not sent again.

/** Telegram's 429, as the Bot API answers it (ResponseParameters.retry_after, in seconds). */
const flood = (seconds: number) => ({ ok: false, error_code: 429, description: `Too Many Requests: retry after ${seconds}`, parameters: { retry_after: seconds } });

async function postUpdate(request: Awaited<ReturnType<typeof startServer>>['request'], update: object) {
  return request('/webhooks/telegram/webhook', { method: 'POST', headers: { 'content-type': 'application/json', ...SIGNED }, body: JSON.stringify(update) });
}

async function until(check: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
}

test.serial('telegram: a 429 with parameters.retry_after is waited out, then the answer is sent once', async (t) => {
  nock.cleanAll();
  nock(API).post(`/bot${TOKEN}/setWebhook`).reply(200, { ok: true, result: true });
  const calls: Array<{ at: number; body: unknown }> = [];
  nock(API)
    .post(`/bot${TOKEN}/sendMessage`)
    .times(5)
    .reply((_uri, body) => {
      calls.push({ at: Date.now(), body });
      return calls.length === 1 ? [429, flood(1), { 'content-type': 'application/json' }] : [200, { ok: true, result: { message_id: 7 } }, { 'content-type': 'application/json' }];
    });
  const bot = new ScriptedBot([{ text: 'after the flood' }]);
  const { request, logs } = await startServer(t, [TelegramInput.fromCredentials(CREDENTIALS)], { bot });
  t.is((await postUpdate(request, privateUpdate(41000, { text: 'hi' }))).status, 200);
  await until(() => calls.length >= 2);
  t.deepEqual(calls.map((call) => call.body), [{ chat_id: '1111111', text: 'after the flood' }, { chat_id: '1111111', text: 'after the flood' }]);
  // The test client backs off 5–20 ms on its own: only retry_after explains a wait of a second.
  const waited = calls[1]!.at - calls[0]!.at;
  t.true(waited >= 950, `waited ${waited} ms`);
  const retry = logs.lines.map((line) => JSON.parse(line) as Record<string, unknown>).find((line) => line.msg === 'retrying outgoing call');
  t.like(retry, { channel: 'telegram', delayMs: 1_000, reason: 'answered 429' });
  t.false(logs.text.includes('sending an answer failed'));
});

test.serial('telegram: a retry_after past the cap is not waited for: logged, the reply dropped, the next message answered', async (t) => {
  nock.cleanAll();
  nock(API).post(`/bot${TOKEN}/setWebhook`).reply(200, { ok: true, result: true });
  const bodies: unknown[] = [];
  nock(API)
    .post(`/bot${TOKEN}/sendMessage`)
    .times(5)
    .reply((_uri, body) => {
      bodies.push(body);
      return bodies.length === 1 ? [429, flood(3600), { 'content-type': 'application/json' }] : [200, { ok: true, result: {} }, { 'content-type': 'application/json' }];
    });
  const bot = new ScriptedBot((message) => [{ text: `re: ${message.text}` }]);
  const { request, logs } = await startServer(t, [TelegramInput.fromCredentials(CREDENTIALS)], { bot });
  await postUpdate(request, privateUpdate(41100, { text: 'one' }));
  await until(() => logs.text.includes('sending an answer failed'));
  t.regex(logs.text, /the platform asked to wait longer than the cap; giving up/);
  t.is(bodies.length, 1, 'no second attempt');
  await postUpdate(request, privateUpdate(41101, { text: 'two' }));
  await until(() => bodies.length >= 2);
  t.deepEqual(bodies, [{ chat_id: '1111111', text: 're: one' }, { chat_id: '1111111', text: 're: two' }]);
  t.false(logs.text.includes(TOKEN));
});

test.serial('telegram: a sendMessage whose answer times out is not sent again (the user would read it twice)', async (t) => {
  nock.cleanAll();
  nock(OWN_API).post(`/bot${TOKEN}/setWebhook`).reply(200, { ok: true, result: true });
  const bodies: unknown[] = [];
  nock(OWN_API)
    .post(`/bot${TOKEN}/sendMessage`)
    .times(5)
    .reply(async (_uri, body) => {
      bodies.push(body);
      // Telegram got it, and answers too late.
      if (bodies.length === 1) await new Promise((resolve) => setTimeout(resolve, 600));
      return [200, { ok: true, result: {} }, { 'content-type': 'application/json' }];
    });
  const bot = new ScriptedBot((message) => [{ text: `re: ${message.text}` }]);
  const { request, logs } = await startServer(t, [TelegramInput.fromCredentials({ ...CREDENTIALS, api_url: OWN_API })], { bot, http: { timeoutMs: 200 } });
  await postUpdate(request, privateUpdate(41200, { text: 'slow' }));
  await until(() => logs.text.includes('sending an answer failed'));
  t.regex(logs.text, /timed out after 200 ms/);
  t.deepEqual(bodies, [{ chat_id: '1111111', text: 're: slow' }], 'sent once');
  // The sender's next message is answered.
  await postUpdate(request, privateUpdate(41201, { text: 'next' }));
  await until(() => bodies.length >= 2);
  t.deepEqual(bodies[1], { chat_id: '1111111', text: 're: next' });
  nock.abortPendingRequests();
});

test.serial('telegram splitText: parts never exceed 4096 and keep every word', (t) => {
  const words = Array.from({ length: 3000 }, (_, i) => `w${i}`);
  const parts = splitText(words.join(' '));
  t.true(parts.length > 1);
  t.true(parts.every((part) => part.length <= 4096));
  t.deepEqual(parts.join(' ').split(' '), words);
  t.deepEqual(splitText('short'), ['short']);
  // An emoji across the cut is not broken in half.
  const emoji = splitText(`${'x'.repeat(4095)}😀y`);
  t.deepEqual(emoji, ['x'.repeat(4095), '😀y']);
});

test.serial('telegram customCalls: every matching key set fires, other keys go with each call', (t) => {
  t.deepEqual(customCalls({ text: 'hi', photo: 'p.jpg', disable_notification: true }), [
    ['sendMessage', { text: 'hi', disable_notification: true }],
    ['sendPhoto', { photo: 'p.jpg', disable_notification: true }],
  ]);
  t.deepEqual(customCalls({ action: 'upload_photo' }), [['sendChatAction', { action: 'upload_photo' }]]);
  t.deepEqual(customCalls({ media: [{ type: 'photo', media: 'a.jpg' }] }), [['sendMediaGroup', { media: [{ type: 'photo', media: 'a.jpg' }] }]]);
  t.deepEqual(customCalls({ game_short_name: 'tetris' }), [['sendGame', { game_short_name: 'tetris' }]]);
  t.deepEqual(customCalls({ audio: 'a.mp3', title: 'Song' }), [['sendAudio', { audio: 'a.mp3', title: 'Song' }]]);
  t.deepEqual(customCalls({ nothing: 1 }), []);
});

test.serial('telegram parseUpdate: inline-mode button presses answer the user who pressed', (t) => {
  const parsed = parseUpdate(
    { update_id: 7, callback_query: { id: 'q1', from: { id: 42, first_name: 'A' }, inline_message_id: '1234csdbsk4839', data: 'yes' } },
    { botUsername: 'moodbot', editedMessages: true },
  );
  t.like(parsed, { callbackQueryId: 'q1', messages: [{ text: 'yes', senderId: '42', messageId: '7' }] });
  t.is(typeof parseUpdate({ update_id: 8, callback_query: { id: 'q2', from: { id: 42 }, game_short_name: 'x' } as never }, { botUsername: 'moodbot', editedMessages: true }), 'string');
});

test('telegram readText: the mention is found and removed in every message, one after another (the regex is reused)', (t) => {
  for (const raw of ['@MoodBot hi', 'hi @moodbot', 'hello @moodbot_fan', '@moodbot  how are you?', 'mail me at a@moodbot']) {
    const twice = [readText(raw, 'moodbot'), readText(raw, 'moodbot')];
    t.deepEqual(twice[0], twice[1], raw);
  }
  t.like(readText('@MoodBot hi', 'moodbot'), { text: 'hi', mentioned: true });
  t.like(readText('hi @moodbot', 'moodbot'), { text: 'hi', mentioned: true });
  t.like(readText('hello @moodbot_fan', 'moodbot'), { text: 'hello @moodbot_fan', mentioned: false });
  t.like(readText('mail me at a@moodbot', 'moodbot'), { mentioned: false });
  t.like(readText('no mention here', 'moodbot'), { text: 'no mention here', mentioned: false });
});
