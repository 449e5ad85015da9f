import test, { type ExecutionContext } from 'ava';
import nock from 'nock';
import { createHmac } from 'node:crypto';
import InstagramInput, { checkDeliveryTime, parseDelivery, splitText, verifySignature } from '../../channels/instagram/index.js';
import { runChannelCases, startServer, ScriptedBot, type OutgoingCall } from '../harness.js';

const APP_SECRET = '7c2e9a41b0d35f68e1a4c7b92d0f3e56';
const PAGE_TOKEN = 'EAAIgpage-token-linked-to-instagram-not-for-logs';
const VERIFY = 'switchboard-ig-verify-5b2f';
/** The Instagram professional account (IGID): `entry.id` and `recipient.id` of its deliveries. */
const IGID = '17841405822304914';
const OTHER_IGID = '17841400000000001';
/** Instagram-scoped ids (IGSID) of two users. */
const IGSID = '1254459154682919';
const OTHER_IGSID = '6311887520457127';
const SEND_URL = 'https://graph.facebook.com/v21.0/me/messages';
const CREDENTIALS = { verify: VERIFY, secret: APP_SECRET, 'page-access-token': PAGE_TOKEN, instagram_account_id: IGID };

const sign = (raw: string) => ({ 'x-hub-signature-256': `sha256=${createHmac('sha256', APP_SECRET).update(raw).digest('hex')}` });
const sign1 = (raw: string) => ({ 'x-hub-signature': `sha1=${createHmac('sha1', APP_SECRET).update(raw).digest('hex')}` });

/** When this file's deliveries were "sent": `entry[].time` is checked against the replay window (36 h by default). */
const NOW = Date.now();

/** A delivery as the Messenger Platform posts it for Instagram (webhooks reference): one entry with these events. */
function delivery(...messaging: unknown[]): object {
  return { object: 'instagram', entry: [{ id: IGID, time: NOW, messaging }] };
}

/** A messaging event from a user to the account. */
function event(fields: object, sender = IGSID, timestamp = 1569262485349): object {
  return { sender: { id: sender }, recipient: { id: IGID }, timestamp, ...fields };
}

const textEvent = (text: string, mid: string, sender = IGSID) => event({ message: { mid, text } }, sender);

/** The Send API call an answer becomes (Messenger Platform, Instagram: `me/messages` with the Page token). */
function send(message: unknown, recipient = IGSID, extra: Partial<OutgoingCall> = {}): OutgoingCall {
  return {
    url: SEND_URL,
    query: { access_token: PAGE_TOKEN },
    headers: { 'content-type': 'application/json' },
    body: { recipient: { id: recipient }, messaging_type: 'RESPONSE', message },
    reply: { body: { recipient_id: recipient, message_id: 'aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjE3ODQxNDA1ODIyMzA0OTE0OjM0MDI4MjM2Njg0MTcxMDMwMDk0' } },
    ...extra,
  };
}

const text = (body: string, recipient = IGSID, extra: Partial<OutgoingCall> = {}) => send({ text: body }, recipient, extra);
const template = (payload: object) => ({ attachment: { type: 'template', payload } });
const quickReplies = (prompt: string, replies: Array<[string, string]>) => ({ text: prompt, quick_replies: replies.map(([title, payload]) => ({ content_type: 'text', title, payload })) });

/** The Graph API's error answer (`{error: {message, type, code, error_subcode?, fbtrace_id}}`). */
const graphError = (code: number, message: string, subcode?: number) => ({ error: { message, type: 'OAuthException', code, ...(subcode ? { error_subcode: subcode } : {}), fbtrace_id: 'AzHs3sIJn7o' } });

