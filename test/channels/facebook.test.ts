import test, { type ExecutionContext } from 'ava';
import nock from 'nock';
import { createHmac } from 'node:crypto';
import FacebookInput, { parseDelivery, verifySignature } from '../../channels/facebook/index.js';
import { splitText } from '../../channels/facebook/output.js';
import { runChannelCases, startServer, ScriptedBot, type OutgoingCall } from '../harness.js';

const APP_SECRET = 'a9f3c0e1d2b4a6c8e0f1a2b3c4d5e6f7';
const PAGE_TOKEN = 'EAAGm0PX4ZCpsBAKZB-page-token-not-for-logs';
const VERIFY = 'switchboard-verify-7d1e';
const PAGE_ID = '106524335271937';
const PSID = '5471883929546893';
const OTHER_PSID = '6021457890123456';
const SEND_URL = 'https://graph.facebook.com/v21.0/me/messages';
const CREDENTIALS = { verify: VERIFY, secret: APP_SECRET, 'page-access-token': PAGE_TOKEN };

const sign256 = (raw: string) => ({ 'x-hub-signature-256': `sha256=${createHmac('sha256', APP_SECRET).update(raw).digest('hex')}` });
const sign1 = (raw: string) => ({ 'x-hub-signature': `sha1=${createHmac('sha1', APP_SECRET).update(raw).digest('hex')}` });
/** Meta sends both headers on every delivery. */
const signBoth = (raw: string) => ({ ...sign256(raw), ...sign1(raw) });

/** When this file's deliveries were "sent": `entry[].time` is checked against the replay window (36 h by default). */
const NOW = Date.now();

/** A delivery as Meta posts it: one entry with these messaging events. */
function delivery(...messaging: unknown[]): object {
  return { object: 'page', entry: [{ id: PAGE_ID, time: NOW, messaging }] };
}

/** A messaging event from a user to the page. */
function event(fields: object, sender = PSID, timestamp = 1458692752478): object {
  return { sender: { id: sender }, recipient: { id: PAGE_ID }, timestamp, ...fields };
}

/** The Send API call an answer becomes. */
function send(message: unknown, recipient = PSID, extra: Partial<OutgoingCall> = {}): OutgoingCall {
  return {
    url: SEND_URL,
    query: { access_token: PAGE_TOKEN },
    headers: { 'content-type': 'application/json' },
    body: { messaging_type: 'RESPONSE', notification_type: 'REGULAR', recipient: { id: recipient }, message },
    reply: { body: { recipient_id: recipient, message_id: 'm_AG5Hz2Uq7tuwNEhXfYYKj8mJEM_QPpz5jdCK48PnKAjSdjfipqxqMvK8ma6AC8fplwlqLP_5cgXIbu7I3rBN0P' } },
    ...extra,
  };
}

const textEvent = (text: string, mid: string, sender = PSID) => event({ message: { mid, text } }, sender);

const template = (payload: object) => ({ attachment: { type: 'template', payload } });

