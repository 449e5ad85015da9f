import test, { type ExecutionContext } from 'ava';
import nock from 'nock';
import { createHmac } from 'node:crypto';
import WhatsAppInput, { checkMessageTime, parseNotification, splitText, verifySignature } from '../../channels/whatsapp/index.js';
import { runChannelCases, startServer, ScriptedBot, type OutgoingCall } from '../harness.js';

const APP_SECRET = '4f1c2d9e8b7a6f5e4d3c2b1a0f9e8d7c';
const ACCESS_TOKEN = 'EAAJB-whatsapp-system-user-token-not-for-logs';
const VERIFY_TOKEN = 'switchboard-wa-verify-3c9a';
const WABA_ID = '102290129340398';
const PHONE_NUMBER_ID = '106540352242922';
const DISPLAY_PHONE_NUMBER = '15550783881';
const WA_ID = '16505551234';
const OTHER_WA_ID = '447700900123';
const SEND_URL = `https://graph.facebook.com/v23.0/${PHONE_NUMBER_ID}/messages`;
const CREDENTIALS = { phone_number_id: PHONE_NUMBER_ID, access_token: ACCESS_TOKEN, app_secret: APP_SECRET, verify_token: VERIFY_TOKEN };

const sign = (raw: string) => ({ 'x-hub-signature-256': `sha256=${createHmac('sha256', APP_SECRET).update(raw).digest('hex')}` });
const sign1 = (raw: string) => ({ 'x-hub-signature': `sha1=${createHmac('sha1', APP_SECRET).update(raw).digest('hex')}` });

/** Message timestamps are Unix seconds as strings, checked against the replay window (24 h by default). */
const NOW_S = Math.floor(Date.now() / 1000);

/** A `messages` notification as the Cloud API posts it (webhooks reference): one change with this value. */
function notification(value: object, phoneNumberId = PHONE_NUMBER_ID): object {
  return {
    object: 'whatsapp_business_account',
    entry: [
      {
        id: WABA_ID,
        changes: [
          {
            value: { messaging_product: 'whatsapp', metadata: { display_phone_number: DISPLAY_PHONE_NUMBER, phone_number_id: phoneNumberId }, ...value },
            field: 'messages',
          },
        ],
      },
    ],
  };
}

/** A notification carrying these received messages, with the sender's profile in `contacts`. */
function received(...messages: object[]): object {
  return notification({ contacts: [{ profile: { name: 'Kerry Fisher' }, wa_id: WA_ID }], messages });
}

/** One received message from the user. */
function message(id: string, fields: object, from = WA_ID, timestamp = String(NOW_S)): object {
  return { from, id, timestamp, ...fields };
}

const textMessage = (body: string, id: string) => message(id, { type: 'text', text: { body } });

/** The Messages API call an answer becomes, and Meta's answer to it. */
function send(fields: object, to = WA_ID, extra: Partial<OutgoingCall> = {}): OutgoingCall {
  return {
    url: SEND_URL,
    headers: { authorization: `Bearer ${ACCESS_TOKEN}`, 'content-type': 'application/json' },
    body: { messaging_product: 'whatsapp', recipient_type: 'individual', to, ...fields },
    reply: { body: { messaging_product: 'whatsapp', contacts: [{ input: to, wa_id: to }], messages: [{ id: 'wamid.HBgLMTY1MDU1NTEyMzQVAgARGBI3N0EyQUJDMjFEQzZCQUMzODMA' }] } },
    ...extra,
  };
}

const text = (body: string, to = WA_ID, extra: Partial<OutgoingCall> = {}) => send({ type: 'text', text: { body } }, to, extra);
const interactive = (fields: object) => send({ type: 'interactive', interactive: fields });

/** The Graph API's error answer (`{error: {message, type, code, error_data, fbtrace_id}}`). */
const graphError = (code: number, message: string, details?: string) => ({
  error: { message, type: 'OAuthException', code, ...(details ? { error_data: { messaging_product: 'whatsapp', details } } : {}), fbtrace_id: 'AbCdEf123' },
});