runChannelCases(test, {
  channel: InstagramInput,
  credentials: CREDENTIALS,
  cases: [
    // --- subscription check and health
    {
      label: 'instagram: GET /webhook with hub.mode=subscribe and the verify token answers the challenge as text',
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
      label: 'instagram: GET /webhook with a wrong verify token is 403',
      method: 'GET',
      path: '/webhook?hub.mode=subscribe&hub.verify_token=guess&hub.challenge=1158201444',
      status: 403,
      response: { error: 'invalid verify token' },
    },
    {
      label: 'instagram: GET /webhook without hub.mode=subscribe is 403',
      method: 'GET',
      path: `/webhook?hub.mode=unsubscribe&hub.verify_token=${VERIFY}&hub.challenge=1`,
      status: 403,
    },
    {
      label: 'instagram: GET /webhook with the token but no challenge is 400',
      method: 'GET',
      path: `/webhook?hub.mode=subscribe&hub.verify_token=${VERIFY}`,
      status: 400,
    },
    { label: 'instagram: GET / is the health route', method: 'GET', path: '/', status: 200, response: { status: 'ok' } },

    // --- verification fails closed
    {
      label: 'instagram: a missing signature is 401 and the bot is never called',
      body: delivery(textEvent('unsigned', 'aWdfZAG1_unsigned')),
      status: 401,
      response: { error: 'request could not be verified' },
      received: [],
      outgoing: [],
    },
    {
      label: 'instagram: a wrong X-Hub-Signature-256 is 401',
      body: delivery(textEvent('forged', 'aWdfZAG1_forged')),
      headers: { 'x-hub-signature-256': `sha256=${'0'.repeat(64)}` },
      status: 401,
      received: [],
      outgoing: [],
    },
    {
      label: 'instagram: a signature made with another secret is 401',
      body: delivery(textEvent('other app', 'aWdfZAG1_other')),
      sign: (raw) => ({ 'x-hub-signature-256': `sha256=${createHmac('sha256', 'another-app-secret').update(raw).digest('hex')}` }),
      status: 401,
      received: [],
    },
    {
      label: 'instagram: a signature over other bytes (the body re-serialised) is 401',
      body: '{ "object": "instagram", "entry": [] }',
      headers: { 'content-type': 'application/json' },
      sign: () => sign(JSON.stringify({ object: 'instagram', entry: [] })),
      status: 401,
      received: [],
    },
    { label: 'instagram: the legacy sha1 header alone is not enough: 401', body: delivery(textEvent('old', 'aWdfZAG1_sha1')), sign: sign1, status: 401, received: [] },
    { label: 'instagram: an empty X-Hub-Signature-256 is 401', body: delivery(textEvent('empty', 'aWdfZAG1_empty')), headers: { 'x-hub-signature-256': '' }, status: 401, received: [] },

    // --- incoming kinds
    {
      label: 'instagram: a text message reaches the bot and the answer is a Send API call with the Page token',
      roundTrip: true,
      body: delivery(textEvent('hello, world!', 'aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjE3_text')),
      sign,
      answers: [{ text: 'Hey there!' }],
      status: 200,
      response: 'success',
      received: [
        {
          text: 'hello, world!',
          senderId: IGSID,
          messageId: 'aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjE3_text',
          inputChannel: 'instagram',
          metadata: { type: 'text', instagram_account_id: IGID, timestamp: 1569262485349 },
        },
      ],
      outgoing: [text('Hey there!')],
    },
    {
      label: 'instagram: a reply to an earlier message carries its mid in metadata',
      body: delivery(event({ message: { mid: 'aWdfZAG1_reply', text: 'this one', reply_to: { mid: 'aWdfZAG1_earlier' } } })),
      sign,
      answers: [],
      status: 200,
      received: [{ text: 'this one', metadata: { type: 'text', reply_to_mid: 'aWdfZAG1_earlier' } }],
    },
    {
      label: 'instagram: a quick reply tap: its payload is the text, its title in metadata; quick replies answered natively',
      roundTrip: true,
      body: delivery(event({ message: { quick_reply: { payload: '/choose{"color":"red"}' }, mid: 'aWdfZAG1_qr', text: 'Red' } })),
      sign,
      answers: [{ text: 'Size?', quick_replies: [{ title: 'Small', payload: '/size{"s":"S"}' }, { title: 'Large, extra roomy and comfy', payload: '/size{"s":"L"}', image_url: 'https://example.com/l.png' }] }],
      status: 200,
      response: 'success',
      received: [{ text: '/choose{"color":"red"}', messageId: 'aWdfZAG1_qr', metadata: { type: 'quick_reply', title: 'Red' } }],
      outgoing: [send(quickReplies('Size?', [['Small', '/size{"s":"S"}'], ['Large, extra roomy a', '/size{"s":"L"}']]))],
    },
    {
      label: 'instagram: a postback (generic template button, icebreaker): its payload is the text, its title in metadata',
      roundTrip: true,
      body: delivery(event({ postback: { mid: 'aWdfZAG1_pb', title: 'Start Chatting', payload: 'DEVELOPER_DEFINED_PAYLOAD' } })),
      sign,
      answers: [{ text: 'Hi!' }],
      status: 200,
      received: [{ text: 'DEVELOPER_DEFINED_PAYLOAD', senderId: IGSID, messageId: 'aWdfZAG1_pb', metadata: { type: 'postback', title: 'Start Chatting', instagram_account_id: IGID } }],
      outgoing: [text('Hi!')],
    },
    {
      label: 'instagram: a postback without mid is deduplicated by sender and timestamp',
      body: delivery(event({ postback: { title: 'Start Chatting', payload: '/greet' } })),
      sign,
      repeat: 2,
      answers: [],
      status: 200,
      received: [{ text: '/greet', messageId: `postback:${IGSID}:1569262485349` }],
    },
    {
      label: 'instagram: a story reply: the reply is the text, the story (id, CDN url) in metadata',
      roundTrip: true,
      body: delivery(event({ message: { mid: 'aWdfZAG1_story_reply', text: 'love this!', reply_to: { story: { url: 'https://lookaside.fbsbx.com/ig_messaging_cdn/?asset_id=17895695668004550', id: '17895695668004550' } } } })),
      sign,
      answers: [{ text: 'Thank you!' }],
      status: 200,
      received: [
        {
          text: 'love this!',
          messageId: 'aWdfZAG1_story_reply',
          metadata: { type: 'story_reply', story: { id: '17895695668004550', url: 'https://lookaside.fbsbx.com/ig_messaging_cdn/?asset_id=17895695668004550' } },
        },
      ],
      outgoing: [text('Thank you!')],
    },
    {
      label: 'instagram: a story mention: the story URL is the text and in metadata',
      body: delivery(event({ message: { mid: 'aWdfZAG1_mention', attachments: [{ type: 'story_mention', payload: { url: 'https://lookaside.fbsbx.com/ig_messaging_cdn/?asset_id=17887498072083520' } }] } })),
      sign,
      answers: [{ text: 'Thanks for the mention!' }],
      status: 200,
      received: [
        {
          text: 'https://lookaside.fbsbx.com/ig_messaging_cdn/?asset_id=17887498072083520',
          messageId: 'aWdfZAG1_mention',
          metadata: { type: 'story_mention', story: { url: 'https://lookaside.fbsbx.com/ig_messaging_cdn/?asset_id=17887498072083520' } },
        },
      ],
      outgoing: [text('Thanks for the mention!')],
    },
    {
      label: 'instagram: an image attachment: its URL is the text (as Rasa) and in metadata; image answered as an image attachment',
      roundTrip: true,
      body: delivery(event({ message: { mid: 'aWdfZAG1_img', attachments: [{ type: 'image', payload: { url: 'https://lookaside.fbsbx.com/ig_messaging_cdn/?asset_id=cat' } }] } })),
      sign,
      answers: [{ image: 'https://i.imgur.com/nGF1K8f.jpg' }],
      status: 200,
      received: [
        {
          text: 'https://lookaside.fbsbx.com/ig_messaging_cdn/?asset_id=cat',
          metadata: { type: 'attachment', attachment_type: 'image', url: 'https://lookaside.fbsbx.com/ig_messaging_cdn/?asset_id=cat', attachments: [{ type: 'image', url: 'https://lookaside.fbsbx.com/ig_messaging_cdn/?asset_id=cat' }] },
        },
      ],
      outgoing: [send({ attachment: { type: 'image', payload: { url: 'https://i.imgur.com/nGF1K8f.jpg' } } })],
    },
    {
      label: "instagram: an echo of the account's own message is ignored",
      body: delivery({ sender: { id: IGID }, recipient: { id: IGSID }, timestamp: 1569262485349, message: { mid: 'aWdfZAG1_echo', text: 'Hey there!', is_echo: true } }),
      sign,
      status: 200,
      response: 'success',
      received: [],
      outgoing: [],
    },
    {
      label: 'instagram: deleted and unsupported messages, read receipts and reactions are ignored',
      body: delivery(
        event({ message: { mid: 'aWdfZAG1_deleted', is_deleted: true } }),
        event({ message: { mid: 'aWdfZAG1_unsupported', is_unsupported: true } }),
        event({ read: { mid: 'aWdfZAG1_text' } }),
        event({ reaction: { mid: 'aWdfZAG1_text', action: 'react', reaction: 'love', emoji: '\u2764\uFE0F' } }),
      ),
      sign,
      status: 200,
      response: 'success',
      received: [],
      outgoing: [],
    },
    {
      label: 'instagram: an entry for another Instagram account of the app is ignored; this account\'s entry is processed',
      body: {
        object: 'instagram',
        entry: [
          { id: OTHER_IGID, time: NOW, messaging: [{ sender: { id: OTHER_IGSID }, recipient: { id: OTHER_IGID }, timestamp: 1, message: { mid: 'aWdfZAG1_elsewhere', text: 'not for us' } }] },
          { id: IGID, time: NOW, messaging: [textEvent('for us', 'aWdfZAG1_ours')] },
        ],
      },
      sign,
      answers: [],
      status: 200,
      received: [{ text: 'for us' }],
    },
    {
      label: 'instagram: an event whose recipient is another account is ignored',
      body: delivery({ sender: { id: IGSID }, recipient: { id: OTHER_IGID }, timestamp: 1, message: { mid: 'aWdfZAG1_misaddressed', text: 'hm' } }),
      sign,
      status: 200,
      received: [],
      outgoing: [],
    },
    {
      label: 'instagram: two events in one delivery are both processed, in order, per sender',
      roundTrip: true,
      body: delivery(textEvent('first', 'aWdfZAG1_two_1'), textEvent('second', 'aWdfZAG1_two_2', OTHER_IGSID)),
      sign,
      answers: [{ text: 'got it' }],
      status: 200,
      received: [{ text: 'first', senderId: IGSID }, { text: 'second', senderId: OTHER_IGSID }],
      outgoing: [text('got it'), text('got it', OTHER_IGSID)],
    },
    {
      label: 'instagram: a redelivered mid is answered success again but processed once',
      body: delivery(textEvent('hello again', 'aWdfZAG1_redelivered')),
      sign,
      repeat: 2,
      answers: [{ text: 'once' }],
      status: 200,
      response: 'success',
      received: [{ text: 'hello again' }],
      outgoing: [text('once')],
    },
    {
      label: 'instagram: events with missing fields are skipped, the rest processed',
      body: delivery(
        { recipient: { id: IGID }, timestamp: 1, message: { mid: 'aWdfZAG1_nosender', text: 'who?' } },
        event({ postback: { title: 'no payload' } }),
        event({ message: { mid: 'aWdfZAG1_nothing' } }),
        event({ message: { mid: 'aWdfZAG1_share', attachments: [{ type: 'share', payload: null }] } }),
        'not an event',
        textEvent('still here', 'aWdfZAG1_ok'),
      ),
      sign,
      answers: [],
      status: 200,
      received: [{ text: 'still here' }],
    },
    {
      label: 'instagram: a Messenger page delivery (object: page) is answered success and not processed',
      body: { object: 'page', entry: [{ id: IGID, time: NOW, messaging: [textEvent('hi', 'm_page')] }] },
      sign,
      status: 200,
      response: 'success',
      received: [],
      outgoing: [],
    },
    {
      label: 'instagram: comment notifications (entry.changes) are answered success and not processed',
      body: { object: 'instagram', entry: [{ id: IGID, time: NOW, changes: [{ field: 'comments', value: { id: '17865799348089039', from: { id: IGSID, username: 'someone' }, text: 'nice' } }] }] },
      sign,
      status: 200,
      response: 'success',
      received: [],
    },
    {
      label: 'instagram: malformed JSON is 400 and never reaches the bot',
      body: '{"object":"instagram","entry":[',
      headers: { 'content-type': 'application/json' },
      sign,
      status: 400,
      response: { error: 'malformed JSON body' },
      received: [],
    },

    // --- each answer kind
    {
      label: 'instagram: text with blank lines is sent as one message per part',
      roundTrip: true,
      body: delivery(textEvent('hi', 'aWdfZAG1_parts')),
      sign,
      answers: [{ text: 'Hello!\n\nHow can I help?' }],
      status: 200,
      outgoing: [text('Hello!'), text('How can I help?')],
    },
    {
      label: 'instagram: a text over 1000 characters is split at a space',
      roundTrip: true,
      body: delivery(textEvent('long', 'aWdfZAG1_long')),
      sign,
      answers: [{ text: `${'a'.repeat(990)} ${'b'.repeat(200)}` }],
      status: 200,
      outgoing: [text('a'.repeat(990)), text('b'.repeat(200))],
    },
    {
      label: 'instagram: postback buttons are sent as quick replies (Instagram shows them on its apps)',
      roundTrip: true,
      body: delivery(textEvent('mood?', 'aWdfZAG1_buttons')),
      sign,
      answers: [{ text: 'How are you?', buttons: [{ title: 'great', payload: '/mood_great' }, { title: 'sad', payload: '/mood_sad' }, { type: 'postback', title: '\u{1F610} meh, whatever, truly', payload: '/mood_meh' }] }],
      status: 200,
      outgoing: [send(quickReplies('How are you?', [['great', '/mood_great'], ['sad', '/mood_sad'], ['\u{1F610} meh, whatever, tru', '/mood_meh']]))],
    },
    {
      label: 'instagram: a link button cannot be a quick reply: the buttons become the numbered text list',
      body: delivery(textEvent('help', 'aWdfZAG1_link')),
      sign,
      answers: [{ text: 'Need help?', buttons: [{ title: 'yes', payload: '/yes' }, { type: 'web_url', title: 'Docs', url: 'https://example.com/help' }] }],
      status: 200,
      outgoing: [text('Need help?\n1: yes (/yes)\n2: Docs (https://example.com/help)')],
    },
    {
      label: 'instagram: 13 quick replies are sent; titles cut to 20 characters',
      body: delivery(textEvent('pick', 'aWdfZAG1_13')),
      sign,
      answers: [{ text: 'Pick', quick_replies: Array.from({ length: 13 }, (_, i) => ({ title: `option number ${i + 1} of thirteen`, payload: `/pick{"n":${i + 1}}` })) }],
      status: 200,
      outgoing: [send(quickReplies('Pick', Array.from({ length: 13 }, (_, i): [string, string] => [`option number ${i + 1} of thirteen`.slice(0, 20), `/pick{"n":${i + 1}}`])))],
    },
    {
      label: 'instagram: more than 13 quick replies become the numbered text list, none dropped',
      body: delivery(textEvent('pick', 'aWdfZAG1_14')),
      sign,
      answers: [{ text: 'Pick', quick_replies: Array.from({ length: 14 }, (_, i) => ({ title: `o${i + 1}`, payload: `/p${i + 1}` })) }],
      status: 200,
      outgoing: [text(['Pick', ...Array.from({ length: 14 }, (_, i) => `${i + 1}: o${i + 1} (/p${i + 1})`)].join('\n'))],
    },
    {
      label: 'instagram: quick replies with a text over 1000 characters: the text first, its last part with the quick replies',
      body: delivery(textEvent('long choice', 'aWdfZAG1_longqr')),
      sign,
      answers: [{ text: `${'x'.repeat(995)} ${'y'.repeat(10)}`, quick_replies: [{ title: 'ok', payload: '/ok' }] }],
      status: 200,
      outgoing: [text('x'.repeat(995)), send(quickReplies('y'.repeat(10), [['ok', '/ok']]))],
    },
    {
      label: 'instagram: elements are a generic template; untyped buttons become postbacks',
      roundTrip: true,
      body: delivery(textEvent('shop', 'aWdfZAG1_shop')),
      sign,
      answers: [
        {
          elements: [
            {
              title: 'Welcome!',
              image_url: 'https://example.com/hat.jpg',
              subtitle: 'We have the right hat for everyone.',
              default_action: { type: 'web_url', url: 'https://example.com' },
              buttons: [{ type: 'web_url', url: 'https://example.com', title: 'View Website' }, { title: 'Start Chatting', payload: 'DEVELOPER_DEFINED_PAYLOAD' }],
            },
          ],
        },
      ],
      status: 200,
      outgoing: [
        send(
          template({
            template_type: 'generic',
            elements: [
              {
                title: 'Welcome!',
                image_url: 'https://example.com/hat.jpg',
                subtitle: 'We have the right hat for everyone.',
                default_action: { type: 'web_url', url: 'https://example.com' },
                buttons: [{ type: 'web_url', url: 'https://example.com', title: 'View Website' }, { type: 'postback', title: 'Start Chatting', payload: 'DEVELOPER_DEFINED_PAYLOAD' }],
              },
            ],
          }),
        ),
      ],
    },
    {
      label: 'instagram: more than 10 elements are sent as several generic templates',
      body: delivery(textEvent('all', 'aWdfZAG1_all')),
      sign,
      answers: [{ elements: Array.from({ length: 11 }, (_, i) => ({ title: `card ${i + 1}` })) }],
      status: 200,
      outgoing: [
        send(template({ template_type: 'generic', elements: Array.from({ length: 10 }, (_, i) => ({ title: `card ${i + 1}` })) })),
        send(template({ template_type: 'generic', elements: [{ title: 'card 11' }] })),
      ],
    },
    {
      label: 'instagram: an attachment answer falls back to text; messaging_type and tag options are passed on',
      body: delivery(textEvent('file', 'aWdfZAG1_file')),
      sign,
      answers: [{ attachment: 'https://example.com/report.pdf', messaging_type: 'MESSAGE_TAG', tag: 'HUMAN_AGENT' }],
      status: 200,
      outgoing: [text('', IGSID, { body: { recipient: { id: IGSID }, messaging_type: 'MESSAGE_TAG', tag: 'HUMAN_AGENT', message: { text: 'Attachment: https://example.com/report.pdf' } } })],
    },
    {
      label: 'instagram: custom JSON is the message object; a list is sent item by item; a non-object is not sent',
      body: delivery(textEvent('custom', 'aWdfZAG1_custom')),
      sign,
      answers: [{ custom: [{ attachment: { type: 'like_heart' } }, 'not a message', { text: 'and this' }] }],
      status: 200,
      outgoing: [send({ attachment: { type: 'like_heart' } }), text('and this')],
    },

    // --- platform errors
    {
      label: 'instagram: a 400 (invalid parameter) is not retried',
      body: delivery(textEvent('bad', 'aWdfZAG1_e400')),
      sign,
      answers: [{ text: 'never arrives' }],
      status: 200,
      outgoing: [text('never arrives', IGSID, { reply: { status: 400, body: graphError(100, '(#100) Invalid parameter') } })],
    },
    {
      label: 'instagram: a 400 outside the 24-hour messaging window is not retried, and the next answers are not tried',
      body: delivery(textEvent('late', 'aWdfZAG1_window')),
      sign,
      answers: [{ text: 'too late' }, { text: 'also too late' }],
      status: 200,
      outgoing: [text('too late', IGSID, { reply: { status: 400, body: graphError(10, '(#10) This message is sent outside of allowed window.', 2534022) } })],
    },
    {
      label: 'instagram: a 401 (expired token) is not retried',
      body: delivery(textEvent('expired', 'aWdfZAG1_e401')),
      sign,
      answers: [{ text: 'never arrives' }],
      status: 200,
      outgoing: [text('never arrives', IGSID, { reply: { status: 401, body: graphError(190, 'Error validating access token: Session has expired') } })],
    },
    {
      label: 'instagram: a 429 is retried (after Retry-After)',
      body: delivery(textEvent('busy', 'aWdfZAG1_e429')),
      sign,
      answers: [{ text: 'eventually' }],
      status: 200,
      outgoing: [text('eventually', IGSID, { reply: { status: 429, headers: { 'retry-after': '0' }, body: graphError(613, 'Calls to this api have exceeded the rate limit.') } }), text('eventually')],
    },
    {
      label: 'instagram: a 503 (not processed) is retried',
      body: delivery(textEvent('down', 'aWdfZAG1_e503')),
      sign,
      answers: [{ text: 'eventually' }],
      status: 200,
      outgoing: [text('eventually', IGSID, { reply: { status: 503, body: graphError(2, 'Service temporarily unavailable') } }), text('eventually')],
    },
    {
      label: 'instagram: a 500 (may have been sent) is not retried, so the user never gets the answer twice',
      body: delivery(textEvent('maybe', 'aWdfZAG1_e500')),
      sign,
      answers: [{ text: 'maybe sent' }],
      status: 200,
      outgoing: [text('maybe sent', IGSID, { reply: { status: 500, body: graphError(1, 'An unknown error occurred') } })],
    },
  ],
});

