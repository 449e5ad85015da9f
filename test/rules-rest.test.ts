// Every answer kind a bot.yml can declare, through the rest channel, as a Rasa client sees it.
import test from 'ava';
import RestInput from '../channels/rest/index.js';
import { RulesBot } from '#src/bots/rules.js';
import { startServer } from './harness.js';

const BOT = `
intents:
  show_all:
    examples: [show me everything]
    answers:
      - text: "Plain text"
      - text: "Pick one"
        buttons:
          - {title: "One", payload: "/one"}
          - {title: "Two", payload: "/two"}
      - text: "Quick?"
        quick_replies:
          - {title: "Yes", payload: "/yes"}
      - image: "https://example.com/cat.png"
      - elements:
          - title: "Card"
            subtitle: "A card"
            image_url: "https://example.com/card.png"
            buttons:
              - {title: "Open", payload: "/open"}
      - attachment: {type: file, url: "https://example.com/doc.pdf"}
      - custom: {kind: "map", lat: 52.5, lng: 13.4}
  one:
    answers:
      - text: "You picked one"
  two:
    answers:
      - text: "You picked two"
  yes:
    answers:
      - text: "Yes!"
  open:
    answers:
      - text: "Opened"
fallback:
  - text: "Fallback"
`;

test('every answer kind of a rules bot comes back through the rest channel in Rasa shape', async (t) => {
  const bot = RulesBot.fromYaml(BOT, 'bot.yml');
  const { request } = await startServer(t, [RestInput.fromCredentials({})], { bot: bot as never });
  const response = await request('/webhooks/rest/webhook', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ sender: 'u', message: 'Show me EVERYTHING!' }),
  });
  t.is(response.status, 200);
  t.deepEqual(response.json, [
    { recipient_id: 'u', text: 'Plain text' },
    { recipient_id: 'u', text: 'Pick one', buttons: [{ title: 'One', payload: '/one' }, { title: 'Two', payload: '/two' }] },
    { recipient_id: 'u', text: 'Quick?', buttons: [{ title: 'Yes', payload: '/yes' }] },
    { recipient_id: 'u', image: 'https://example.com/cat.png' },
    { recipient_id: 'u', text: 'Card : A card', buttons: [{ title: 'Open', payload: '/open' }] },
    { recipient_id: 'u', attachment: { type: 'file', url: 'https://example.com/doc.pdf' } },
    { recipient_id: 'u', custom: { kind: 'map', lat: 52.5, lng: 13.4 } },
  ]);
  const picked = await request('/webhooks/rest/webhook', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ sender: 'u', message: '/two' }),
  });
  t.deepEqual(picked.json, [{ recipient_id: 'u', text: 'You picked two' }]);
});
