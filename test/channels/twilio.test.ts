import test from 'ava';
import nock from 'nock';
import { createHash, createHmac } from 'node:crypto';
import TwilioInput, { EMPTY_TWIML } from '../../channels/twilio/index.js';
import { TwilioOutput, apiName, splitText } from '../../channels/twilio/output.js';
import { locationText, parseMessage } from '../../channels/twilio/parse.js';
import { computeSignature, urlVariants, verifySignature } from '../../channels/twilio/verify.js';
import { HttpClient } from 'switchboard';
import { ScriptedBot, runChannelCases, startServer, type ChannelCase, type OutgoingCall } from '../harness.js';

const ACCOUNT_SID = 'AC0f1e2d3c4b5a69788796a5b4c3d2e1f0';
const AUTH_TOKEN = '9c1b7e3f5a2d4c6e8f0a1b2c3d4e5f60';
const NUMBER = '+14155550100';
const WHATSAPP_NUMBER = 'whatsapp:+14155238886';
const USER = '+14155550123';
const WA_USER = 'whatsapp:+4915112345678';
/** The public URL set in the Twilio Console; the harness's real URL (127.0.0.1:<port>) is unknown in advance. */
const WEBHOOK_URL = 'https://bot.example.com/webhooks/twilio/webhook';
const API = `https://api.twilio.com/2010-04-01/Accounts/${ACCOUNT_SID}/Messages.json`;
const BASIC = `Basic ${Buffer.from(`${ACCOUNT_SID}:${AUTH_TOKEN}`).toString('base64')}`;
const CREDENTIALS = { account_sid: ACCOUNT_SID, auth_token: AUTH_TOKEN, twilio_number: NUMBER, webhook_url: WEBHOOK_URL };

/**
 * Twilio's algorithm, written out here independently of the channel: base64 HMAC-SHA1 keyed with the auth token over
 * the URL followed by each POST parameter, sorted by name, as name then value.
 */
function twilioSignature(url: string, raw: string, token = AUTH_TOKEN): string {
  const params = [...new URLSearchParams(raw)].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return createHmac('sha1', token).update(url + params.map(([k, v]) => k + v).join('')).digest('base64');
}
const sign = (raw: string) => ({ 'x-twilio-signature': twilioSignature(WEBHOOK_URL, raw) });

/** An incoming SMS as Twilio posts it (Messaging webhook request parameters). */
function sms(fields: Record<string, string> = {}): Record<string, string> {
  return {
    ToCountry: 'US',
    ToState: 'CA',
    SmsMessageSid: 'SM1f0e2d3c4b5a69788796a5b4c3d2e1f0',
    NumMedia: '0',
    ToCity: 'SAN FRANCISCO',
    FromZip: '94105',
    SmsSid: 'SM1f0e2d3c4b5a69788796a5b4c3d2e1f0',
    FromState: 'CA',
    SmsStatus: 'received',
    FromCity: 'SAN FRANCISCO',
    Body: 'Hello there',
    FromCountry: 'US',
    To: NUMBER,
    ToZip: '94105',
    NumSegments: '1',
    MessageSid: 'SM1f0e2d3c4b5a69788796a5b4c3d2e1f0',
    AccountSid: ACCOUNT_SID,
    From: USER,
    ApiVersion: '2010-04-01',
    ...fields,
  };
}

/** An incoming WhatsApp message as Twilio posts it. */
function whatsapp(fields: Record<string, string> = {}): Record<string, string> {
  return {
    SmsMessageSid: 'SMa1b2c3d4e5f60718293a4b5c6d7e8f90',
    NumMedia: '0',
    ProfileName: 'Lena',
    MessageType: 'text',
    SmsSid: 'SMa1b2c3d4e5f60718293a4b5c6d7e8f90',
    WaId: '4915112345678',
    SmsStatus: 'received',
    Body: 'Hallo!',
    To: WHATSAPP_NUMBER,
    NumSegments: '1',
    ReferralNumMedia: '0',
    MessageSid: 'SMa1b2c3d4e5f60718293a4b5c6d7e8f90',
    AccountSid: ACCOUNT_SID,
    From: WA_USER,
    ApiVersion: '2010-04-01',
    ...fields,
  };
}

