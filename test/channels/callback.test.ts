import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import CallbackInput from '../../channels/callback/index.js';
import { runChannelCases } from '../harness.js';

const URL_ = 'https://bot-client.example.com/answers';

runChannelCases(test, {
  channel: CallbackInput,
  credentials: { url: URL_ },
  cases: [
    {
      label: 'callback: answers success at once, then POSTs the reply as one JSON array',
      roundTrip: true,
      body: { sender: 'alice', message: 'hello' },
      answers: [{ text: 'Hey!' }, { image: 'https://i.imgur.com/nGF1K8f.jpg' }],
      status: 200,
      response: 'success',
      outgoing: [
        {
          url: URL_,
          headers: { 'content-type': 'application/json' },
          body: [
            { recipient_id: 'alice', text: 'Hey!' },
            { recipient_id: 'alice', image: 'https://i.imgur.com/nGF1K8f.jpg' },
          ],
        },
      ],
      received: [{ text: 'hello', senderId: 'alice', inputChannel: 'callback' }],
    },
    {
      label: 'callback: a 503 from the receiver is retried, and the second delivery is the same array',
      body: { sender: 'bob', message: 'hi' },
      answers: [{ text: 'one' }],
      status: 200,
      response: 'success',
      outgoing: [
        { url: URL_, body: [{ recipient_id: 'bob', text: 'one' }], reply: { status: 503, body: 'busy' } },
        { url: URL_, body: [{ recipient_id: 'bob', text: 'one' }] },
      ],
    },
    {
      label: 'callback: a bot with no answer posts nothing',
      body: { sender: 'c', message: 'hi' },
      answers: [],
      status: 200,
      response: 'success',
      received: [{ text: 'hi' }],
      outgoing: [],
    },
    {
      label: 'callback: a numeric sender is accepted, as by rest, and posted back as a string',
      roundTrip: true,
      body: { sender: 7000100004, message: 'hi', metadata: { page: 'x' }, input_channel: 'kiosk' },
      answers: [{ text: 'a \n\n b ' }],
      status: 200,
      response: 'success',
      // input_channel from an unauthenticated request is ignored (see rest-auth.test.ts).
      received: [{ text: 'hi', senderId: '7000100004', inputChannel: 'callback', metadata: { page: 'x' } }],
      outgoing: [{ url: URL_, body: [{ recipient_id: '7000100004', text: 'a ' }, { recipient_id: '7000100004', text: ' b' }] }],
    },
    {
      label: 'callback: a boolean sender is the same clear 400 as rest gives',
      body: { sender: false, message: 'hi' },
      status: 400,
      response: { error: '"sender" must be a non-empty string or a whole number' },
      received: [],
      outgoing: [],
    },
    {
      label: 'callback: a bad request is a 400 and reaches neither the bot nor the receiver',
      body: { sender: 'c' },
      status: 400,
      response: { error: 'missing "message": the text the user sent' },
      received: [],
      outgoing: [],
    },
  ],
});

runChannelCases(test, {
  channel: CallbackInput,
  credentials: { url: URL_, batch: false, headers: { 'x-api-key': 'k1' }, params: { source: 'sb' }, token: 'tok-123' },
  cases: [
    {
      label: 'callback batch: false POSTs each answer as its own object, in order, with headers and query',
      body: { sender: 'dora', message: 'hello' },
      answers: [{ text: 'first' }, { text: 'second', buttons: [{ title: 'ok', payload: '/ok' }] }],
      status: 200,
      response: 'success',
      outgoing: [
        { url: URL_, query: { source: 'sb', token: 'tok-123' }, headers: { 'x-api-key': 'k1' }, body: { recipient_id: 'dora', text: 'first' } },
        {
          url: URL_,
          query: { source: 'sb', token: 'tok-123' },
          body: { recipient_id: 'dora', text: 'second', buttons: [{ title: 'ok', payload: '/ok' }] },
        },
      ],
    },
  ],
});

runChannelCases(test, {
  channel: CallbackInput,
  credentials: { url: URL_, basic_auth: { username: 'user', password: 'pw' } },
  cases: [
    {
      label: 'callback: basic_auth is sent with each POST',
      body: { sender: 'e', message: 'hello' },
      answers: [{ text: 'x' }],
      status: 200,
      outgoing: [{ url: URL_, headers: { authorization: `Basic ${Buffer.from('user:pw').toString('base64')}` }, body: [{ recipient_id: 'e', text: 'x' }] }],
    },
  ],
});

test('callback: a section without url is refused, naming the key', (t) => {
  const error = t.throws(() => CallbackInput.fromCredentials({}));
  t.is(error?.message, 'missing "url"');
});

test('callback: a url that is not http(s) is refused', (t) => {
  const error = t.throws(() => CallbackInput.fromCredentials({ url: 'ftp://x' }));
  t.regex(error?.message ?? '', /^"url": /);
});

test('no channel reaches into a sibling folder: callback reads Rasa\'s request through the public API, as a package would', async (t) => {
  const root = join(process.cwd(), 'channels');
  const offenders: string[] = [];
  for (const folder of await readdir(root, { withFileTypes: true })) {
    if (!folder.isDirectory()) continue;
    for (const file of await readdir(join(root, folder.name))) {
      if (!file.endsWith('.ts')) continue;
      const source = await readFile(join(root, folder.name, file), 'utf8');
      for (const match of source.matchAll(/from\s+'(\.\.\/[^']*)'/g)) offenders.push(`${folder.name}/${file}: ${match[1]}`);
    }
  }
  t.deepEqual(offenders, []);
  const callback = await readFile(join(root, 'callback', 'index.ts'), 'utf8');
  t.regex(callback, /restRequest/);
});

test('parseRestRequest is public: the shape rest and callback read, for third-party channels', async (t) => {
  const { parseRestRequest } = await import('switchboard');
  t.deepEqual(parseRestRequest({ sender: 42, message: 'hi', metadata: { a: 1 }, input_channel: 'web' }), {
    sender: '42',
    message: 'hi',
    metadata: { a: 1 },
    inputChannel: 'web',
  });
  t.is(parseRestRequest({ sender: 'a' }), 'missing "message": the text the user sent');
});