runChannelCases(test, {
  channel: WhatsAppInput,
  credentials: CREDENTIALS,
  cases: [
    // --- subscription check and health
    {
      label: 'whatsapp: GET /webhook with hub.mode=subscribe and the verify token answers the challenge as text',
      method: 'GET',
      path: `/webhook?hub.mode=subscribe&hub.verify_token=${VERIFY_TOKEN}&hub.challenge=1158201444`,
      status: 200,
      response: (t: ExecutionContext, r: { text: string; headers: Headers }) => {
        t.is(r.text, '1158201444');
        t.regex(r.headers.get('content-type') ?? '', /^text\/plain/);
      },
      received: [],
    },
    {
      label: 'whatsapp: GET /webhook with a wrong verify token is 403',
      method: 'GET',
      path: '/webhook?hub.mode=subscribe&hub.verify_token=guess&hub.challenge=1158201444',
      status: 403,
      response: { error: 'invalid verify token' },
    },
    {
      label: 'whatsapp: GET /webhook without hub.mode=subscribe is 403',
      method: 'GET',
      path: `/webhook?hub.mode=unsubscribe&hub.verify_token=${VERIFY_TOKEN}&hub.challenge=1158201444`,
      status: 403,
    },
    {
      label: 'whatsapp: GET /webhook with the token but no challenge is 400',
      method: 'GET',
      path: `/webhook?hub.mode=subscribe&hub.verify_token=${VERIFY_TOKEN}`,
      status: 400,
      response: { error: 'missing "hub.challenge"' },
    },
    { label: 'whatsapp: GET / is the health route', method: 'GET', path: '/', status: 200, response: { status: 'ok' } },

    // --- verification fails closed
    { label: 'whatsapp: an unsigned notification is 401 and never reaches the bot', body: received(textMessage('hi', 'wamid.unsigned')), status: 401, received: [], outgoing: [] },
    {
      label: 'whatsapp: a signature made with another secret is 401',
      body: received(textMessage('hi', 'wamid.wrongkey')),
      sign: (raw) => ({ 'x-hub-signature-256': `sha256=${createHmac('sha256', 'not-the-app-secret').update(raw).digest('hex')}` }),
      status: 401,
      received: [],
    },
    {
      label: 'whatsapp: a signature of another body (tampered text) is 401',
      body: received(textMessage('transfer 1000', 'wamid.tampered')),
      sign: () => sign(JSON.stringify(received(textMessage('transfer 1', 'wamid.tampered')))),
      status: 401,
      received: [],
    },
    { label: 'whatsapp: the legacy sha1 header alone is not enough: 401', body: received(textMessage('hi', 'wamid.sha1')), sign: sign1, status: 401, received: [] },
    { label: 'whatsapp: an empty X-Hub-Signature-256 is 401', body: received(textMessage('hi', 'wamid.empty')), headers: { 'x-hub-signature-256': '' }, status: 401, received: [] },

    // --- incoming kinds
    {
      label: 'whatsapp: a text message reaches the bot; the answer is a Messages API call with the Bearer token',
      roundTrip: true,
      body: received(textMessage('hello, world!', 'wamid.HBgLMTY1MDU1NTEyMzQVAgASGBQzQTdCNUZFMDdFQkMxNDFFNUE4OAA=')),
      sign,
      answers: [{ text: 'Hey there!' }],
      status: 200,
      response: 'success',
      received: [
        {
          text: 'hello, world!',
          senderId: WA_ID,
          messageId: 'wamid.HBgLMTY1MDU1NTEyMzQVAgASGBQzQTdCNUZFMDdFQkMxNDFFNUE4OAA=',
          inputChannel: 'whatsapp',
          metadata: { type: 'text', name: 'Kerry Fisher', phone_number_id: PHONE_NUMBER_ID, display_phone_number: DISPLAY_PHONE_NUMBER },
        },
      ],
      outgoing: [text('Hey there!')],
    },
    {
      label: 'whatsapp: a reply button press: its id is the text, its title and the message it answered in metadata',
      roundTrip: true,
      body: received(
        message('wamid.button_reply', {
          context: { from: DISPLAY_PHONE_NUMBER, id: 'wamid.HBgLMTY1MDU1NTEyMzQVAgARGBJGQTMyNzQ4NUY5RjFBNzdEMQA=' },
          type: 'interactive',
          interactive: { type: 'button_reply', button_reply: { id: '/mood_great', title: 'great' } },
        }),
      ),
      sign,
      answers: [{ text: 'Great, carry on!' }],
      status: 200,
      received: [
        {
          text: '/mood_great',
          messageId: 'wamid.button_reply',
          metadata: { type: 'button_reply', title: 'great', context: { from: DISPLAY_PHONE_NUMBER, id: 'wamid.HBgLMTY1MDU1NTEyMzQVAgARGBJGQTMyNzQ4NUY5RjFBNzdEMQA=' } },
        },
      ],
      outgoing: [text('Great, carry on!')],
    },
    {
      label: 'whatsapp: a list row choice: its id is the text, title and description in metadata',
      body: received(
        message('wamid.list_reply', {
          type: 'interactive',
          interactive: { type: 'list_reply', list_reply: { id: '/book{"slot":"9am"}', title: '9 am', description: 'Tomorrow, with Dr. Lee' } },
        }),
      ),
      sign,
      answers: [{ text: 'Booked.' }],
      status: 200,
      received: [{ text: '/book{"slot":"9am"}', metadata: { type: 'list_reply', title: '9 am', description: 'Tomorrow, with Dr. Lee' } }],
      outgoing: [text('Booked.')],
    },
    {
      label: "whatsapp: a template's quick-reply button: button.payload is the text, button.text the title",
      body: received(message('wamid.template_button', { context: { from: DISPLAY_PHONE_NUMBER, id: 'wamid.template' }, type: 'button', button: { text: 'No', payload: 'No-Button-Payload' } })),
      sign,
      answers: [{ text: 'Understood.' }],
      status: 200,
      received: [{ text: 'No-Button-Payload', metadata: { type: 'button', title: 'No' } }],
      outgoing: [text('Understood.')],
    },
    {
      label: 'whatsapp: a location reaches the bot as metadata, with empty text',
      body: received(message('wamid.location', { type: 'location', location: { latitude: 37.483307, longitude: 122.148981, name: 'Philz Coffee', address: '101 Forest Ave, Palo Alto, CA 94301' } })),
      sign,
      answers: [{ text: 'Nice spot.' }],
      status: 200,
      received: [{ text: '', metadata: { type: 'location', location: { latitude: 37.483307, longitude: 122.148981, name: 'Philz Coffee', address: '101 Forest Ave, Palo Alto, CA 94301' } } }],
      outgoing: [text('Nice spot.')],
    },
    {
      label: 'whatsapp: an image reaches the bot as metadata (media id, type, hash), its caption as the text',
      body: received(message('wamid.image', { type: 'image', image: { caption: 'my receipt', mime_type: 'image/jpeg', sha256: 'ZmFrZS1zaGEyNTYtb2YtdGhlLWltYWdl', id: '1003383421387256' } })),
      sign,
      answers: [{ text: 'Got it.' }],
      status: 200,
      received: [{ text: 'my receipt', metadata: { type: 'image', media: { id: '1003383421387256', mime_type: 'image/jpeg', sha256: 'ZmFrZS1zaGEyNTYtb2YtdGhlLWltYWdl', caption: 'my receipt' } } }],
      outgoing: [text('Got it.')],
    },
    {
      label: 'whatsapp: a voice note without caption reaches the bot with empty text',
      body: received(message('wamid.audio', { type: 'audio', audio: { mime_type: 'audio/ogg; codecs=opus', sha256: 'b2dnLWF1ZGlv', id: '918273645546372', voice: true } })),
      sign,
      answers: [],
      status: 200,
      received: [{ text: '', metadata: { type: 'audio', media: { id: '918273645546372', mime_type: 'audio/ogg; codecs=opus', sha256: 'b2dnLWF1ZGlv' } } }],
      outgoing: [],
    },
    {
      label: 'whatsapp: status callbacks (sent, delivered, read) are acknowledged and never reach the bot',
      body: notification({
        statuses: [
          { id: 'wamid.out1', status: 'sent', timestamp: String(NOW_S), recipient_id: WA_ID, conversation: { id: 'c1', origin: { type: 'service' } }, pricing: { billable: true, pricing_model: 'CBP', category: 'service' } },
          { id: 'wamid.out1', status: 'delivered', timestamp: String(NOW_S), recipient_id: WA_ID },
          { id: 'wamid.out1', status: 'read', timestamp: String(NOW_S), recipient_id: WA_ID },
        ],
      }),
      sign,
      status: 200,
      response: 'success',
      received: [],
      outgoing: [],
    },
    {
      label: 'whatsapp: a failed status is acknowledged and never reaches the bot',
      body: notification({ statuses: [{ id: 'wamid.out2', status: 'failed', timestamp: String(NOW_S), recipient_id: WA_ID, errors: [{ code: 131026, title: 'Message undeliverable' }] }] }),
      sign,
      status: 200,
      response: 'success',
      received: [],
      outgoing: [],
    },
    {
      label: 'whatsapp: a reaction (not a kind the bot takes) is acknowledged and ignored',
      body: received(message('wamid.reaction', { type: 'reaction', reaction: { message_id: 'wamid.out1', emoji: '\u{1F44D}' } })),
      sign,
      status: 200,
      response: 'success',
      received: [],
      outgoing: [],
    },
    {
      label: 'whatsapp: a message to another phone number of the same app is not this channel\'s to answer',
      body: notification({ contacts: [{ profile: { name: 'Kerry Fisher' }, wa_id: WA_ID }], messages: [textMessage('hi', 'wamid.other_number')] }, '999999999999999'),
      sign,
      status: 200,
      received: [],
      outgoing: [],
    },
    {
      label: 'whatsapp: a redelivered notification (same wamid) is answered once',
      body: received(textMessage('only once', 'wamid.dup')),
      sign,
      repeat: 3,
      answers: [{ text: 'once' }],
      status: 200,
      response: 'success',
      received: [{ text: 'only once' }],
      outgoing: [text('once')],
    },
    {
      label: 'whatsapp: several messages in one notification reach the bot in order',
      body: received(textMessage('first', 'wamid.batch1'), message('wamid.batch2', { type: 'text', text: { body: 'second' } }, OTHER_WA_ID)),
      sign,
      answers: [],
      status: 200,
      received: [{ text: 'first', senderId: WA_ID }, { text: 'second', senderId: OTHER_WA_ID }],
    },

    // --- outgoing kinds
    {
      label: 'whatsapp: a text over 4096 characters is split at a space',
      body: received(textMessage('long', 'wamid.long')),
      sign,
      answers: [{ text: `${'a'.repeat(4000)} ${'b'.repeat(200)}` }],
      status: 200,
      outgoing: [text('a'.repeat(4000)), text('b'.repeat(200))],
    },
    {
      label: 'whatsapp: up to 3 buttons are reply buttons (id = payload, title cut to 20 characters)',
      roundTrip: true,
      body: received(textMessage('mood?', 'wamid.buttons')),
      sign,
      answers: [{ text: 'How are you?', buttons: [{ title: 'great', payload: '/mood_great' }, { title: 'super sad, honestly, today', payload: '/mood_unhappy' }, { title: 'meh \u{1F610} whatever, truly' }] }],
      status: 200,
      outgoing: [
        interactive({
          type: 'button',
          body: { text: 'How are you?' },
          action: {
            buttons: [
              { type: 'reply', reply: { id: '/mood_great', title: 'great' } },
              { type: 'reply', reply: { id: '/mood_unhappy', title: 'super sad, honestly,' } },
              { type: 'reply', reply: { id: 'meh \u{1F610} whatever, truly', title: 'meh \u{1F610} whatever, trul' } },
            ],
          },
        }),
      ],
    },
    {
      label: 'whatsapp: quick replies are sent as reply buttons',
      body: received(textMessage('size?', 'wamid.quick')),
      sign,
      answers: [{ text: 'Size?', quick_replies: [{ title: 'S', payload: '/size{"s":"S"}' }, { title: 'L', payload: '/size{"s":"L"}' }] }],
      status: 200,
      outgoing: [
        interactive({
          type: 'button',
          body: { text: 'Size?' },
          action: { buttons: [{ type: 'reply', reply: { id: '/size{"s":"S"}', title: 'S' } }, { type: 'reply', reply: { id: '/size{"s":"L"}', title: 'L' } }] },
        }),
      ],
    },
    {
      label: 'whatsapp: 4 to 10 buttons become a list message, one row each (titles cut to 24 characters)',
      roundTrip: true,
      body: received(textMessage('slots?', 'wamid.list')),
      sign,
      answers: [{ text: 'Pick a slot', buttons: [{ title: '9 am', payload: '/slot{"h":9}' }, { title: '10 am', payload: '/slot{"h":10}' }, { title: '11 am', payload: '/slot{"h":11}' }, { title: 'Later this week, any time at all', payload: '/slot_later' }] }],
      status: 200,
      outgoing: [
        interactive({
          type: 'list',
          body: { text: 'Pick a slot' },
          action: {
            button: 'Choose',
            sections: [
              {
                rows: [
                  { id: '/slot{"h":9}', title: '9 am' },
                  { id: '/slot{"h":10}', title: '10 am' },
                  { id: '/slot{"h":11}', title: '11 am' },
                  { id: '/slot_later', title: 'Later this week, any tim' },
                ],
              },
            ],
          },
        }),
      ],
    },
    {
      label: 'whatsapp: more than 10 buttons fall back to the numbered text list',
      body: received(textMessage('all', 'wamid.many')),
      sign,
      answers: [{ text: 'Pick one', buttons: Array.from({ length: 11 }, (_, i) => ({ title: `option ${i + 1}`, payload: `/o${i + 1}` })) }],
      status: 200,
      outgoing: [text(['Pick one', ...Array.from({ length: 11 }, (_, i) => `${i + 1}: option ${i + 1} (/o${i + 1})`)].join('\n'))],
    },
    {
      label: 'whatsapp: a link button (no payload) cannot be a reply button: the numbered text list',
      body: received(textMessage('docs?', 'wamid.link')),
      sign,
      answers: [{ text: 'Read more', buttons: [{ title: 'Docs', url: 'https://example.com/docs' }] }],
      status: 200,
      outgoing: [text('Read more\n1: Docs (https://example.com/docs)')],
    },
    {
      label: 'whatsapp: a text over 1024 characters with buttons: its start as text, its end as the body of the buttons',
      body: received(textMessage('terms?', 'wamid.longbody')),
      sign,
      answers: [{ text: `${'t'.repeat(1000)} ${'u'.repeat(100)}`, buttons: [{ title: 'Accept', payload: '/accept' }] }],
      status: 200,
      outgoing: [
        text('t'.repeat(1000)),
        interactive({ type: 'button', body: { text: 'u'.repeat(100) }, action: { buttons: [{ type: 'reply', reply: { id: '/accept', title: 'Accept' } }] } }),
      ],
    },
    {
      label: 'whatsapp: an image answer is an image message by link',
      roundTrip: true,
      body: received(textMessage('picture', 'wamid.image_out')),
      sign,
      answers: [{ image: 'https://i.imgur.com/nGF1K8f.jpg' }],
      status: 200,
      outgoing: [send({ type: 'image', image: { link: 'https://i.imgur.com/nGF1K8f.jpg' } })],
    },
    {
      label: 'whatsapp: custom JSON is the message object, passed through (a template outside the window)',
      body: received(textMessage('remind me', 'wamid.custom')),
      sign,
      answers: [{ custom: { type: 'template', template: { name: 'appointment_reminder', language: { code: 'en_US' }, components: [{ type: 'body', parameters: [{ type: 'text', text: 'Tuesday' }] }] } } }],
      status: 200,
      outgoing: [send({ type: 'template', template: { name: 'appointment_reminder', language: { code: 'en_US' }, components: [{ type: 'body', parameters: [{ type: 'text', text: 'Tuesday' }] }] } })],
    },
    {
      label: 'whatsapp: a custom list is sent item by item; a `to` in an item names the recipient',
      body: received(textMessage('handover', 'wamid.custom_list')),
      sign,
      answers: [{ custom: [{ type: 'location', location: { latitude: 51.5, longitude: -0.12, name: 'Office' } }, { to: OTHER_WA_ID, type: 'text', text: { body: 'a customer needs you' } }] }],
      status: 200,
      outgoing: [send({ type: 'location', location: { latitude: 51.5, longitude: -0.12, name: 'Office' } }), text('a customer needs you', OTHER_WA_ID)],
    },
    {
      label: 'whatsapp: elements and attachments fall back to text',
      body: received(textMessage('cards', 'wamid.elements')),
      sign,
      answers: [{ attachment: 'https://example.com/report.pdf', elements: [{ title: 'Tee', subtitle: '$20' }] }],
      status: 200,
      outgoing: [text('Attachment: https://example.com/report.pdf'), text('Tee : $20')],
    },

    {
      label: 'whatsapp: a card with buttons is its title and subtitle as the body of reply buttons',
      body: received(textMessage('shop', 'wamid.card')),
      sign,
      answers: [{ elements: [{ title: 'Classic tee', subtitle: '$20', buttons: [{ title: 'Buy', payload: '/buy{"sku":"t1"}' }] }] }],
      status: 200,
      outgoing: [interactive({ type: 'button', body: { text: 'Classic tee : $20' }, action: { buttons: [{ type: 'reply', reply: { id: '/buy{"sku":"t1"}', title: 'Buy' } }] } })],
    },
    {
      label: 'whatsapp: a custom answer that is not an object is not sent',
      body: received(textMessage('odd', 'wamid.custom_string')),
      sign,
      answers: [{ custom: 'just a string' }],
      status: 200,
      received: [{ text: 'odd' }],
      outgoing: [],
    },

    // --- platform errors
    {
      label: 'whatsapp: a 400 (invalid parameter) is not retried',
      body: received(textMessage('bad', 'wamid.e400')),
      sign,
      answers: [{ text: 'never arrives' }],
      status: 200,
      outgoing: [text('never arrives', WA_ID, { reply: { status: 400, body: graphError(100, '(#100) Invalid parameter') } })],
    },
    {
      label: 'whatsapp: a 401 (expired token) is not retried',
      body: received(textMessage('expired', 'wamid.e401')),
      sign,
      answers: [{ text: 'never arrives' }],
      status: 200,
      outgoing: [text('never arrives', WA_ID, { reply: { status: 401, body: graphError(190, 'Error validating access token: Session has expired') } })],
    },
    {
      label: 'whatsapp: a 429 is retried (after Retry-After)',
      body: received(textMessage('busy', 'wamid.e429')),
      sign,
      answers: [{ text: 'eventually' }],
      status: 200,
      outgoing: [text('eventually', WA_ID, { reply: { status: 429, headers: { 'retry-after': '0' }, body: graphError(130429, 'Rate limit hit') } }), text('eventually')],
    },
    {
      label: 'whatsapp: a 503 (not processed) is retried',
      body: received(textMessage('down', 'wamid.e503')),
      sign,
      answers: [{ text: 'eventually' }],
      status: 200,
      outgoing: [text('eventually', WA_ID, { reply: { status: 503, body: graphError(2, 'Service temporarily unavailable') } }), text('eventually')],
    },
    {
      label: 'whatsapp: a 500 (may have been sent) is not retried, so the user never gets the answer twice',
      body: received(textMessage('maybe', 'wamid.e500')),
      sign,
      answers: [{ text: 'maybe sent' }],
      status: 200,
      outgoing: [text('maybe sent', WA_ID, { reply: { status: 500, body: graphError(1, 'An unknown error occurred') } })],
    },
    {
      label: 'whatsapp: the 24-hour window error (131047) is not retried, and the next answers are not tried',
      body: received(textMessage('late', 'wamid.e131047')),
      sign,
      answers: [{ text: 'too late' }, { text: 'also too late' }],
      status: 200,
      outgoing: [
        text('too late', WA_ID, {
          reply: { status: 400, body: graphError(131047, '(#131047) Re-engagement message', 'Message failed to send because more than 24 hours have passed since the customer last replied to this number.') },
        }),
      ],
    },
  ],
});