const twiml = (t: import('ava').ExecutionContext, r: { text: string; headers: Headers }) => {
  t.is(r.text, EMPTY_TWIML);
  t.regex(r.headers.get('content-type') ?? '', /^text\/xml/);
};

/** One Messages API call with this form (and the basic auth header). */
const send = (form: Record<string, string | string[]>, reply?: OutgoingCall['reply']): OutgoingCall => ({
  url: API,
  headers: { authorization: BASIC, 'content-type': 'application/x-www-form-urlencoded' },
  form,
  reply: reply ?? { status: 201, body: { sid: 'SM0000', status: 'queued' } },
});
const smsTo = (form: Record<string, string | string[]>, reply?: OutgoingCall['reply']) => send({ To: USER, From: NUMBER, ...form }, reply);

const LONG = Array.from({ length: 400 }, (_, i) => `word${i % 10}`).join(' '); // 2399 characters
const [LONG_1 = '', LONG_2 = ''] = splitText(LONG);

const answerCases: ChannelCase[] = [
  {
    label: 'twilio: text → one message with From, To, Body and basic auth',
    form: sms({ MessageSid: 'SM_text_1' }),
    sign,
    answers: [{ text: 'Hi! How can I help?' }],
    status: 200,
    outgoing: [smsTo({ Body: 'Hi! How can I help?' })],
  },
  {
    label: 'twilio: text with blank lines → one message per part',
    form: sms({ MessageSid: 'SM_parts' }),
    sign,
    answers: [{ text: 'first\n\nsecond' }],
    status: 200,
    outgoing: [smsTo({ Body: 'first' }), smsTo({ Body: 'second' })],
  },
  {
    label: 'twilio: buttons → the text and a numbered list, one message',
    form: sms({ MessageSid: 'SM_buttons' }),
    sign,
    answers: [{ text: 'How are you?', buttons: [{ title: 'great', payload: '/mood_great' }, { title: 'sad', payload: '/mood_sad' }] }],
    status: 200,
    outgoing: [smsTo({ Body: 'How are you?\n1: great (/mood_great)\n2: sad (/mood_sad)' })],
  },
  {
    label: 'twilio: quick replies → the same numbered list',
    form: sms({ MessageSid: 'SM_quick' }),
    sign,
    answers: [{ text: 'Pick', quick_replies: [{ title: 'yes', payload: '/affirm' }, { title: 'no', payload: '/deny' }] }],
    status: 200,
    outgoing: [smsTo({ Body: 'Pick\n1: yes (/affirm)\n2: no (/deny)' })],
  },
  {
    label: 'twilio: image alone → MediaUrl without Body',
    form: sms({ MessageSid: 'SM_image' }),
    sign,
    answers: [{ image: 'https://i.imgur.com/nGF1K8f.jpg' }],
    status: 200,
    outgoing: [smsTo({ MediaUrl: 'https://i.imgur.com/nGF1K8f.jpg' })],
  },
  {
    label: 'twilio: text and image in one answer → one MMS with the text as caption',
    form: sms({ MessageSid: 'SM_caption' }),
    sign,
    answers: [{ text: 'Here is something to cheer you up:', image: 'https://i.imgur.com/nGF1K8f.jpg' }],
    status: 200,
    outgoing: [smsTo({ Body: 'Here is something to cheer you up:', MediaUrl: 'https://i.imgur.com/nGF1K8f.jpg' })],
  },
  {
    label: 'twilio: elements and attachment → text fallbacks',
    form: sms({ MessageSid: 'SM_elements' }),
    sign,
    answers: [{ attachment: 'https://example.com/menu.pdf', elements: [{ title: 'Pizza', subtitle: '12 €', buttons: [{ title: 'order', payload: '/order' }] }] }],
    status: 200,
    outgoing: [smsTo({ Body: 'Attachment: https://example.com/menu.pdf' }), smsTo({ Body: 'Pizza : 12 €\n1: order (/order)' })],
  },
  {
    label: 'twilio: a text over 1600 characters is split at a word boundary',
    form: sms({ MessageSid: 'SM_long' }),
    sign,
    answers: [{ text: LONG }],
    status: 200,
    outgoing: [smsTo({ Body: LONG_1 }), smsTo({ Body: LONG_2 })],
  },
  {
    label: "twilio: custom JSON with the Python library's names is mapped to the API's",
    form: sms({ MessageSid: 'SM_custom' }),
    sign,
    answers: [{ custom: { body: 'Your order', media_url: ['https://example.com/a.png', 'https://example.com/b.png'], status_callback: 'https://bot.example.com/status', send_as_mms: true } }],
    status: 200,
    outgoing: [
      smsTo({ Body: 'Your order', MediaUrl: ['https://example.com/a.png', 'https://example.com/b.png'], StatusCallback: 'https://bot.example.com/status', SendAsMms: 'true' }),
    ],
  },
  {
    label: "twilio: custom JSON with Twilio's own names, a Messaging Service and a content template",
    form: sms({ MessageSid: 'SM_custom2' }),
    sign,
    answers: [{ custom: { To: '+14155550999', messaging_service_sid: 'MG0123456789abcdef0123456789abcdef', content_sid: 'HX0123456789abcdef0123456789abcdef', content_variables: { 1: 'Lena' } } }],
    status: 200,
    outgoing: [send({ To: '+14155550999', MessagingServiceSid: 'MG0123456789abcdef0123456789abcdef', ContentSid: 'HX0123456789abcdef0123456789abcdef', ContentVariables: '{"1":"Lena"}' })],
  },
  {
    label: 'twilio: custom JSON without body or media gets an empty Body and the defaults (Rasa)',
    form: sms({ MessageSid: 'SM_custom3' }),
    sign,
    answers: [{ custom: { from_: '+14155550111', shorten_urls: true } }],
    status: 200,
    outgoing: [send({ To: USER, From: '+14155550111', ShortenUrls: 'true', Body: '' })],
  },
  {
    label: 'twilio: a failed send (400 from Twilio) is not retried and does not touch the webhook answer',
    form: sms({ MessageSid: 'SM_fail' }),
    sign,
    answers: [{ text: 'x' }],
    status: 200,
    response: twiml,
    outgoing: [smsTo({ Body: 'x' }, { status: 400, body: { code: 21211, message: "The 'To' number is not a valid phone number." } })],
  },
];