runChannelCases(test, {
  channel: FacebookInput,
  credentials: CREDENTIALS,
  cases: [
    // --- subscription check
    {
      label: 'facebook: GET /webhook with hub.mode=subscribe and the verify token answers the challenge as text',
      method: 'GET',
      path: `/webhook?hub.mode=subscribe&hub.verify_token=${VERIFY}&hub.challenge=1158201444`,
      status: 200,
      response: (t: ExecutionContext, r: { text: string; headers: Headers }) => {
        t.is(r.text, '1158201444');
        t.regex(r.headers.get('content-type') ?? '', /^text\/plain/);
      },
      received: [],
    },
    {
      label: 'facebook: GET /webhook with a wrong verify token is 403',
      method: 'GET',
      path: '/webhook?hub.mode=subscribe&hub.verify_token=guess&hub.challenge=1158201444',
      status: 403,
      response: { error: 'invalid verify token' },
    },
    {
      label: 'facebook: GET /webhook without hub.mode=subscribe is 403',
      method: 'GET',
      path: `/webhook?hub.mode=unsubscribe&hub.verify_token=${VERIFY}&hub.challenge=1158201444`,
      status: 403,
      response: { error: 'invalid verify token' },
    },
    {
      label: 'facebook: GET /webhook without a token is 403',
      method: 'GET',
      path: '/webhook?hub.mode=subscribe&hub.challenge=1',
      status: 403,
    },
    {
      label: 'facebook: GET / is the health route',
      method: 'GET',
      path: '/',
      status: 200,
      response: { status: 'ok' },
    },

    // --- incoming kinds
    {
      label: 'facebook: a text message reaches the bot and the answer is a Send API call with the page token',
      roundTrip: true,
      body: delivery(textEvent('hello, world!', 'm_1457764197618:41d102a3e1ae206a38')),
      sign: signBoth,
      answers: [{ text: 'Hey there!' }],
      status: 200,
      response: 'success',
      received: [
        {
          text: 'hello, world!',
          senderId: PSID,
          messageId: 'm_1457764197618:41d102a3e1ae206a38',
          inputChannel: 'facebook',
          metadata: { type: 'text', page_id: PAGE_ID, timestamp: 1458692752478 },
        },
      ],
      outgoing: [send({ text: 'Hey there!' })],
    },
    {
      label: 'facebook: a quick reply tap: its payload is the text, its title in metadata; quick replies answered natively',
      roundTrip: true,
      body: delivery(event({ message: { mid: 'm_qr1', text: 'Red', quick_reply: { payload: '/choose{"color":"red"}' } } })),
      sign: signBoth,
      answers: [{ text: 'Size?', quick_replies: [{ title: 'Small', payload: '/size{"s":"S"}' }, { title: 'Large, extra roomy and comfy', payload: '/size{"s":"L"}', image_url: 'https://example.com/l.png' }] }],
      status: 200,
      response: 'success',
      received: [{ text: '/choose{"color":"red"}', messageId: 'm_qr1', metadata: { type: 'quick_reply', title: 'Red' } }],
      outgoing: [
        send({
          text: 'Size?',
          quick_replies: [
            { content_type: 'text', title: 'Small', payload: '/size{"s":"S"}' },
            { content_type: 'text', title: 'Large, extra roomy a', payload: '/size{"s":"L"}', image_url: 'https://example.com/l.png' },
          ],
        }),
      ],
    },
    {
      label: 'facebook: a postback: its payload is the text, its title in metadata; buttons answered as a button template',
      roundTrip: true,
      body: delivery(event({ postback: { mid: 'm_pb1', title: 'Get Started', payload: '/greet' } })),
      sign: signBoth,
      answers: [{ text: 'How are you?', buttons: [{ title: 'great', payload: '/mood_great' }, { title: 'sad', payload: '/mood_sad' }, { type: 'web_url', title: 'Help', url: 'https://example.com/help' }] }],
      status: 200,
      response: 'success',
      received: [{ text: '/greet', senderId: PSID, messageId: 'm_pb1', metadata: { type: 'postback', title: 'Get Started' } }],
      outgoing: [
        send(
          template({
            template_type: 'button',
            text: 'How are you?',
            buttons: [
              { type: 'postback', title: 'great', payload: '/mood_great' },
              { type: 'postback', title: 'sad', payload: '/mood_sad' },
              { type: 'web_url', title: 'Help', url: 'https://example.com/help' },
            ],
          }),
        ),
      ],
    },
    {
      label: 'facebook: an image attachment: its URL is the text (as Rasa) and in metadata; image answered as an image attachment',
      roundTrip: true,
      body: delivery(event({ message: { mid: 'm_img1', attachments: [{ type: 'image', payload: { url: 'https://scontent.xx.fbcdn.net/v/t1.15752-9/cat.jpg' } }] } })),
      sign: signBoth,
      answers: [{ image: 'https://i.imgur.com/nGF1K8f.jpg' }],
      status: 200,
      response: 'success',
      received: [
        {
          text: 'https://scontent.xx.fbcdn.net/v/t1.15752-9/cat.jpg',
          messageId: 'm_img1',
          metadata: {
            type: 'attachment',
            attachment_type: 'image',
            url: 'https://scontent.xx.fbcdn.net/v/t1.15752-9/cat.jpg',
            attachments: [{ type: 'image', url: 'https://scontent.xx.fbcdn.net/v/t1.15752-9/cat.jpg' }],
          },
        },
      ],
      outgoing: [send({ attachment: { type: 'image', payload: { url: 'https://i.imgur.com/nGF1K8f.jpg' } } })],
    },
    {
      label: 'facebook: an echo of the page\'s own message is ignored',
      body: delivery({
        sender: { id: PAGE_ID },
        recipient: { id: PSID },
        timestamp: 1458692752478,
        message: { is_echo: true, app_id: 1517776481860111, metadata: 'sent-by-bot', mid: 'm_echo1', text: 'Hey there!' },
      }),
      sign: signBoth,
      status: 200,
      response: 'success',
      received: [],
      outgoing: [],
    },
    {
      label: 'facebook: delivery and read receipts are ignored',
      body: delivery(
        event({ delivery: { mids: ['m_1457764197618:41d102a3e1ae206a38'], watermark: 1458668856253 } }),
        event({ read: { watermark: 1458668856253 } }),
      ),
      sign: signBoth,
      status: 200,
      response: 'success',
      received: [],
      outgoing: [],
    },
    {
      label: 'facebook: two messaging events in one delivery are both processed, in order',
      roundTrip: true,
      body: delivery(textEvent('first', 'm_two_1'), textEvent('second', 'm_two_2')),
      sign: signBoth,
      answers: [{ text: 'got it' }],
      status: 200,
      response: 'success',
      received: [{ text: 'first', messageId: 'm_two_1' }, { text: 'second', messageId: 'm_two_2' }],
      outgoing: [send({ text: 'got it' }), send({ text: 'got it' })],
    },
    {
      label: 'facebook: two entries (batched by Meta) are all processed',
      body: { object: 'page', entry: [{ id: PAGE_ID, time: NOW, messaging: [textEvent('one', 'm_e1')] }, { id: PAGE_ID, time: NOW + 1, messaging: [textEvent('two', 'm_e2', OTHER_PSID)] }] },
      sign: signBoth,
      answers: [],
      status: 200,
      received: [{ text: 'one', senderId: PSID }, { text: 'two', senderId: OTHER_PSID }],
    },
    {
      label: 'facebook: a redelivered mid is answered success again but processed once',
      body: delivery(textEvent('hello again', 'm_redelivered_1')),
      sign: signBoth,
      repeat: 2,
      answers: [{ text: 'once' }],
      status: 200,
      response: 'success',
      received: [{ text: 'hello again' }],
      outgoing: [send({ text: 'once' })],
    },
    {
      label: 'facebook: a postback without mid is deduplicated by sender and timestamp',
      body: delivery(event({ postback: { title: 'Get Started', payload: '/greet' } })),
      sign: signBoth,
      repeat: 2,
      answers: [],
      status: 200,
      received: [{ text: '/greet', messageId: `postback:${PSID}:1458692752478` }],
    },
    {
      label: 'facebook: events with missing fields (no sender, no payload, no text) are skipped, the rest processed',
      body: delivery(
        { recipient: { id: PAGE_ID }, timestamp: 1, message: { mid: 'm_nosender', text: 'who?' } },
        event({ postback: { title: 'no payload' } }),
        event({ message: { mid: 'm_empty' } }),
        event({ message: { mid: 'm_loc', attachments: [{ type: 'fallback', payload: null, title: 'a link' }] } }),
        event({ optin: { ref: 'x' } }),
        'not an event',
        textEvent('still here', 'm_ok'),
      ),
      sign: signBoth,
      answers: [],
      status: 200,
      response: 'success',
      received: [{ text: 'still here' }],
    },
    {
      label: 'facebook: a JSON object that is not a page delivery (object: instagram) is answered success and not processed',
      body: { object: 'instagram', entry: [{ id: '1', time: NOW, messaging: [textEvent('hi', 'm_ig')] }] },
      sign: signBoth,
      status: 200,
      response: 'success',
      received: [],
      outgoing: [],
    },
    {
      label: 'facebook: a page delivery without entry is answered success and not processed',
      body: { object: 'page' },
      sign: signBoth,
      status: 200,
      response: 'success',
      received: [],
    },
    {
      label: 'facebook: a signed JSON body that is not an object is 400',
      body: '[1,2]',
      headers: { 'content-type': 'application/json' },
      sign: signBoth,
      status: 400,
      response: { error: 'expected a JSON object as the request body' },
      received: [],
    },
    {
      label: 'facebook: malformed JSON is 400 and never reaches the bot',
      body: '{"object":"page","entry":[',
      headers: { 'content-type': 'application/json' },
      sign: signBoth,
      status: 400,
      response: { error: 'malformed JSON body' },
      received: [],
      outgoing: [],
    },

    // --- verification
    {
      label: 'facebook: a bad X-Hub-Signature-256 is 401 and the bot is never called',
      body: delivery(textEvent('forged', 'm_forged')),
      headers: { 'x-hub-signature-256': `sha256=${'0'.repeat(64)}` },
      status: 401,
      response: { error: 'request could not be verified' },
      received: [],
      outgoing: [],
    },
    {
      label: 'facebook: a signature over other bytes (the body re-serialised) is 401',
      body: '{ "object": "page", "entry": [] }',
      headers: { 'content-type': 'application/json' },
      sign: () => sign256(JSON.stringify({ object: 'page', entry: [] })),
      status: 401,
      received: [],
    },
    {
      label: 'facebook: a missing signature is 401',
      body: delivery(textEvent('unsigned', 'm_unsigned')),
      status: 401,
      response: { error: 'request could not be verified' },
      received: [],
      outgoing: [],
    },
    {
      label: 'facebook: the legacy X-Hub-Signature (sha1) is accepted when the 256 header is absent',
      body: delivery(textEvent('old proxy', 'm_sha1')),
      sign: sign1,
      answers: [],
      status: 200,
      response: 'success',
      received: [{ text: 'old proxy' }],
    },
    {
      label: 'facebook: a valid sha1 does not rescue a bad X-Hub-Signature-256',
      body: delivery(textEvent('mixed', 'm_mixed')),
      sign: (raw) => ({ ...sign1(raw), 'x-hub-signature-256': `sha256=${'a'.repeat(64)}` }),
      status: 401,
      received: [],
    },
    {
      label: 'facebook: the legacy header with sha256= (not sha1) is refused',
      body: delivery(textEvent('odd', 'm_odd')),
      sign: (raw) => ({ 'x-hub-signature': sign256(raw)['x-hub-signature-256'] }),
      status: 401,
      received: [],
    },
    {
      label: 'facebook: a signature made with another secret is 401',
      body: delivery(textEvent('other app', 'm_other')),
      sign: (raw) => ({ 'x-hub-signature-256': `sha256=${createHmac('sha256', 'other-secret').update(raw).digest('hex')}` }),
      status: 401,
      received: [],
    },

    // --- each answer kind
    {
      label: 'facebook: text with blank lines is sent as one message per part',
      roundTrip: true,
      body: delivery(textEvent('hi', 'm_parts')),
      sign: signBoth,
      answers: [{ text: 'Hello!\n\nHow can I help?' }],
      status: 200,
      outgoing: [send({ text: 'Hello!' }), send({ text: 'How can I help?' })],
    },
    {
      label: 'facebook: more than 3 postback buttons are sent as quick replies, none dropped',
      roundTrip: true,
      body: delivery(textEvent('menu', 'm_menu')),
      sign: signBoth,
      answers: [{ text: 'Pick one', buttons: ['a', 'b', 'c', 'd'].map((x) => ({ title: x.toUpperCase(), payload: `/pick{"x":"${x}"}` })) }],
      status: 200,
      outgoing: [
        send({
          text: 'Pick one',
          quick_replies: ['a', 'b', 'c', 'd'].map((x) => ({ content_type: 'text', title: x.toUpperCase(), payload: `/pick{"x":"${x}"}` })),
        }),
      ],
    },
    {
      label: 'facebook: more than 3 buttons with a link are split into button templates of 3',
      roundTrip: true,
      body: delivery(textEvent('links', 'm_links')),
      sign: signBoth,
      answers: [
        {
          text: 'Where to?',
          buttons: [
            { title: 'one', payload: '/one' },
            { title: 'two', payload: '/two' },
            { title: 'three', payload: '/three' },
            { type: 'web_url', title: 'site', url: 'https://example.com' },
          ],
        },
      ],
      status: 200,
      outgoing: [
        send(
          template({
            template_type: 'button',
            text: 'Where to?',
            buttons: [
              { type: 'postback', title: 'one', payload: '/one' },
              { type: 'postback', title: 'two', payload: '/two' },
              { type: 'postback', title: 'three', payload: '/three' },
            ],
          }),
        ),
        send(template({ template_type: 'button', text: 'Where to?', buttons: [{ type: 'web_url', title: 'site', url: 'https://example.com' }] })),
      ],
    },
    {
      label: 'facebook: more than 13 quick replies become the numbered text list',
      body: delivery(textEvent('many', 'm_many')),
      sign: signBoth,
      answers: [{ text: 'Number?', quick_replies: Array.from({ length: 14 }, (_, i) => ({ title: `n${i + 1}`, payload: `/n${i + 1}` })) }],
      status: 200,
      outgoing: [send({ text: ['Number?', ...Array.from({ length: 14 }, (_, i) => `${i + 1}: n${i + 1} (/n${i + 1})`)].join('\n') })],
    },
    {
      label: 'facebook: elements are a generic template, untyped buttons become postbacks',
      body: delivery(textEvent('show', 'm_cards')),
      sign: signBoth,
      answers: [
        {
          elements: [
            { title: 'Classic T-Shirt', subtitle: 'Soft cotton', image_url: 'https://example.com/t.png', buttons: [{ title: 'Buy', payload: '/buy{"sku":"t1"}' }] },
            { title: 'Hoodie', default_action: { type: 'web_url', url: 'https://example.com/h' } },
          ],
        },
      ],
      status: 200,
      outgoing: [
        send(
          template({
            template_type: 'generic',
            elements: [
              { title: 'Classic T-Shirt', subtitle: 'Soft cotton', image_url: 'https://example.com/t.png', buttons: [{ type: 'postback', title: 'Buy', payload: '/buy{"sku":"t1"}' }] },
              { title: 'Hoodie', default_action: { type: 'web_url', url: 'https://example.com/h' } },
            ],
          }),
        ),
      ],
    },
    {
      label: 'facebook: more than 10 elements are sent as several generic templates',
      body: delivery(textEvent('all', 'm_all')),
      sign: signBoth,
      answers: [{ elements: Array.from({ length: 11 }, (_, i) => ({ title: `card ${i + 1}` })) }],
      status: 200,
      outgoing: [
        send(template({ template_type: 'generic', elements: Array.from({ length: 10 }, (_, i) => ({ title: `card ${i + 1}` })) })),
        send(template({ template_type: 'generic', elements: [{ title: 'card 11' }] })),
      ],
    },
    {
      label: 'facebook: custom JSON is the message object',
      body: delivery(textEvent('custom', 'm_custom')),
      sign: signBoth,
      answers: [{ custom: { attachment: { type: 'template', payload: { template_type: 'media', elements: [{ media_type: 'image', url: 'https://www.facebook.com/photo.php?fbid=1' }] } } } }],
      status: 200,
      outgoing: [send({ attachment: { type: 'template', payload: { template_type: 'media', elements: [{ media_type: 'image', url: 'https://www.facebook.com/photo.php?fbid=1' }] } } })],
    },
    {
      label: 'facebook: a sender.id in custom JSON names the recipient, and a list is sent item by item',
      body: delivery(textEvent('handover', 'm_handover')),
      sign: signBoth,
      answers: [{ custom: [{ sender: { id: OTHER_PSID }, text: 'for the agent' }, { text: 'and this too' }] }],
      status: 200,
      outgoing: [send({ text: 'for the agent' }, OTHER_PSID), send({ text: 'and this too' }, OTHER_PSID)],
    },
    {
      label: 'facebook: an attachment answer falls back to text; notification_type and tag options are passed on',
      body: delivery(textEvent('file', 'm_file')),
      sign: signBoth,
      answers: [{ attachment: 'https://example.com/report.pdf', notification_type: 'SILENT_PUSH', messaging_type: 'MESSAGE_TAG', tag: 'ACCOUNT_UPDATE' }],
      status: 200,
      outgoing: [
        send({ text: 'Attachment: https://example.com/report.pdf' }, PSID, {
          body: { messaging_type: 'MESSAGE_TAG', notification_type: 'SILENT_PUSH', tag: 'ACCOUNT_UPDATE', recipient: { id: PSID }, message: { text: 'Attachment: https://example.com/report.pdf' } },
        }),
      ],
    },
    {
      label: 'facebook: a 503 from the Send API (not processed) is retried',
      body: delivery(textEvent('retry', 'm_retry')),
      sign: signBoth,
      answers: [{ text: 'eventually' }],
      status: 200,
      response: 'success',
      outgoing: [
        send({ text: 'eventually' }, PSID, { reply: { status: 503, body: { error: { message: 'Service temporarily unavailable', type: 'OAuthException', code: 2, fbtrace_id: 'A1b2' } } } }),
        send({ text: 'eventually' }),
      ],
    },
  ],
});