runChannelCases(test, {
  channel: WhatsAppInput,
  credentials: { ...CREDENTIALS, api_url: 'https://graph-proxy.example.com/meta/', api_version: 'v22.0' },
  cases: [
    {
      label: 'whatsapp: api_url and api_version replace the Graph API base',
      roundTrip: true,
      body: received(textMessage('proxied', 'wamid.proxied')),
      sign,
      answers: [{ text: 'via proxy' }],
      status: 200,
      outgoing: [text('via proxy', WA_ID, { url: `https://graph-proxy.example.com/meta/v22.0/${PHONE_NUMBER_ID}/messages` })],
    },
  ],
});

runChannelCases(test, {
  channel: WhatsAppInput,
  credentials: { phone_number_id: PHONE_NUMBER_ID, access_token: ACCESS_TOKEN, verify_token: VERIFY_TOKEN, allow_unverified: true },
  cases: [
    {
      label: 'whatsapp allow_unverified: an unsigned notification is processed',
      body: received(textMessage('no secret', 'wamid.unverified')),
      answers: [{ text: 'ok' }],
      status: 200,
      response: 'success',
      received: [{ text: 'no secret' }],
      outgoing: [text('ok')],
    },
  ],
});

// --- replays: a message's timestamp is signed with the body, so an old notification cannot be made to look new.