runChannelCases(test, {
  channel: TwilioInput,
  credentials: CREDENTIALS,
  cases: [
    {
      label: 'twilio: an SMS reaches the bot; answered with empty TwiML at once',
      form: sms(),
      sign,
      status: 200,
      response: twiml,
      answers: [],
      received: [
        {
          text: 'Hello there',
          senderId: USER,
          messageId: 'SM1f0e2d3c4b5a69788796a5b4c3d2e1f0',
          inputChannel: 'twilio',
          metadata: { To: NUMBER, AccountSid: ACCOUNT_SID, NumSegments: '1' },
        },
      ],
    },
    {
      label: 'twilio: ¡ in the Body becomes @ (carriers garble it), as in Rasa',
      form: sms({ Body: 'mail me at lena¡example.com', MessageSid: 'SM_at' }),
      sign,
      status: 200,
      answers: [],
      received: [{ text: 'mail me at lena@example.com' }],
    },
    {
      label: 'twilio: an MMS with 2 media → their URLs and types in metadata',
      form: sms({
        MessageSid: 'MM_two_media',
        Body: 'look',
        NumMedia: '2',
        MediaUrl0: `https://api.twilio.com/2010-04-01/Accounts/${ACCOUNT_SID}/Messages/MM_two_media/Media/ME01`,
        MediaContentType0: 'image/jpeg',
        MediaUrl1: `https://api.twilio.com/2010-04-01/Accounts/${ACCOUNT_SID}/Messages/MM_two_media/Media/ME02`,
        MediaContentType1: 'video/mp4',
      }),
      sign,
      status: 200,
      answers: [],
      received: [
        {
          text: 'look',
          messageId: 'MM_two_media',
          metadata: {
            NumMedia: 2,
            media: [
              { url: `https://api.twilio.com/2010-04-01/Accounts/${ACCOUNT_SID}/Messages/MM_two_media/Media/ME01`, content_type: 'image/jpeg' },
              { url: `https://api.twilio.com/2010-04-01/Accounts/${ACCOUNT_SID}/Messages/MM_two_media/Media/ME02`, content_type: 'video/mp4' },
            ],
          },
        },
      ],
    },
    {
      label: 'twilio: media without text reaches the bot with empty text',
      form: sms({ MessageSid: 'MM_no_text', Body: '', NumMedia: '1', MediaUrl0: 'https://api.twilio.com/media/ME03', MediaContentType0: 'image/png' }),
      sign,
      status: 200,
      answers: [],
      received: [{ text: '', metadata: { NumMedia: 1, media: [{ url: 'https://api.twilio.com/media/ME03', content_type: 'image/png' }] } }],
    },
    {
      label: 'twilio: a redelivered MessageSid is answered but processed once',
      form: sms({ MessageSid: 'SM_redelivered' }),
      sign,
      repeat: 2,
      status: 200,
      response: twiml,
      answers: [{ text: 'once' }],
      received: [{ messageId: 'SM_redelivered' }],
      outgoing: [smsTo({ Body: 'once' })],
    },
    {
      label: 'twilio: a status callback (no Body, no media) is answered 200 and ignored',
      form: { MessageSid: 'SM_status', MessageStatus: 'delivered', SmsStatus: 'delivered', AccountSid: ACCOUNT_SID, From: NUMBER, To: USER, ApiVersion: '2010-04-01' },
      sign,
      status: 200,
      response: twiml,
      received: [],
      outgoing: [],
    },
    {
      label: 'twilio: a message without Body field at all is ignored, not a 500 (Rasa crashed)',
      form: { MessageSid: 'SM_nobody', AccountSid: ACCOUNT_SID, From: USER, To: NUMBER, NumMedia: '0' },
      sign,
      status: 200,
      response: twiml,
      received: [],
    },
    {
      label: 'twilio: a missing signature → 401, the bot is not called',
      form: sms({ MessageSid: 'SM_unsigned' }),
      status: 401,
      response: { error: 'request could not be verified' },
      received: [],
      outgoing: [],
    },
    {
      label: 'twilio: a signature made with another auth token → 401',
      form: sms({ MessageSid: 'SM_wrong_token' }),
      sign: (raw) => ({ 'x-twilio-signature': twilioSignature(WEBHOOK_URL, raw, 'another-auth-token') }),
      status: 401,
      received: [],
    },
    {
      label: 'twilio: a signature over the request URL instead of webhook_url → 401',
      form: sms({ MessageSid: 'SM_wrong_url' }),
      sign: (raw) => ({ 'x-twilio-signature': twilioSignature('https://evil.example.com/webhooks/twilio/webhook', raw) }),
      status: 401,
      received: [],
    },
    {
      label: 'twilio: a tampered field (signature of another Body) → 401',
      form: sms({ MessageSid: 'SM_tampered', Body: 'send money' }),
      sign: (raw) => ({ 'x-twilio-signature': twilioSignature(WEBHOOK_URL, raw.replace('send+money', 'hello')) }),
      status: 401,
      received: [],
    },
    {
      label: 'twilio: the query string is signed too (webhook_url without one gets the request query)',
      path: '/webhook?tenant=acme',
      form: sms({ MessageSid: 'SM_query' }),
      sign: (raw) => ({ 'x-twilio-signature': twilioSignature(`${WEBHOOK_URL}?tenant=acme`, raw) }),
      status: 200,
      answers: [],
      received: [{ messageId: 'SM_query' }],
    },
    {
      label: 'twilio: a signed form that is no Twilio message (no From) → 400, the bot is not called',
      body: 'this is not a form at all',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      sign,
      status: 400,
      response: { error: 'missing form field "From"' },
      received: [],
    },
    {
      label: 'twilio: a JSON body signed over the URL → 400 (Twilio posts forms), not 500',
      body: { From: USER, Body: 'hi', MessageSid: 'SM_json' },
      sign: () => ({ 'x-twilio-signature': twilioSignature(WEBHOOK_URL, '') }),
      status: 400,
      response: { error: 'expected a form-encoded request body' },
      received: [],
    },
    {
      label: 'twilio: an unsigned JSON body → 401',
      body: { From: USER, Body: 'hi', MessageSid: 'SM_json2' },
      status: 401,
      received: [],
    },
    {
      label: 'twilio: an XML body → 415',
      body: '<Message/>',
      headers: { 'content-type': 'application/xml' },
      sign,
      status: 415,
      received: [],
    },
    {
      label: 'twilio: GET / is the health check',
      method: 'GET',
      path: '/',
      status: 200,
      response: { status: 'ok' },
    },
    ...answerCases,
  ],
});