runChannelCases(test, {
  channel: FacebookInput,
  credentials: { ...CREDENTIALS, api_url: 'https://graph-proxy.example.com/fb/', graph_version: 'v19.0' },
  cases: [
    {
      label: 'facebook: api_url and graph_version replace the Send API base',
      body: delivery(textEvent('proxied', 'm_proxied')),
      sign: signBoth,
      answers: [{ text: 'via proxy' }],
      status: 200,
      outgoing: [send({ text: 'via proxy' }, PSID, { url: 'https://graph-proxy.example.com/fb/v19.0/me/messages' })],
    },
  ],
});

runChannelCases(test, {
  channel: FacebookInput,
  credentials: { verify: VERIFY, 'page-access-token': PAGE_TOKEN, allow_unverified: true },
  cases: [
    {
      label: 'facebook allow_unverified: an unsigned delivery is processed',
      body: delivery(textEvent('no secret', 'm_unverified')),
      answers: [{ text: 'ok' }],
      status: 200,
      response: 'success',
      received: [{ text: 'no secret' }],
      outgoing: [send({ text: 'ok' })],
    },
  ],
});

// --- replays: `entry[].time` is signed with the body, so an old delivery cannot be made to look new.

const HOUR = 3_600_000;
/** A delivery sent at `time` (ms), with one text event. */
const deliveryAt = (time: number, mid: string, text = 'replayed') => ({ object: 'page', entry: [{ id: PAGE_ID, time, messaging: [textEvent(text, mid)] }] });
/** A delivery the bot must never see: answered `success` (so Meta stops retrying), no Send API call. */
const stale = (label: string, body: object) => ({ label: `facebook replay: ${label} → 200 success, the bot never called`, body, sign: signBoth, status: 200, response: 'success', received: [], outgoing: [] });
const fresh = (label: string, body: object, text = 'replayed') => ({ label: `facebook replay: ${label} → processed`, body, sign: signBoth, answers: [{ text: 'ok' }], status: 200, response: 'success', received: [{ text }], outgoing: [send({ text: 'ok' })] });