const HOUR = 3600;
const at = (seconds: number, id: string, body = 'replayed') => received(message(id, { type: 'text', text: { body } }, WA_ID, String(seconds)));
const stale = (label: string, body: object) => ({ label: `whatsapp replay: ${label} → 200 success, the bot never called`, body, sign, status: 200, response: 'success', received: [], outgoing: [] });
const fresh = (label: string, body: object) => ({ label: `whatsapp replay: ${label} → processed`, body, sign, answers: [{ text: 'ok' }], status: 200, response: 'success', received: [{ text: 'replayed' }], outgoing: [text('ok')] });

runChannelCases(test, {
  channel: WhatsAppInput,
  credentials: CREDENTIALS,
  cases: [
    stale('a correctly signed message from 2023', at(1678786013, 'wamid.2023')),
    stale('a message 25 h old (past the 24-hour window)', at(NOW_S - 25 * HOUR, 'wamid.25h')),
    fresh('a message 23 h old (a late retry by Meta)', at(NOW_S - 23 * HOUR, 'wamid.23h')),
    stale('a timestamp 10 minutes in the future', at(NOW_S + 600, 'wamid.future')),
    stale('a message without timestamp', received({ from: WA_ID, id: 'wamid.notime', type: 'text', text: { body: 'replayed' } })),
    stale('a timestamp that is not Unix seconds', received(message('wamid.isotime', { type: 'text', text: { body: 'replayed' } }, WA_ID, '2026-12-02T10:00:00Z'))),
  ],
});