runChannelCases(test, {
  channel: TwilioInput,
  credentials: { ...CREDENTIALS, twilio_number: WHATSAPP_NUMBER },
  cases: [
    {
      label: 'twilio whatsapp: a text reaches the bot with the WhatsApp profile; the answer goes to whatsapp:',
      form: whatsapp(),
      sign,
      status: 200,
      response: twiml,
      answers: [{ text: 'Hallo Lena!' }],
      received: [{ text: 'Hallo!', senderId: WA_USER, messageId: 'SMa1b2c3d4e5f60718293a4b5c6d7e8f90', metadata: { ProfileName: 'Lena', WaId: '4915112345678', To: WHATSAPP_NUMBER, MessageType: 'text' } }],
      outgoing: [send({ To: WA_USER, From: WHATSAPP_NUMBER, Body: 'Hallo Lena!' })],
    },
    {
      label: "twilio whatsapp: a shared location → Rasa's /locationData text, details in metadata",
      form: whatsapp({ MessageSid: 'SM_location', MessageType: 'location', Body: '', Latitude: '52.520008', Longitude: '13.404954', Address: 'Alexanderplatz, Berlin', Label: 'Alex' }),
      sign,
      status: 200,
      answers: [],
      received: [
        {
          text: "/locationData{'Latitude': 52.520008,'Longitude': 13.404954}",
          metadata: { MessageType: 'location', location: { Latitude: 52.520008, Longitude: 13.404954, Address: 'Alexanderplatz, Berlin', Label: 'Alex' } },
        },
      ],
    },
    {
      label: 'twilio whatsapp: a tapped quick-reply button → its ButtonPayload',
      form: whatsapp({ MessageSid: 'SM_button', MessageType: 'button', Body: 'Yes, please', ButtonText: 'Yes, please', ButtonPayload: '/affirm' }),
      sign,
      status: 200,
      answers: [],
      received: [{ text: '/affirm', metadata: { ButtonText: 'Yes, please', ButtonPayload: '/affirm', MessageType: 'button' } }],
    },
    {
      label: 'twilio whatsapp: custom JSON to a bare number gets the whatsapp: prefix',
      form: whatsapp({ MessageSid: 'SM_wa_custom' }),
      sign,
      status: 200,
      answers: [{ custom: { to: '+4915199999999', body: 'forwarded' } }],
      outgoing: [send({ To: 'whatsapp:+4915199999999', From: WHATSAPP_NUMBER, Body: 'forwarded' })],
    },
    {
      label: 'twilio whatsapp: an image with a caption → one media message',
      form: whatsapp({ MessageSid: 'SM_wa_image' }),
      sign,
      status: 200,
      answers: [{ text: 'Our menu', image: 'https://example.com/menu.jpg' }],
      outgoing: [send({ To: WA_USER, From: WHATSAPP_NUMBER, Body: 'Our menu', MediaUrl: 'https://example.com/menu.jpg' })],
    },
  ],
});