runChannelCases(test, {
  channel: InstagramInput,
  credentials: { ...CREDENTIALS, api_url: 'https://graph-proxy.example.com/meta/', graph_version: 'v19.0' },
  cases: [
    {
      label: 'instagram: api_url and graph_version replace the Send API base',
      roundTrip: true,
      body: delivery(textEvent('proxied', 'aWdfZAG1_proxied')),
      sign,
      answers: [{ text: 'via proxy' }],
      status: 200,
      outgoing: [text('via proxy', IGSID, { url: 'https://graph-proxy.example.com/meta/v19.0/me/messages' })],
    },
  ],
});

runChannelCases(test, {
  channel: InstagramInput,
  credentials: { verify: VERIFY, 'page-access-token': PAGE_TOKEN, instagram_account_id: IGID, allow_unverified: true },
  cases: [
    {
      label: 'instagram allow_unverified: an unsigned delivery is processed',
      body: delivery(textEvent('no secret', 'aWdfZAG1_unverified')),
      answers: [{ text: 'ok' }],
      status: 200,
      response: 'success',
      received: [{ text: 'no secret' }],
      outgoing: [text('ok')],
    },
  ],
});

// --- replays: `entry[].time` is signed with the body, so an old delivery cannot be made to look new.

const HOUR = 3_600_000;
const deliveryAt = (time: number, mid: string) => ({ object: 'instagram', entry: [{ id: IGID, time, messaging: [textEvent('replayed', mid)] }] });
const stale = (label: string, body: object) => ({ label: `instagram replay: ${label} → 200 success, the bot never called`, body, sign, status: 200, response: 'success', received: [], outgoing: [] });
const fresh = (label: string, body: object) => ({ label: `instagram replay: ${label} → processed`, body, sign, answers: [{ text: 'ok' }], status: 200, response: 'success', received: [{ text: 'replayed' }], outgoing: [text('ok')] });