runChannelCases(test, {
  channel: WhatsAppInput,
  credentials: { ...CREDENTIALS, replay_window: 0 },
  cases: [fresh('replay_window: 0 turns the check off: a message from 2023', at(1678786013, 'wamid.2023_off'))],
});

// --- credentials

test('whatsapp: a section without app_secret is refused, saying why and how to opt out', (t) => {
  const error = t.throws(() => WhatsAppInput.fromCredentials({ phone_number_id: PHONE_NUMBER_ID, access_token: ACCESS_TOKEN, verify_token: VERIFY_TOKEN }));
  t.regex(error?.message ?? '', /^missing "app_secret", needed to verify that requests come from the platform \(or set allow_unverified: true/);
});

test('whatsapp: phone_number_id, access_token and verify_token are required, by name', (t) => {
  const { phone_number_id: _p, ...noPhone } = CREDENTIALS;
  const { access_token: _a, ...noToken } = CREDENTIALS;
  const { verify_token: _v, ...noVerify } = CREDENTIALS;
  t.is(t.throws(() => WhatsAppInput.fromCredentials(noPhone))?.message, 'missing "phone_number_id"');
  t.is(t.throws(() => WhatsAppInput.fromCredentials(noToken))?.message, 'missing "access_token"');
  t.is(t.throws(() => WhatsAppInput.fromCredentials(noVerify))?.message, 'missing "verify_token"');
});

test('whatsapp: defaults; a phone_number_id YAML reads as a number is taken; a phone number or a bad api_version is refused', (t) => {
  const channel = WhatsAppInput.fromCredentials(CREDENTIALS);
  t.like(channel.credentials, { api_version: 'v23.0', api_url: 'https://graph.facebook.com', typing_indicator: true, replay_window: 86400 });
  t.false(channel.unverified);
  t.is(WhatsAppInput.fromCredentials({ ...CREDENTIALS, phone_number_id: Number(PHONE_NUMBER_ID) }).credentials.phone_number_id, PHONE_NUMBER_ID);
  t.regex(t.throws(() => WhatsAppInput.fromCredentials({ ...CREDENTIALS, phone_number_id: '+1 555 078 3881' }))?.message ?? '', /^"phone_number_id": must be the numeric id/);
  t.regex(t.throws(() => WhatsAppInput.fromCredentials({ ...CREDENTIALS, api_version: '23' }))?.message ?? '', /^"api_version": must look like v23.0/);
});

// --- typing indicator, read receipts and logs, on a server of their own

function slowBot(ms: number): ScriptedBot {
  return new ScriptedBot(async () => {
    await new Promise((resolve) => setTimeout(resolve, ms));
    return [{ text: 'done thinking' }];
  });
}

function recordMessagesApi(calls: unknown[], status = 200, body: object = { messaging_product: 'whatsapp', messages: [{ id: 'wamid.out' }] }) {
  return nock('https://graph.facebook.com')
    .post(`/v23.0/${PHONE_NUMBER_ID}/messages`)
    .times(5)
    .reply(status, (_uri, requestBody) => {
      calls.push(requestBody);
      return status === 200 && (requestBody as { status?: string }).status === 'read' ? { success: true } : body;
    });
}

async function deliver(request: (path: string, init?: RequestInit) => Promise<{ status: number; text: string }>, body: object) {
  const raw = JSON.stringify(body);
  return request('/webhooks/whatsapp/webhook', { method: 'POST', headers: { 'content-type': 'application/json', ...sign(raw) }, body: raw });
}

async function until(check: () => boolean, timeoutMs = 3_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
}

function offline(t: ExecutionContext): void {
  nock.disableNetConnect();
  nock.enableNetConnect('127.0.0.1');
  t.teardown(() => nock.cleanAll());
}

test.serial('whatsapp: a slow bot: the message is marked read with a typing indicator, then answered; Meta got success first', async (t) => {
  offline(t);
  const calls: unknown[] = [];
  recordMessagesApi(calls);
  const { request } = await startServer(t, [WhatsAppInput.fromCredentials(CREDENTIALS)], { bot: slowBot(700) });
  const started = Date.now();
  const response = await deliver(request, received(textMessage('think hard', 'wamid.slow')));
  t.is(response.status, 200);
  t.is(response.text, 'success');
  t.true(Date.now() - started < 500, 'acknowledged before the bot answered');
  await until(() => calls.length >= 2);
  t.deepEqual(calls, [
    { messaging_product: 'whatsapp', status: 'read', message_id: 'wamid.slow', typing_indicator: { type: 'text' } },
    { messaging_product: 'whatsapp', recipient_type: 'individual', to: WA_ID, type: 'text', text: { body: 'done thinking' } },
  ]);
});

test.serial('whatsapp: typing_indicator: false sends no read receipt or typing', async (t) => {
  offline(t);
  const calls: unknown[] = [];
  recordMessagesApi(calls);
  const { request } = await startServer(t, [WhatsAppInput.fromCredentials({ ...CREDENTIALS, typing_indicator: false })], { bot: slowBot(700) });
  await deliver(request, received(textMessage('think hard', 'wamid.slow_quiet')));
  await until(() => calls.length >= 1);
  await new Promise((resolve) => setTimeout(resolve, 50));
  t.deepEqual(calls, [{ messaging_product: 'whatsapp', recipient_type: 'individual', to: WA_ID, type: 'text', text: { body: 'done thinking' } }]);
});

test.serial('whatsapp: the 24-hour window error is logged with its reason, once, never with the token', async (t) => {
  offline(t);
  const calls: unknown[] = [];
  recordMessagesApi(calls, 400, graphError(131047, '(#131047) Re-engagement message', 'Message failed to send because more than 24 hours have passed since the customer last replied to this number.'));
  const { request, logs } = await startServer(t, [WhatsAppInput.fromCredentials(CREDENTIALS)], { bot: new ScriptedBot([{ text: 'hi' }]) });
  await deliver(request, received(textMessage('hello', 'wamid.window')));
  await until(() => logs.text.includes('sending an answer failed'));
  t.is(calls.length, 1, 'not retried');
  const line = logs.lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => typeof l.msg === 'string' && l.msg.startsWith('whatsapp refused the answer'));
  t.like(line, { level: 40, recipient: WA_ID, code: 131047, reason: 'outside the 24-hour customer service window', details: 'Message failed to send because more than 24 hours have passed since the customer last replied to this number.' });
  t.false(logs.text.includes(ACCESS_TOKEN), 'the access token is not in the logs');
  t.false(logs.text.includes(APP_SECRET), 'the app secret is not in the logs');
});