runChannelCases(test, {
  channel: FacebookInput,
  credentials: CREDENTIALS,
  cases: [
    stale('a correctly signed delivery from 2023', deliveryAt(Date.parse('2023-03-14T09:26:53.589Z'), 'm_2023')),
    stale("a delivery 37 h old (past Meta's 36 h of retries)", deliveryAt(NOW - 37 * HOUR, 'm_37h')),
    fresh('a delivery 35 h old (a late retry by Meta)', deliveryAt(NOW - 35 * HOUR, 'm_35h')),
    stale('entry.time 10 minutes in the future', deliveryAt(NOW + 10 * 60_000, 'm_future')),
    fresh('entry.time 2 minutes in the future (clock skew)', deliveryAt(NOW + 2 * 60_000, 'm_skew')),
    stale('an entry without time', { object: 'page', entry: [{ id: PAGE_ID, messaging: [textEvent('no time', 'm_notime')] }] }),
    stale('entry.time as a string', { object: 'page', entry: [{ id: PAGE_ID, time: 'now', messaging: [textEvent('string time', 'm_strtime')] }] }),
    stale('a fresh entry batched with a 2023 one', {
      object: 'page',
      entry: [
        { id: PAGE_ID, time: NOW, messaging: [textEvent('new', 'm_batch_new')] },
        { id: PAGE_ID, time: Date.parse('2023-03-14T09:26:53.589Z'), messaging: [textEvent('old', 'm_batch_old')] },
      ],
    }),
  ],
});