runChannelCases(test, {
  channel: InstagramInput,
  credentials: CREDENTIALS,
  cases: [
    stale('a correctly signed delivery from 2023', deliveryAt(Date.parse('2023-03-14T09:26:53.589Z'), 'aWdfZAG1_2023')),
    stale("a delivery 37 h old (past Meta's 36 h of retries)", deliveryAt(NOW - 37 * HOUR, 'aWdfZAG1_37h')),
    fresh('a delivery 35 h old (a late retry by Meta)', deliveryAt(NOW - 35 * HOUR, 'aWdfZAG1_35h')),
    stale('entry.time 10 minutes in the future', deliveryAt(NOW + 10 * 60_000, 'aWdfZAG1_future')),
    stale('an entry without time', { object: 'instagram', entry: [{ id: IGID, messaging: [textEvent('no time', 'aWdfZAG1_notime')] }] }),
  ],
});

runChannelCases(test, {
  channel: InstagramInput,
  credentials: { ...CREDENTIALS, replay_window: 0 },
  cases: [fresh('replay_window: 0 turns the check off: a delivery from 2023', deliveryAt(Date.parse('2023-03-14T09:26:53.589Z'), 'aWdfZAG1_2023_off'))],
});

// --- credentials

test('instagram: a section without secret is refused, saying why and how to opt out', (t) => {
  const error = t.throws(() => InstagramInput.fromCredentials({ verify: VERIFY, 'page-access-token': PAGE_TOKEN, instagram_account_id: IGID }));
  t.regex(error?.message ?? '', /^missing "secret", needed to verify that requests come from the platform \(or set allow_unverified: true/);
});

test('instagram: verify, page-access-token and instagram_account_id are required, by name', (t) => {
  t.is(t.throws(() => InstagramInput.fromCredentials({ secret: APP_SECRET, 'page-access-token': PAGE_TOKEN, instagram_account_id: IGID }))?.message, 'missing "verify"');
  t.is(t.throws(() => InstagramInput.fromCredentials({ secret: APP_SECRET, verify: VERIFY, instagram_account_id: IGID }))?.message, 'missing "page-access-token"');
  t.is(t.throws(() => InstagramInput.fromCredentials({ secret: APP_SECRET, verify: VERIFY, 'page-access-token': PAGE_TOKEN }))?.message, 'missing "instagram_account_id"');
  t.regex(t.throws(() => InstagramInput.fromCredentials({ ...CREDENTIALS, instagram_account_id: '@mybrand' }))?.message ?? '', /^"instagram_account_id": must be the numeric id/);
});

test('instagram: an unquoted 17-digit account id (a YAML number, already rounded) is refused, saying to quote it', async (t) => {
  const { parseCredentialsText, loadChannels } = await import('switchboard');
  const yaml = (id: string) => `instagram: {verify: v, secret: s, page-access-token: p, instagram_account_id: ${id}}`;
  const error = await t.throwsAsync(() => loadChannels(parseCredentialsText(yaml(IGID), 'credentials.yml', {}), []));
  t.regex(error?.message ?? '', /"instagram_account_id": is a number too long for YAML to read exactly: put it in quotes/);
  const [quoted] = await loadChannels(parseCredentialsText(yaml(`"${IGID}"`), 'credentials.yml', {}), []);
  t.is((quoted as InstagramInput).credentials.instagram_account_id, IGID);
  t.is(InstagramInput.fromCredentials({ ...CREDENTIALS, instagram_account_id: 12345 }).credentials.instagram_account_id, '12345');
});

test('instagram: defaults, a numeric account id from YAML, and a malformed graph_version', (t) => {
  const channel = InstagramInput.fromCredentials(CREDENTIALS);
  t.like(channel.credentials, { graph_version: 'v21.0', api_url: 'https://graph.facebook.com', typing_indicator: true, replay_window: 129600 });
  t.false(channel.unverified);
  t.regex(t.throws(() => InstagramInput.fromCredentials({ ...CREDENTIALS, graph_version: '21' }))?.message ?? '', /^"graph_version": must look like v21.0/);
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
      return status === 200 ? { recipient_id: IGSID } : graphError(190, 'Invalid OAuth access token.');
    });
}