test.serial('whatsapp: a failed status callback with 131047 is logged with the reason; sent/delivered/read are not warned about', async (t) => {
  offline(t);
  const bot = new ScriptedBot([{ text: 'never' }]);
  const { request, logs } = await startServer(t, [WhatsAppInput.fromCredentials(CREDENTIALS)], { bot });
  const statuses = [
    { id: 'wamid.out3', status: 'delivered', timestamp: String(NOW_S), recipient_id: WA_ID },
    {
      id: 'wamid.out4',
      status: 'failed',
      timestamp: String(NOW_S),
      recipient_id: WA_ID,
      errors: [{ code: 131047, title: 'Re-engagement message', message: 'Re-engagement message', error_data: { details: 'Message failed to send because more than 24 hours have passed since the customer last replied to this number.' } }],
    },
  ];
  t.is((await deliver(request, notification({ statuses }))).status, 200);
  await until(() => logs.text.includes('whatsapp could not deliver'));
  const warnings = logs.lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.level === 40);
  t.is(warnings.length, 1);
  t.like(warnings[0], { id: 'wamid.out4', recipient: WA_ID, status: 'failed', reason: 'outside the 24-hour customer service window' });
  t.is(bot.received.length, 0);
});

// --- the pure parts

test('whatsapp verifySignature: reasons, never throws', (t) => {
  const raw = '{"object":"whatsapp_business_account"}';
  t.true(verifySignature(raw, sign(raw), APP_SECRET));
  t.true(verifySignature(Buffer.from(raw), sign(raw), APP_SECRET));
  t.is(verifySignature(raw, {}, APP_SECRET), 'missing X-Hub-Signature-256 header');
  t.is(verifySignature(raw, sign1(raw), APP_SECRET), 'missing X-Hub-Signature-256 header');
  t.is(verifySignature(raw, { 'x-hub-signature-256': 'sha256=zz' }, APP_SECRET), 'X-Hub-Signature-256 does not match the body');
  t.is(verifySignature(raw, { 'x-hub-signature-256': sign(raw)['x-hub-signature-256'].replace('sha256=', 'sha1=') }, APP_SECRET), 'X-Hub-Signature-256 does not match the body');
  t.is(verifySignature(raw, sign(raw), undefined), 'no app secret configured');
});