runChannelCases(test, {
  channel: FacebookInput,
  credentials: { ...CREDENTIALS, replay_window: 0 },
  cases: [fresh('replay_window: 0 turns the check off: a delivery from 2023', deliveryAt(Date.parse('2023-03-14T09:26:53.589Z'), 'm_2023_off'))],
});

runChannelCases(test, {
  channel: FacebookInput,
  credentials: { ...CREDENTIALS, replay_window: 60 },
  cases: [
    stale('replay_window: 60, a delivery 2 minutes old', deliveryAt(NOW - 2 * 60_000, 'm_2min')),
    fresh('replay_window: 60, a delivery 30 s old', deliveryAt(NOW - 30_000, 'm_30s')),
  ],
});

test('facebook replay: a stale delivery is logged at info with the reason, and the window is a credentials key', async (t) => {
  const channel = FacebookInput.fromCredentials(CREDENTIALS);
  t.is(channel.credentials.replay_window, 129600);
  t.is(FacebookInput.fromCredentials({ ...CREDENTIALS, replay_window: '600' }).credentials.replay_window, 600);
  t.regex(t.throws(() => FacebookInput.fromCredentials({ ...CREDENTIALS, replay_window: -1 }))?.message ?? '', /^"replay_window": /);
  const bot = new ScriptedBot([{ text: 'never' }]);
  const { request, logs } = await startServer(t, [channel], { bot });
  const raw = JSON.stringify(deliveryAt(Date.parse('2023-03-14T09:26:53.589Z'), 'm_logged'));
  const response = await request('/webhooks/facebook/webhook', { method: 'POST', headers: { 'content-type': 'application/json', ...signBoth(raw) }, body: raw });
  t.is(response.status, 200);
  const line = logs.lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === 'messenger delivery ignored: outside the replay window');
  t.is(line?.level, 30);
  t.regex(String(line?.reason), /^entry\.time: timestamp is \d+ s old, over the replay window of 129600 s/);
  t.is(bot.received.length, 0);
});