runChannelCases(test, {
  channel: TwilioInput,
  credentials: { ...CREDENTIALS, messaging_service_sid: 'MGfedcba9876543210fedcba9876543210', api_url: 'https://twilio-proxy.example.com/' },
  cases: [
    {
      label: 'twilio: messaging_service_sid replaces From; api_url replaces the base URL',
      form: sms({ MessageSid: 'SM_service' }),
      sign,
      status: 200,
      answers: [{ text: 'via the service' }],
      outgoing: [
        {
          url: `https://twilio-proxy.example.com/2010-04-01/Accounts/${ACCOUNT_SID}/Messages.json`,
          headers: { authorization: BASIC },
          form: { To: USER, MessagingServiceSid: 'MGfedcba9876543210fedcba9876543210', Body: 'via the service' },
        },
      ],
    },
  ],
});

runChannelCases(test, {
  channel: TwilioInput,
  credentials: { account_sid: ACCOUNT_SID, auth_token: AUTH_TOKEN, twilio_number: NUMBER, allow_unverified: true },
  cases: [
    {
      label: 'twilio: allow_unverified accepts an unsigned request',
      form: sms({ MessageSid: 'SM_unverified' }),
      status: 200,
      answers: [],
      received: [{ messageId: 'SM_unverified' }],
    },
  ],
});