async function deliver(request: (path: string, init?: RequestInit) => Promise<{ status: number; text: string }>, body: object) {
  const raw = JSON.stringify(body);
  return request('/webhooks/instagram/webhook', { method: 'POST', headers: { 'content-type': 'application/json', ...sign(raw) }, body: raw });
}

async function until(check: () => boolean, timeoutMs = 3_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
}

test.serial('instagram: a slow bot gets typing_on before its answer; Meta got success before the bot finished', async (t) => {
  nock.disableNetConnect();
  nock.enableNetConnect('127.0.0.1');
  t.teardown(() => nock.cleanAll());
  const calls: unknown[] = [];
  recordSendApi(calls);
  const { request } = await startServer(t, [InstagramInput.fromCredentials(CREDENTIALS)], { bot: slowBot(700) });
  const started = Date.now();
  const response = await deliver(request, delivery(textEvent('think hard', 'aWdfZAG1_slow')));
  t.is(response.status, 200);
  t.is(response.text, 'success');
  t.true(Date.now() - started < 500, 'acknowledged before the bot answered');
  await until(() => calls.length >= 2);
  t.deepEqual(calls, [
    { recipient: { id: IGSID }, sender_action: 'typing_on' },
    { recipient: { id: IGSID }, messaging_type: 'RESPONSE', message: { text: 'done thinking' } },
  ]);
});

