import test from 'ava';
import nock from 'nock';
import { createHash } from 'node:crypto';
import twilio from 'twilio';
import TwilioInput, { EMPTY_TWIML } from '../../channels/twilio/index.js';
import { TwilioOutput, apiName, splitText } from '../../channels/twilio/output.js';
import { locationText, parseMessage } from '../../channels/twilio/parse.js';
import { computeSignature, signatureSettings, urlVariants, verifySignature } from '../../channels/twilio/verify.js';
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

/** A form body as twilio-node takes its parameters: a repeated name as a list of its values. */
function formParams(raw: string): Record<string, string | string[]> {
  const params: Record<string, string | string[]> = {};
  for (const [name, value] of new URLSearchParams(raw)) {
    const existing = params[name];
    params[name] = existing === undefined ? value : ([] as string[]).concat(existing, value);
  }
  return params;
}

/**
 * The referee: the signature twilio-node (Twilio's own library) computes, never our code. Keyed with the auth token
 * (HMAC_SHA1), or with a SharedKey secret and its algorithm.
 */
function twilioSignature(url: string, raw: string, token = AUTH_TOKEN, algorithm?: string): string {
  return twilio.getExpectedTwilioSignature(token, url, formParams(raw), algorithm);
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
    // Every answer kind again from the message's data alone (the durable path).
    ...answerCases.map((answerCase) => (answerCase.label.includes('a failed send') ? answerCase : { ...answerCase, roundTrip: true as const })),
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
  const { request } = await startServer(t, [channel], { bot, trustProxy: true });
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

/** A form Twilio signed for `signedUrl`, posted to the harness with `headers` (issue 13, finding 5). */
async function proxiedPost(t: import('ava').ExecutionContext, options: { trustProxy?: boolean; webhookUrl?: string }, headers: Record<string, string>, signedUrl: string) {
  const bot = new ScriptedBot([]);
  const channel = TwilioInput.fromCredentials({ account_sid: ACCOUNT_SID, auth_token: AUTH_TOKEN, twilio_number: NUMBER, webhook_url: options.webhookUrl });
  const { request } = await startServer(t, [channel], { bot, trustProxy: options.trustProxy });
  const raw = new URLSearchParams(sms({ MessageSid: 'SM_other_app' })).toString();
  const response = await request('/webhooks/twilio/webhook', {
    method: 'POST',
    body: raw,
    headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-twilio-signature': twilioSignature(signedUrl, raw), ...headers },
  });
  return { status: response.status, bot };
}

const OTHER_APP = 'https://other-app.example.com/webhooks/twilio/webhook';
const SPOOF = { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'other-app.example.com' };

test.serial('twilio attack: a form signed for another app\u2019s URL, sent with X-Forwarded-Host naming it, is refused by default', async (t) => {
  const { status, bot } = await proxiedPost(t, {}, SPOOF, OTHER_APP);
  t.is(status, 401);
  const viaForwarded = await proxiedPost(t, {}, { forwarded: 'proto=https;host=other-app.example.com' }, OTHER_APP);
  t.is(viaForwarded.status, 401, 'Forwarded: is not trusted either');
  await new Promise((resolve) => setTimeout(resolve, 50));
  t.is(bot.received.length + viaForwarded.bot.received.length, 0);
});

test.serial('twilio attack: with webhook_url set, the signed URL is webhook_url even with --trust-proxy', async (t) => {
  const spoofed = await proxiedPost(t, { trustProxy: true, webhookUrl: WEBHOOK_URL }, SPOOF, OTHER_APP);
  t.is(spoofed.status, 401);
  t.is(spoofed.bot.received.length, 0);
  const legitimate = await proxiedPost(t, { trustProxy: true, webhookUrl: WEBHOOK_URL }, SPOOF, WEBHOOK_URL);
  t.is(legitimate.status, 200, 'a form signed for webhook_url passes, whatever the forwarded headers say');
  await legitimate.bot.waitFor(1);
});

test.serial('twilio: with --trust-proxy, the legitimate proxied request passes; without it, the same request is 401', async (t) => {
  const headers = { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'sms.example.org' };
  const signed = 'https://sms.example.org/webhooks/twilio/webhook';
  const trusted = await proxiedPost(t, { trustProxy: true }, headers, signed);
  t.is(trusted.status, 200);
  await trusted.bot.waitFor(1);
  const untrusted = await proxiedPost(t, {}, headers, signed);
  t.is(untrusted.status, 401, 'behind a proxy, set --trust-proxy or webhook_url');
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

// SharedKey signing: Twilio names the key and the algorithm in X-Twilio-Webhooks-Signature-Settings.
const SHARED_A = 'sk-secret-a-0f9e8d7c6b5a4938271605f4e3d2c1b0';
const SHARED_B = 'sk-secret-b-1a2b3c4d5e6f708192a3b4c5d6e7f809';
const KEY_A = 'webhooks_sharedkey_0a1b2c3d';
const KEY_B = 'webhooks_sharedkey_4e5f6a7b';
const SHARED_CREDENTIALS = { ...CREDENTIALS, webhook_signing_keys: { [KEY_A]: SHARED_A, [KEY_B]: SHARED_B } };
const SETTINGS = 'x-twilio-webhooks-signature-settings';
/** Signed by twilio-node with a SharedKey secret, the settings header naming `key` and `algorithm`. */
const signShared = (secret: string, settings: string, algorithm?: string) => (raw: string) => ({
  [SETTINGS]: settings,
  'x-twilio-signature': twilioSignature(WEBHOOK_URL, raw, secret, algorithm ?? twilio.getSignatureAlgorithm(settings)),
});

runChannelCases(test, {
  channel: TwilioInput,
  credentials: SHARED_CREDENTIALS,
  cases: [
    {
      label: 'twilio SharedKey: HMAC_SHA256 with the key the settings header names is accepted',
      form: sms({ MessageSid: 'SM_shared_256' }),
      sign: signShared(SHARED_A, `key=${KEY_A},algorithm=HMAC_SHA256`),
      status: 200,
      answers: [],
      received: [{ text: 'Hello there', messageId: 'SM_shared_256' }],
    },
    {
      label: 'twilio SharedKey: the second key of the map, algorithm HMAC_SHA1',
      form: sms({ MessageSid: 'SM_shared_b' }),
      sign: signShared(SHARED_B, `algorithm=HMAC_SHA1,key=${KEY_B}`),
      status: 200,
      answers: [],
      received: [{ messageId: 'SM_shared_b' }],
    },
    {
      label: 'twilio SharedKey: no algorithm means HMAC_SHA1; blanks and the algorithm\u2019s case are read as twilio-node reads them',
      form: sms({ MessageSid: 'SM_shared_default' }),
      sign: (raw) => ({ ...signShared(SHARED_A, ` key = ${KEY_A} `)(raw) }),
      status: 200,
      answers: [],
      received: [{ messageId: 'SM_shared_default' }],
    },
    {
      label: 'twilio SharedKey: a lower-case algorithm name is accepted, as twilio-node does',
      form: sms({ MessageSid: 'SM_shared_lower' }),
      sign: signShared(SHARED_A, `key=${KEY_A},algorithm=hmac_sha256`, 'HMAC_SHA256'),
      status: 200,
      answers: [],
      received: [{ messageId: 'SM_shared_lower' }],
    },
    {
      label: 'twilio SharedKey: an unknown key id is 401',
      form: sms({ MessageSid: 'SM_shared_unknown' }),
      sign: signShared(SHARED_A, 'key=webhooks_sharedkey_ffffffff,algorithm=HMAC_SHA256'),
      status: 401,
      received: [],
    },
    {
      label: 'twilio SharedKey: the right signature under the wrong key id is 401',
      form: sms({ MessageSid: 'SM_shared_swapped' }),
      sign: signShared(SHARED_A, `key=${KEY_B},algorithm=HMAC_SHA256`),
      status: 401,
      received: [],
    },
    {
      label: 'twilio SharedKey: with the settings header, an auth-token signature is 401 (no downgrade)',
      form: sms({ MessageSid: 'SM_shared_token' }),
      sign: (raw) => ({ [SETTINGS]: `key=${KEY_A},algorithm=HMAC_SHA1`, 'x-twilio-signature': twilioSignature(WEBHOOK_URL, raw) }),
      status: 401,
      received: [],
    },
    {
      label: 'twilio SharedKey: signed HMAC_SHA256 but the header says HMAC_SHA1 is 401',
      form: sms({ MessageSid: 'SM_shared_alg' }),
      sign: signShared(SHARED_A, `key=${KEY_A},algorithm=HMAC_SHA1`, 'HMAC_SHA256'),
      status: 401,
      received: [],
    },
    {
      label: 'twilio SharedKey: an unsupported algorithm is 401, never a 500',
      form: sms({ MessageSid: 'SM_shared_512' }),
      sign: (raw) => ({ [SETTINGS]: `key=${KEY_A},algorithm=HMAC_SHA512`, 'x-twilio-signature': twilioSignature(WEBHOOK_URL, raw, SHARED_A, 'HMAC_SHA256') }),
      status: 401,
      received: [],
    },
    {
      label: 'twilio SharedKey: a settings header without a key is 401',
      form: sms({ MessageSid: 'SM_shared_nokey' }),
      sign: signShared(SHARED_A, 'algorithm=HMAC_SHA256'),
      status: 401,
      received: [],
    },
    {
      label: 'twilio SharedKey: without the settings header, the auth token check is unchanged',
      form: sms({ MessageSid: 'SM_shared_absent' }),
      sign,
      status: 200,
      answers: [],
      received: [{ messageId: 'SM_shared_absent' }],
    },
  ],
});

runChannelCases(test, {
  channel: TwilioInput,
  credentials: CREDENTIALS,
  cases: [
    {
      label: 'twilio SharedKey: a settings header when no webhook_signing_keys are configured is 401',
      form: sms({ MessageSid: 'SM_shared_none' }),
      sign: signShared(SHARED_A, `key=${KEY_A},algorithm=HMAC_SHA256`),
      status: 401,
      received: [],
    },
  ],
});

test('twilio credentials: webhook_signing_keys is a map of non-empty strings, its values secret', (t) => {
  t.regex(t.throws(() => TwilioInput.fromCredentials({ ...CREDENTIALS, webhook_signing_keys: 'sk' }))?.message ?? '', /webhook_signing_keys/);
  t.regex(t.throws(() => TwilioInput.fromCredentials({ ...CREDENTIALS, webhook_signing_keys: { [KEY_A]: '' } }))?.message ?? '', /webhook_signing_keys/);
  const error = t.throws(() => TwilioInput.fromCredentials({ ...CREDENTIALS, webhook_signing_keys: { [KEY_A]: 42 } }))?.message ?? '';
  t.false(error.includes('42'), 'a secret value is not echoed in the error');
});

test.serial('twilio SharedKey: secrets never appear in the logs, a refused key id does', async (t) => {
  const bot = new ScriptedBot([]);
  const channel = TwilioInput.fromCredentials({ ...SHARED_CREDENTIALS, webhook_url: undefined });
  const { request, logs } = await startServer(t, [channel], { bot, trustProxy: true });
  const raw = new URLSearchParams(sms({ MessageSid: 'SM_shared_log' })).toString();
  const url = 'https://sms.example.org/webhooks/twilio/webhook';
  const post = (settings: string, secret: string) =>
    request('/webhooks/twilio/webhook', {
      method: 'POST',
      body: raw,
      headers: { 'content-type': 'application/x-www-form-urlencoded', forwarded: 'proto=https;host=sms.example.org', [SETTINGS]: settings, 'x-twilio-signature': twilioSignature(url, raw, secret, 'HMAC_SHA256') },
    });
  t.is((await post('key=webhooks_sharedkey_nope,algorithm=HMAC_SHA256', SHARED_A)).status, 401);
  t.is((await post(`key=${KEY_B},algorithm=HMAC_SHA256`, SHARED_A)).status, 401);
  t.is((await post(`key=${KEY_A},algorithm=HMAC_SHA256`, SHARED_A)).status, 200);
  await bot.waitFor(1);
  t.regex(logs.text, /unknown SharedKey \\"webhooks_sharedkey_nope\\"/);
  for (const secret of [SHARED_A, SHARED_B, AUTH_TOKEN]) t.false(logs.text.includes(secret), 'no secret in the logs');
});

test.serial('twilio SharedKey: each secret of the map is masked by the channel\u2019s HTTP client, like the auth token', async (t) => {
  const channel = TwilioInput.fromCredentials(SHARED_CREDENTIALS);
  await startServer(t, [channel]);
  t.is(channel.http.mask(`a ${SHARED_A} b ${SHARED_B} c ${AUTH_TOKEN}`), 'a [redacted] b [redacted] c [redacted]');
});

test('twilio verify: signatureSettings reads the header as twilio-node does', (t) => {
  t.deepEqual(signatureSettings(`key=${KEY_A},algorithm=HMAC_SHA256`), { key: KEY_A, algorithm: 'HMAC_SHA256' });
  t.deepEqual(signatureSettings(`key=${KEY_A}`), { key: KEY_A, algorithm: 'HMAC_SHA1' });
  t.deepEqual(signatureSettings('algorithm=,key=,algorithm=HMAC_SHA256'), { key: undefined, algorithm: 'HMAC_SHA256' });
  for (const header of [`key=${KEY_A},algorithm=HMAC_SHA256`, `key=${KEY_A}`, 'algorithm= HMAC_SHA256 ', 'garbage', '']) {
    t.is(signatureSettings(header).algorithm, twilio.getSignatureAlgorithm(header), `algorithm of ${JSON.stringify(header)}`);
  }
});

/**
 * The URLs a Console may hold (as Twilio signs them) against the URLs a request may arrive at: whatever twilio-node's
 * `validateRequest` accepts or refuses, we accept or refuse, for the auth token and for a SharedKey (HMAC_SHA256).
 */
const SIGNED_FORMS = [
  "https://bot.example.com/webhooks/twilio/webhook?name=O'Brien&city=S%C3%A3o%20Paulo",
  'https://bot.example.com/webhooks/twilio/webhook?name=O%27Brien&city=S%C3%A3o%20Paulo',
  "https://bot.example.com:443/webhooks/twilio/webhook?name=O'Brien&city=S%C3%A3o%20Paulo",
  'https://bot.example.com/webhooks/twilio/webhook?name=O%27Brien&city=S%C3%A3o+Paulo',
  'https://bot.example.com/webhooks/twilio/webhook?q=a%2Ab&tag=%7Bx%7D',
  'https://bot.example.com/webhooks/twilio/webhook?q=a*b&tag={x}',
  'https://bot.example.com:8443/webhooks/twilio/webhook?x=1',
  'https://bot.example.com/webhooks/twilio/webhook?x=1',
  'https://user:pa%40ss@bot.example.com/webhooks/twilio/webhook',
  'https://[2001:db8::1]:8443/webhooks/twilio/webhook',
];
const RECEIVED_FORMS = [
  ...SIGNED_FORMS,
  'https://BOT.example.com/webhooks/twilio/webhook?x=1',
  'https://bot.example.com:443/webhooks/twilio/webhook?name=O%27Brien&city=S%C3%A3o%20Paulo',
  'https://user:pa%40ss@bot.example.com:443/webhooks/twilio/webhook',
  'https://[2001:db8::1]/webhooks/twilio/webhook',
];

test('twilio verify: the URLs twilio-node accepts (ports, percent-encoding) and no others', (t) => {
  const raw = new URLSearchParams(sms()).toString();
  const params = formParams(raw);
  let accepted = 0;
  for (const [key, algorithm, keys] of [[AUTH_TOKEN, 'HMAC_SHA1', {}], [SHARED_A, 'HMAC_SHA256', { [KEY_A]: SHARED_A }]] as const) {
    const settings = algorithm === 'HMAC_SHA1' ? {} : { [SETTINGS]: `key=${KEY_A},algorithm=${algorithm}` };
    for (const signed of SIGNED_FORMS) {
      const signature = twilio.getExpectedTwilioSignature(key, signed, params, algorithm);
      for (const received of RECEIVED_FORMS) {
        const referee = twilio.validateRequest(key, signature, received, params, algorithm);
        const ours = verifySignature({ url: received, raw, form: true, headers: { 'x-twilio-signature': signature, ...settings } }, AUTH_TOKEN, keys) === true;
        t.is(ours, referee, `${algorithm} signed ${signed} → received ${received}`);
        if (referee) accepted++;
      }
    }
  }
  // Not a vacuous table: the pairs that differ only by port or percent-encoding are among the accepted ones.
  t.true(accepted > 2 * SIGNED_FORMS.length, `${accepted} accepted pairs`);
  const signed = twilio.getExpectedTwilioSignature(AUTH_TOKEN, SIGNED_FORMS[0]!, params);
  t.true(verifySignature({ url: SIGNED_FORMS[1]!, raw, form: true, headers: { 'x-twilio-signature': signed } }, AUTH_TOKEN), "signed with ', received as %27");
  t.true(verifySignature({ url: RECEIVED_FORMS.at(-3)!, raw, form: true, headers: { 'x-twilio-signature': signed } }, AUTH_TOKEN), 'received with :443 and %27');
});

test.serial('twilio: a percent-encoded query arrives as the client encoded it and still verifies', async (t) => {
  const bot = new ScriptedBot([]);
  const channel = TwilioInput.fromCredentials({ account_sid: ACCOUNT_SID, auth_token: AUTH_TOKEN, twilio_number: NUMBER });
  const { request } = await startServer(t, [channel], { bot, trustProxy: true });
  const raw = new URLSearchParams(sms({ MessageSid: 'SM_encoded' })).toString();
  // Typed into the Console with a raw apostrophe; fetch sends it as %27.
  const typed = "https://sms.example.org/webhooks/twilio/webhook?name=O'Brien";
  const response = await request("/webhooks/twilio/webhook?name=O'Brien", {
    method: 'POST',
    body: raw,
    headers: { 'content-type': 'application/x-www-form-urlencoded', forwarded: 'proto=https;host=sms.example.org', 'x-twilio-signature': twilioSignature(typed, raw) },
  });
  t.is(response.status, 200);
  await bot.waitFor(1);
});

/** A request from the harness's 127.0.0.1:<port> that a proxy forwarded, signed for the URL Twilio called. */
async function forwardedRequest(t: import('ava').ExecutionContext, headers: Record<string, string>, signedUrl: string, sid: string) {
  const bot = new ScriptedBot([]);
  const channel = TwilioInput.fromCredentials({ account_sid: ACCOUNT_SID, auth_token: AUTH_TOKEN, twilio_number: NUMBER });
  const { request } = await startServer(t, [channel], { bot, trustProxy: true });
  const raw = new URLSearchParams(sms({ MessageSid: sid })).toString();
  const response = await request('/webhooks/twilio/webhook?x=1', {
    method: 'POST',
    body: raw,
    headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-twilio-signature': twilioSignature(signedUrl, raw), ...headers },
  });
  return { status: response.status, bot };
}

const FORWARDED_CASES: Array<[string, Record<string, string>, string, number]> = [
  ['Forwarded proto and host make the signed URL', { forwarded: 'for=192.0.2.60;proto=https;host=sms.example.org' }, 'https://sms.example.org/webhooks/twilio/webhook?x=1', 200],
  ['a quoted host with its port', { forwarded: 'for="[2001:db8:cafe::17]:4711";proto=https;host="sms.example.org:8443"' }, 'https://sms.example.org:8443/webhooks/twilio/webhook?x=1', 200],
  ['the first element counts (the proxy the client reached)', { forwarded: 'proto=https;host=sms.example.org, proto=http;host=internal.lan' }, 'https://sms.example.org/webhooks/twilio/webhook?x=1', 200],
  ['a later element is not the public URL', { forwarded: 'proto=https;host=sms.example.org, proto=http;host=internal.lan' }, 'http://internal.lan/webhooks/twilio/webhook?x=1', 401],
  ['Forwarded wins over X-Forwarded-Host', { forwarded: 'proto=https;host=sms.example.org', 'x-forwarded-host': 'other.example.net' }, 'https://sms.example.org/webhooks/twilio/webhook?x=1', 200],
  ['a parameter Forwarded lacks comes from X-Forwarded-*', { forwarded: 'for=192.0.2.60;proto=https', 'x-forwarded-host': 'sms.example.org' }, 'https://sms.example.org/webhooks/twilio/webhook?x=1', 200],
  ['a host that is not a host is ignored', { forwarded: 'proto=https;host="evil.example/x?"', 'x-forwarded-host': 'sms.example.org' }, 'https://sms.example.org/webhooks/twilio/webhook?x=1', 200],
  ['without any proxy header, the public URL is unknown: 401', {}, 'https://sms.example.org/webhooks/twilio/webhook?x=1', 401],
];
for (const [label, headers, signedUrl, status] of FORWARDED_CASES) {
  test.serial(`twilio behind a proxy (RFC 7239): ${label}`, async (t) => {
    const { status: actual, bot } = await forwardedRequest(t, headers, signedUrl, `SM_fwd_${FORWARDED_CASES.findIndex(([l]) => l === label)}`);
    t.is(actual, status);
    if (status === 200) await bot.waitFor(1);
    else t.is(bot.received.length, 0);
  });
}