// Without webhook_url the signature is checked against the URL the request arrived at.
test.serial('twilio: without webhook_url, a request signed over its real URL passes and a wrong one is refused', async (t) => {
  const bot = new ScriptedBot([]);
  const channel = TwilioInput.fromCredentials({ account_sid: ACCOUNT_SID, auth_token: AUTH_TOKEN, twilio_number: NUMBER });
  const { url, request } = await startServer(t, [channel], { bot });
  const target = `${url}/webhooks/twilio/webhook`;
  const raw = new URLSearchParams(sms({ MessageSid: 'SM_real_url' })).toString();
  const headers = { 'content-type': 'application/x-www-form-urlencoded' };

  const refused = await request('/webhooks/twilio/webhook', { method: 'POST', body: raw, headers: { ...headers, 'x-twilio-signature': twilioSignature(WEBHOOK_URL, raw) } });
  t.is(refused.status, 401);

  const ok = await request('/webhooks/twilio/webhook', { method: 'POST', body: raw, headers: { ...headers, 'x-twilio-signature': twilioSignature(target, raw) } });
  t.is(ok.status, 200);
  t.is(ok.text, EMPTY_TWIML);
  await bot.waitFor(1);
  t.is(bot.received[0]?.messageId, 'SM_real_url');
});

test.serial('twilio: behind a proxy, X-Forwarded-Proto and -Host make the signed URL', async (t) => {
  const bot = new ScriptedBot([]);
  const channel = TwilioInput.fromCredentials({ account_sid: ACCOUNT_SID, auth_token: AUTH_TOKEN, twilio_number: NUMBER });
  const { request } = await startServer(t, [channel], { bot });
  const raw = new URLSearchParams(sms({ MessageSid: 'SM_forwarded' })).toString();
  const response = await request('/webhooks/twilio/webhook?x=1', {
    method: 'POST',
    body: raw,
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      'x-forwarded-proto': 'https',
      'x-forwarded-host': 'sms.example.org',
      'x-twilio-signature': twilioSignature('https://sms.example.org/webhooks/twilio/webhook?x=1', raw),
    },
  });
  t.is(response.status, 200);
  await bot.waitFor(1);
});

// Twilio's published test vectors (its helper libraries' RequestValidator tests, auth token "12345").
const VECTOR_URL = 'https://mycompany.com/myapp.php?foo=1&bar=2';
const VECTOR_FORM = 'CallSid=CA1234567890ABCDE&Caller=%2B14158675309&Digits=1234&From=%2B14158675309&To=%2B18005551212';
const vector = (url: string, raw: string, signature: string, form = true) =>
  verifySignature({ url, raw, form, headers: { 'x-twilio-signature': signature } }, '12345');