test.serial('instagram: typing_indicator: false sends no sender action', async (t) => {
  nock.disableNetConnect();
  nock.enableNetConnect('127.0.0.1');
  t.teardown(() => nock.cleanAll());
  const calls: unknown[] = [];
  recordSendApi(calls);
  const { request } = await startServer(t, [InstagramInput.fromCredentials({ ...CREDENTIALS, typing_indicator: false })], { bot: slowBot(700) });
  await deliver(request, delivery(textEvent('think hard', 'aWdfZAG1_slow_quiet')));
  await until(() => calls.length >= 1);
  await new Promise((resolve) => setTimeout(resolve, 50));
  t.deepEqual(calls, [{ recipient: { id: IGSID }, messaging_type: 'RESPONSE', message: { text: 'done thinking' } }]);
});

test.serial('instagram: a failed Send API call is logged with the recipient, never with the Page token or app secret', async (t) => {
  nock.disableNetConnect();
  nock.enableNetConnect('127.0.0.1');
  t.teardown(() => nock.cleanAll());
  const calls: unknown[] = [];
  recordSendApi(calls, 400);
  const { request, logs } = await startServer(t, [InstagramInput.fromCredentials(CREDENTIALS)], { bot: new ScriptedBot([{ text: 'hi' }]) });
  await deliver(request, delivery(textEvent('hello', 'aWdfZAG1_badtoken')));
  await until(() => logs.text.includes('sending an answer failed'));
  t.is(calls.length, 1, 'a 400 is not retried');
  t.regex(logs.text, new RegExp(IGSID));
  t.false(logs.text.includes(PAGE_TOKEN), 'the Page token is not in the logs');
  t.false(logs.text.includes(APP_SECRET), 'the app secret is not in the logs');
});

