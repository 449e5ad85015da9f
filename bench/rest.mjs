#!/usr/bin/env node
// Throughput of the rest channel, as a ratio against a baseline measured in the same run: a bare node:http server
// answering the same JSON. Loopback only, bounded in time. Usage: npm run bench [-- --seconds 10 --connections 50]
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { SwitchboardServer, loadChannels } from 'switchboard';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '8' }, connections: { type: 'string', default: '50' } } });
const duration = Number(values.seconds);
const connections = Number(values.connections);
const body = JSON.stringify({ sender: 'bench', message: 'hello' });

async function measure(url, senders) {
  let i = 0;
  const result = await autocannon({
    url,
    connections,
    duration,
    requests: [
      {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        // Many senders, so per-sender ordering does not serialise the whole run.
        setupRequest: (req) => ({ ...req, body: senders ? JSON.stringify({ sender: `u${i++ % 1000}`, message: 'hello' }) : body }),
      },
    ],
  });
  return { rps: result.requests.average, p99: result.latency.p99, errors: result.errors + result.non2xx };
}

const baseline = createServer((req, res) => {
  let raw = '';
  req.on('data', (c) => (raw += c));
  req.on('end', () => {
    const { sender } = JSON.parse(raw);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify([{ recipient_id: sender, text: 'Hey! How are you?' }]));
  });
});
await new Promise((r) => baseline.listen(0, '127.0.0.1', r));
const base = await measure(`http://127.0.0.1:${baseline.address().port}/`, true);
baseline.close();

const channels = await loadChannels([], ['rest']);
const bot = { handle: async () => [{ text: 'Hey! How are you?' }] };
const server = new SwitchboardServer({ channels, bot });
const address = await server.listen(0, '127.0.0.1');
const memBefore = process.memoryUsage().rss;
const sb = await measure(`http://127.0.0.1:${address.port}/webhooks/rest/webhook`, true);
const memAfter = process.memoryUsage().rss;
await server.close();

const row = (name, r) => `${name.padEnd(22)} ${String(Math.round(r.rps)).padStart(8)} req/s   p99 ${String(r.p99).padStart(4)} ms   errors ${r.errors}`;
process.stdout.write(
  [
    `rest channel, ${connections} connections, ${duration} s each, loopback`,
    row('baseline node:http', base),
    row('switchboard rest', sb),
    `ratio switchboard/baseline: ${(sb.rps / base.rps).toFixed(2)}`,
    `rss during run: ${(memBefore / 2 ** 20).toFixed(0)} → ${(memAfter / 2 ** 20).toFixed(0)} MiB`,
    '',
  ].join('\n'),
);
