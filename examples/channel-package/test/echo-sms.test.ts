// The package's own tests, with node's test runner and switchboard/testing: no ava, no nock.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hmac } from 'switchboard';
import { conformance, startFakePlatform, startTestHost } from 'switchboard/testing';
import { EchoSmsInput } from 'switchboard-channel-echo-sms';

const WEBHOOK_SECRET = 'whsec-example';
const sign = (raw: string) => ({ 'x-echosms-signature': `sha256=${hmac('sha256', WEBHOOK_SECRET, raw)}` });
const inbound = { id: 'msg-1', from: '+15550001111', to: '+15550009999', text: 'hello' };

test('EchoSmsInput passes the Switchboard conformance checks', async () => {
  const report = await conformance(EchoSmsInput, {
    credentials: { api_key: 'key-1', webhook_secret: WEBHOOK_SECRET, number: '+15550009999' },
    validRequest: { body: inbound },
    sign,
  });
  assert.equal(report.ok, true);
});

test('a signed SMS reaches the bot and the answer is sent through the API', async (t) => {
  const platform = await startFakePlatform();
  const channel = EchoSmsInput.fromCredentials({ api_key: 'key-1', webhook_secret: WEBHOOK_SECRET, number: '+15550009999', api_url: platform.url });
  const host = await startTestHost(channel, { answers: [{ text: 'Hi there!' }] });
  t.after(async () => {
    await host.close();
    await platform.close();
  });
  const raw = JSON.stringify(inbound);
  const response = await host.post('echosms', raw, { headers: { 'content-type': 'application/json', ...sign(raw) } });
  assert.equal(response.status, 200);
  const [message] = await host.bot.waitForMessages(1);
  assert.equal(message!.text, 'hello');
  assert.equal(message!.senderId, '+15550001111');
  for (let i = 0; i < 100 && platform.requests.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(platform.requests.length, 1);
  assert.equal(platform.requests[0]!.path, '/v1/messages');
  assert.equal(platform.requests[0]!.headers.authorization, 'Bearer key-1');
  assert.deepEqual(JSON.parse(platform.requests[0]!.body), { from: '+15550009999', to: '+15550001111', text: 'Hi there!' });
});

test('an unsigned SMS is refused with 401 and never reaches the bot', async (t) => {
  const channel = EchoSmsInput.fromCredentials({ api_key: 'key-1', webhook_secret: WEBHOOK_SECRET, number: '+15550009999' });
  const host = await startTestHost(channel);
  t.after(() => host.close());
  const response = await host.post('echosms', inbound);
  assert.equal(response.status, 401);
  assert.equal(host.received.length, 0);
});