// --- credentials

test('facebook: a section without secret is refused, saying why and how to opt out', (t) => {
  const error = t.throws(() => FacebookInput.fromCredentials({ verify: VERIFY, 'page-access-token': PAGE_TOKEN }));
  t.regex(error?.message ?? '', /^missing "secret", needed to verify that requests come from the platform \(or set allow_unverified: true/);
});

test('facebook: allow_unverified: true starts without secret, unverified', (t) => {
  const channel = FacebookInput.fromCredentials({ verify: VERIFY, 'page-access-token': PAGE_TOKEN, allow_unverified: true });
  t.true(channel.unverified);
});

test('facebook: verify and page-access-token are required, by name', (t) => {
  t.is(t.throws(() => FacebookInput.fromCredentials({ secret: APP_SECRET, 'page-access-token': PAGE_TOKEN }))?.message, 'missing "verify"');
  t.is(t.throws(() => FacebookInput.fromCredentials({ secret: APP_SECRET, verify: VERIFY }))?.message, 'missing "page-access-token"');
});

test('facebook: defaults and a malformed graph_version', (t) => {
  const channel = FacebookInput.fromCredentials(CREDENTIALS);
  t.like(channel.credentials, { graph_version: 'v21.0', api_url: 'https://graph.facebook.com', typing_indicator: true });
  t.false(channel.unverified);
  t.regex(t.throws(() => FacebookInput.fromCredentials({ ...CREDENTIALS, graph_version: '21' }))?.message ?? '', /^"graph_version": must look like v21.0/);
});

// --- typing indicator and logs, on a server of their own

function slowBot(ms: number): ScriptedBot {
  return new ScriptedBot(async () => {
    await new Promise((resolve) => setTimeout(resolve, ms));
    return [{ text: 'done thinking' }];
  });
}

function recordSendApi(calls: unknown[], status = 200) {
  return nock('https://graph.facebook.com')
    .post('/v21.0/me/messages')
    .query({ access_token: PAGE_TOKEN })
    .times(5)
    .reply(status, (_uri, body) => {
      calls.push(body);
      return status === 200 ? { recipient_id: PSID } : { error: { message: 'Invalid OAuth access token.', type: 'OAuthException', code: 190 } };
    });
}

async function deliver(request: (path: string, init?: RequestInit) => Promise<{ status: number; text: string }>, body: object) {
  const raw = JSON.stringify(body);
  return request('/webhooks/facebook/webhook', { method: 'POST', headers: { 'content-type': 'application/json', ...signBoth(raw) }, body: raw });
}

async function until(check: () => boolean, timeoutMs = 3_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
}

test.serial('facebook: a slow bot gets typing_on before its answer; Meta got success before the bot finished', async (t) => {
  nock.disableNetConnect();
  nock.enableNetConnect('127.0.0.1');
  t.teardown(() => nock.cleanAll());
  const calls: unknown[] = [];
  recordSendApi(calls);
  const bot = slowBot(700);
  const { request } = await startServer(t, [FacebookInput.fromCredentials(CREDENTIALS)], { bot });
  const started = Date.now();
  const response = await deliver(request, delivery(textEvent('think hard', 'm_slow')));
  t.is(response.status, 200);
  t.is(response.text, 'success');
  t.true(Date.now() - started < 500, 'acknowledged before the bot answered');
  await until(() => calls.length >= 2);
  t.deepEqual(calls, [
    { recipient: { id: PSID }, sender_action: 'typing_on' },
    { messaging_type: 'RESPONSE', notification_type: 'REGULAR', recipient: { id: PSID }, message: { text: 'done thinking' } },
  ]);
});

test.serial('facebook: typing_indicator: false sends no sender action', async (t) => {
  nock.disableNetConnect();
  nock.enableNetConnect('127.0.0.1');
  t.teardown(() => nock.cleanAll());
  const calls: unknown[] = [];
  recordSendApi(calls);
  const { request } = await startServer(t, [FacebookInput.fromCredentials({ ...CREDENTIALS, typing_indicator: false })], { bot: slowBot(700) });
  await deliver(request, delivery(textEvent('think hard', 'm_slow_quiet')));
  await until(() => calls.length >= 1);
  await new Promise((resolve) => setTimeout(resolve, 50));
  t.deepEqual(calls, [{ messaging_type: 'RESPONSE', notification_type: 'REGULAR', recipient: { id: PSID }, message: { text: 'done thinking' } }]);
});

test.serial('facebook: a failed Send API call is logged with the recipient, never with the page token', async (t) => {
  nock.disableNetConnect();
  nock.enableNetConnect('127.0.0.1');
  t.teardown(() => nock.cleanAll());
  const calls: unknown[] = [];
  recordSendApi(calls, 400);
  const { request, logs } = await startServer(t, [FacebookInput.fromCredentials(CREDENTIALS)], { bot: new ScriptedBot([{ text: 'hi' }]) });
  await deliver(request, delivery(textEvent('hello', 'm_badtoken')));
  await until(() => logs.text.includes('sending an answer failed'));
  t.is(calls.length, 1, 'a 400 is not retried');
  t.regex(logs.text, /outgoing call failed/);
  t.regex(logs.text, new RegExp(PSID));
  t.false(logs.text.includes(PAGE_TOKEN), 'the page token is not in the logs');
  t.false(logs.text.includes(APP_SECRET), 'the app secret is not in the logs');
});

// --- the pure parts

test('facebook verifySignature: reasons, never throws', (t) => {
  const raw = '{"object":"page"}';
  t.true(verifySignature(raw, sign256(raw), APP_SECRET));
  t.true(verifySignature(raw, sign1(raw), APP_SECRET));
  t.true(verifySignature(Buffer.from(raw), signBoth(raw), APP_SECRET));
  t.is(verifySignature(raw, {}, APP_SECRET), 'missing X-Hub-Signature-256 header');
  t.is(verifySignature(raw, { 'x-hub-signature-256': '' }, APP_SECRET), 'X-Hub-Signature-256 does not match the body');
  t.is(verifySignature(raw, { 'x-hub-signature-256': 'sha256=zz' }, APP_SECRET), 'X-Hub-Signature-256 does not match the body');
  t.is(verifySignature(raw, sign256(raw), undefined), 'no app secret configured');
  t.is(verifySignature(raw, sign256(raw), ''), 'no app secret configured');
  // Hex case does not matter.
  t.true(verifySignature(raw, { 'x-hub-signature-256': sign256(raw)['x-hub-signature-256'].toUpperCase().replace('SHA256=', 'sha256=') }, APP_SECRET));
});

test('facebook parseDelivery: messages in order, ignored events with their reason', (t) => {
  const parsed = parseDelivery(delivery(textEvent('a', 'm_a'), event({ read: { watermark: 1 } }), event({ message: { is_echo: true, mid: 'm_e', text: 'x' } }, PAGE_ID)));
  t.deepEqual(parsed.messages.map((m) => m.text), ['a']);
  t.deepEqual(parsed.ignored.map((i) => i.reason), ['read receipt', 'echo of a message the page sent']);
  t.deepEqual(parseDelivery(null), { messages: [], ignored: [{ reason: 'not a Messenger page delivery (object: object)' }] });
  t.deepEqual(parseDelivery({ object: 'page', entry: [{ id: '1', standby: [] }] }).ignored, [{ reason: 'entry without messaging events' }]);
});

test('facebook splitText: over 2000 characters splits at a space', (t) => {
  const words = Array.from({ length: 500 }, () => 'word').join(' ');
  const parts = splitText(words);
  t.is(parts.length, 2);
  t.true(parts.every((p) => p.length <= 2000));
  t.is(parts.join(' '), words);
  t.deepEqual(splitText('x'.repeat(2001)), ['x'.repeat(2000), 'x']);
});