test("twilio verify: Twilio's documented example signature", (t) => {
  t.is(computeSignature('12345', VECTOR_URL, new URLSearchParams(VECTOR_FORM)), 'RSOYDt4T1cUTdK1PDd93/VVr8B8=');
  t.true(vector(VECTOR_URL, VECTOR_FORM, 'RSOYDt4T1cUTdK1PDd93/VVr8B8='));
  t.regex(String(vector(VECTOR_URL, VECTOR_FORM.replace('1234&From', '9999&From'), 'RSOYDt4T1cUTdK1PDd93/VVr8B8=')), /does not match/);
  t.regex(String(vector(`${VECTOR_URL}&extra=1`, VECTOR_FORM, 'RSOYDt4T1cUTdK1PDd93/VVr8B8=')), /does not match/);
});

test('twilio verify: a repeated parameter contributes each distinct value, sorted', (t) => {
  t.true(vector(VECTOR_URL, 'Sid=CA123&SidAccount=AC123&Digits=5678&Digits=1234&Digits=1234', 'IK+Dwps556ElfBT0I3Rgjkr1wJU='));
});

test('twilio verify: ports are accepted with and without, as in the helper libraries', (t) => {
  t.true(vector('https://mycompany.com:1234/myapp.php?foo=1&bar=2', VECTOR_FORM, 'RSOYDt4T1cUTdK1PDd93/VVr8B8='), 'port removed');
  t.true(vector('http://mycompany.com:1234/myapp.php?foo=1&bar=2', VECTOR_FORM, 'Zmvh+3yNM1Phv2jhDCwEM3q5ebU='), 'http with its port');
  t.true(vector(VECTOR_URL, VECTOR_FORM, 'kvajT1Ptam85bY51eRf/AJRuM3w='), ':443 added');
  t.true(vector('http://mycompany.com/myapp.php?foo=1&bar=2', VECTOR_FORM, '0ZXoZLH/DfblKGATFgpif+LLRf4='), ':80 added');
  t.true(vector('https://user:pass@mycompany.com/myapp.php?foo=1&bar=2', VECTOR_FORM, 'CukzLTc1tT5dXEDIHm/tKBanW10='), 'credentials kept');
  t.true(vector('https://user:pass@mycompany.com/myapp.php?foo=1&bar=2', VECTOR_FORM, 'ZQFR1PTIZXF2MXB8ZnKCvnnA+rI='), 'credentials, :443 added');
  t.deepEqual(urlVariants('https://a.example/x?y=%20'), ['https://a.example/x?y=%20', 'https://a.example:443/x?y=%20']);
});

test('twilio verify: a JSON body is checked by its bodySHA256, and the URL alone is signed', (t) => {
  const body = '{"property": "value", "boolean": true}';
  const hash = createHash('sha256').update(body).digest('hex');
  t.is(hash, '0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620');
  t.true(vector(`${VECTOR_URL}&bodySHA256=${hash}`, body, 'a9nBmqA0ju/hNViExpshrM61xv4=', false));
  t.regex(String(vector(`${VECTOR_URL}&bodySHA256=${hash}`, `${body} `, 'a9nBmqA0ju/hNViExpshrM61xv4=', false)), /bodySHA256/);
  t.regex(String(vector(VECTOR_URL, body, 'RSOYDt4T1cUTdK1PDd93/VVr8B8=', false)), /does not match/);
});

test('twilio verify: never throws on a missing, repeated or empty header or token', (t) => {
  t.is(verifySignature({ url: VECTOR_URL, raw: VECTOR_FORM, form: true, headers: {} }, '12345'), 'missing X-Twilio-Signature header');
  t.is(verifySignature({ url: VECTOR_URL, raw: VECTOR_FORM, form: true, headers: { 'x-twilio-signature': ['a', 'b'] } }, '12345'), 'several X-Twilio-Signature headers');
  t.is(verifySignature({ url: VECTOR_URL, raw: VECTOR_FORM, form: true, headers: { 'x-twilio-signature': 'RSOYDt4T1cUTdK1PDd93/VVr8B8=' } }, ''), 'no auth_token configured');
  t.regex(String(vector(VECTOR_URL, VECTOR_FORM, 'not base64 at all ✓')), /does not match/);
});