test('instagram: the reply address is the sender alone, and holds no secret', async (t) => {
  const bot = new ScriptedBot([]);
  const { request } = await startServer(t, [InstagramInput.fromCredentials(CREDENTIALS)], { bot });
  await deliver(request, delivery(textEvent('address', 'aWdfZAG1_address')));
  await bot.waitFor(1);
  t.deepEqual(bot.received[0]!.replyTo, { recipient_id: IGSID });
  const data = JSON.stringify(bot.received[0]);
  t.false(data.includes(PAGE_TOKEN));
  t.false(data.includes(APP_SECRET));
});

// --- the pure parts

test('instagram verifySignature: reasons, never throws', (t) => {
  const raw = '{"object":"instagram"}';
  t.true(verifySignature(raw, sign(raw), APP_SECRET));
  t.true(verifySignature(Buffer.from(raw), sign(raw), APP_SECRET));
  t.is(verifySignature(raw, {}, APP_SECRET), 'missing X-Hub-Signature-256 header');
  t.is(verifySignature(raw, sign1(raw), APP_SECRET), 'missing X-Hub-Signature-256 header');
  t.is(verifySignature(raw, { 'x-hub-signature-256': 'sha256=zz' }, APP_SECRET), 'X-Hub-Signature-256 does not match the body');
  t.is(verifySignature(raw, sign(raw), undefined), 'no app secret configured');
});