test('whatsapp checkMessageTime: Unix seconds as a string, within the window', (t) => {
  const now = 1_800_000_000_000;
  t.true(checkMessageTime('1799999000', 86400, now));
  t.regex(String(checkMessageTime('1700000000', 86400, now)), /^message timestamp: timestamp is \d+ s old/);
  t.regex(String(checkMessageTime(undefined, 86400, now)), /no timestamp/);
  t.true(checkMessageTime(undefined, 0, now));
});

test('whatsapp parseNotification: messages, statuses and ignored events, each with its reason', (t) => {
  const parsed = parseNotification(
    notification({
      contacts: [{ profile: { name: 'Kerry Fisher' }, wa_id: WA_ID }],
      messages: [textMessage('a', 'wamid.a'), message('wamid.u', { type: 'unknown', errors: [{ code: 131051, title: 'Unsupported message type' }] }), { id: 'wamid.nofrom', type: 'text', text: { body: 'x' } }],
      statuses: [{ id: 'wamid.s', status: 'read', recipient_id: WA_ID }],
    }),
    PHONE_NUMBER_ID,
  );
  t.deepEqual(parsed.messages.map((m) => m.text), ['a']);
  t.deepEqual(parsed.statuses, [{ id: 'wamid.s', status: 'read', recipientId: WA_ID, errors: [] }]);
  t.deepEqual(parsed.ignored.map((i) => i.reason), ['unsupported message type "unknown"', 'message without from']);
  t.deepEqual(parseNotification(null, PHONE_NUMBER_ID).ignored, [{ reason: 'not a WhatsApp Business Account notification (object: object)' }]);
  t.deepEqual(parseNotification({ object: 'whatsapp_business_account', entry: [{ id: WABA_ID, changes: [{ field: 'account_update', value: {} }] }] }, PHONE_NUMBER_ID).ignored, [{ reason: 'change of field "account_update"' }]);
});

test('whatsapp splitText: over 4096 characters splits at a space', (t) => {
  const words = Array.from({ length: 1000 }, () => 'word').join(' ');
  const parts = splitText(words);
  t.is(parts.length, 2);
  t.true(parts.every((p) => p.length <= 4096));
  t.is(parts.join(' '), words);
});