test('twilio parse: location numbers only, NumMedia bounded by the fields present', (t) => {
  t.is(locationText('52.5', '13.4'), "/locationData{'Latitude': 52.5,'Longitude': 13.4}");
  t.is(locationText("1}'", '2'), undefined);
  const parsed = parseMessage({ From: USER, Body: 'x', NumMedia: '5', MediaUrl0: 'https://m/0' });
  t.like(parsed, { text: 'x', metadata: { NumMedia: 1, media: [{ url: 'https://m/0' }] } });
  t.like(parseMessage({ Body: 'x' }), { invalid: true });
});

test('twilio output: splitText keeps words whole and every part within 1600', (t) => {
  const parts = splitText(LONG);
  t.is(parts.length, 2);
  t.true(parts.every((part) => part.length <= 1600));
  t.is(parts.join(' '), LONG);
  const word = 'x'.repeat(3500);
  t.deepEqual(splitText(word).map((p) => p.length), [1600, 1600, 300]);
  t.deepEqual(splitText('short'), ['short']);
  const emoji = `${'a'.repeat(1599)}😀b`;
  t.is(splitText(emoji).join(''), emoji, 'a surrogate pair is never cut');
});

test('twilio output: Python library names → API names', (t) => {
  t.is(apiName('from_'), 'From');
  t.is(apiName('media_url'), 'MediaUrl');
  t.is(apiName('messaging_service_sid'), 'MessagingServiceSid');
  t.is(apiName('MediaUrl'), 'MediaUrl');
  const output = new TwilioOutput(new HttpClient(), { apiUrl: 'https://api.twilio.com', accountSid: ACCOUNT_SID, authToken: AUTH_TOKEN, twilioNumber: WHATSAPP_NUMBER });
  t.is(output.recipient('+491234567'), 'whatsapp:+491234567');
  t.is(output.recipient(WA_USER), WA_USER);
});

test('twilio: credentials are checked, naming the key', (t) => {
  t.is(t.throws(() => TwilioInput.fromCredentials({ auth_token: AUTH_TOKEN, twilio_number: NUMBER }))?.message, 'missing "account_sid"');
  t.is(t.throws(() => TwilioInput.fromCredentials({ account_sid: ACCOUNT_SID, twilio_number: NUMBER }))?.message, 'missing "auth_token"');
  t.regex(t.throws(() => TwilioInput.fromCredentials({ ...CREDENTIALS, twilio_number: '415-555-0100' }))?.message ?? '', /^"twilio_number": /);
  t.regex(t.throws(() => TwilioInput.fromCredentials({ ...CREDENTIALS, account_sid: 'SK123' }))?.message ?? '', /^"account_sid": /);
  t.notThrows(() => TwilioInput.fromCredentials({ ...CREDENTIALS, twilio_number: WHATSAPP_NUMBER }));
});

test.serial('twilio: a failed send is logged with the recipient, never with the auth token', async (t) => {
  nock.disableNetConnect();
  nock.enableNetConnect('127.0.0.1');
  t.teardown(() => nock.cleanAll());
  const scope = nock('https://api.twilio.com').post(`/2010-04-01/Accounts/${ACCOUNT_SID}/Messages.json`).reply(401, { code: 20003, message: 'Authenticate' });
  const bot = new ScriptedBot([{ text: 'hi' }]);
  const { request, logs } = await startServer(t, [TwilioInput.fromCredentials(CREDENTIALS)], { bot });
  const raw = new URLSearchParams(sms({ MessageSid: 'SM_logged' })).toString();
  const response = await request('/webhooks/twilio/webhook', { method: 'POST', body: raw, headers: { 'content-type': 'application/x-www-form-urlencoded', ...sign(raw) } });
  t.is(response.status, 200);
  const deadline = Date.now() + 3000;
  while (!/sending an answer failed/.test(logs.text) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  t.true(scope.isDone());
  t.regex(logs.text, /outgoing call failed/);
  t.regex(logs.text, new RegExp(USER.replace('+', '\\+')));
  t.false(logs.text.includes(AUTH_TOKEN));
  t.false(logs.text.includes(Buffer.from(`${ACCOUNT_SID}:${AUTH_TOKEN}`).toString('base64')));
});
