// Bad input never gets a 500: every built-in channel, with verification off so that random bodies reach its parser,
// takes random JSON, forms and text. fast-check with a fixed seed, so a failure reproduces.
import test from 'ava';
import fc from 'fast-check';
import { loadChannels } from '#src/loader.js';
import { parseCredentialsText } from '#src/credentials.js';
import { startFakePlatform, startTestHost } from 'switchboard/testing';

test('random webhook bodies never produce a 500 or a stack trace, on any channel', async (t) => {
  const platform = await startFakePlatform();
  t.teardown(() => platform.close());
  const api = platform.url;
  const yaml = `
facebook: {verify: v, page-access-token: p, allow_unverified: true, api_url: "${api}"}
slack: {slack_token: xoxb-1, allow_unverified: true, api_url: "${api}"}
telegram: {access_token: "1:a", verify: bot, webhook_url: "https://x.example/w", allow_unverified: true, api_url: "${api}"}
twilio: {account_sid: AC00000000000000000000000000000000, auth_token: t, twilio_number: "+15005550006", allow_unverified: true, api_url: "${api}"}
mattermost: {url: "${api}/api/v4", token: t, webhook_url: "https://x.example/w", allow_unverified: true}
rocketchat: {user: bot, password: p, server_url: "${api}", allow_unverified: true}
webexteams: {access_token: t, allow_unverified: true, api_url: "${api}"}
botframework: {app_id: a, app_password: p, allow_unverified: true, api_url: "${api}", token_url: "${api}/token", openid_metadata: "${api}/openid"}
rest:
callback: {url: "${api}/callback"}
`;
  const channels = await loadChannels(parseCredentialsText(yaml, 'fuzz.yml', {}), []);
  const host = await startTestHost(channels, { answers: [{ text: 'ok', buttons: [{ title: 'b', payload: '/b' }] }] });
  t.teardown(() => host.close());
  const names = channels.map((c) => c.name());

  const jsonish = fc.oneof(
    fc.json(),
    fc.jsonValue().map((v) => JSON.stringify(v)),
    fc.dictionary(fc.constantFrom('type', 'event', 'entry', 'message', 'update_id', 'data', 'payload', 'sender', 'text', 'callback_query', 'messages', 'visitor', 'from', 'conversation', 'token', 'challenge', 'object'), fc.jsonValue()).map((v) => JSON.stringify(v)),
  );
  const request = fc.record({
    channel: fc.constantFrom(...names),
    type: fc.constantFrom('application/json', 'application/x-www-form-urlencoded', 'text/plain'),
    body: fc.oneof(jsonish, fc.string(), fc.string().map((s) => `payload=${encodeURIComponent(s)}`), fc.dictionary(fc.string(), fc.string()).map((d) => new URLSearchParams(d).toString())),
  });

  await fc.assert(
    fc.asyncProperty(request, async ({ channel, type, body }) => {
      const response = await host.post(channel, body, { headers: { 'content-type': type } });
      if (response.status >= 500) throw new Error(`${channel} answered ${response.status} to ${type} ${JSON.stringify(body).slice(0, 200)}: ${response.text}`);
      if (/\n\s+at /.test(response.text)) throw new Error(`${channel} leaked a stack trace`);
    }),
    { seed: 20261125, numRuns: 1500 },
  );
  const crashes = host.logs.lines.filter((line) => /unexpected error while handling a request/.test(line));
  t.deepEqual(crashes, []);
  t.is((await host.request('/health')).status, 200);
});