test('instagram checkDeliveryTime: every entry.time within the window', (t) => {
  t.true(checkDeliveryTime(delivery(), 60, NOW + 1000));
  t.regex(String(checkDeliveryTime(delivery(), 60, NOW + 120_000)), /^entry\.time: timestamp is 120 s old/);
  t.true(checkDeliveryTime({ object: 'instagram' }, 0, NOW));
});

test('instagram parseDelivery: messages in order, ignored events with their reason', (t) => {
  const parsed = parseDelivery(
    delivery(textEvent('a', 'm_a'), event({ read: { mid: 'm_a' } }), { sender: { id: IGID }, recipient: { id: IGSID }, message: { is_echo: true, mid: 'm_e', text: 'x' } }),
    IGID,
  );
  t.deepEqual(parsed.messages.map((m) => m.text), ['a']);
  t.deepEqual(parsed.ignored.map((i) => i.reason), ['read receipt', 'echo of a message the account sent']);
  t.deepEqual(parseDelivery(null, IGID), { messages: [], ignored: [{ reason: 'not an Instagram delivery (object: object)' }] });
  t.deepEqual(parseDelivery({ object: 'instagram', entry: [{ id: OTHER_IGID, time: NOW, messaging: [textEvent('b', 'm_b')] }] }, IGID).ignored, [{ reason: `for Instagram account ${OTHER_IGID}, not ${IGID}` }]);
  t.deepEqual(parseDelivery({ object: 'instagram', entry: [{ id: IGID, changes: [] }] }, IGID).ignored, [{ reason: 'entry without messaging events' }]);
});

test('instagram splitText: over 1000 characters splits at a space, never halving an emoji', (t) => {
  const words = Array.from({ length: 300 }, () => 'word').join(' ');
  const parts = splitText(words);
  t.is(parts.length, 2);
  t.true(parts.every((p) => p.length <= 1000));
  t.is(parts.join(' '), words);
  t.deepEqual(splitText('x'.repeat(1001)), ['x'.repeat(1000), 'x']);
  t.deepEqual(splitText(`${'x'.repeat(999)}\u{1F600}`), ['x'.repeat(999), '\u{1F600}']);
});
