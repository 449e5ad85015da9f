#!/usr/bin/env node
// Soak: the real CLI (a child process, the moodbot) driven at a fixed rate for a set time through the rest channel
// and a signed Telegram webhook, Telegram's API being a local stub. Reports errors, latency p50/p99 per route, the
// answers the stub received against the updates acknowledged, and the server's RSS after the warm-up and at the end.
// Usage: npm run soak [-- --seconds 60 --rate 50 --warmup 15]   (rate: requests a second on each route)
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '60' },
    rate: { type: 'string', default: '50' },
    warmup: { type: 'string', default: '15' },
    senders: { type: 'string', default: '200' },
  },
});
const seconds = Number(values.seconds);
const rate = Number(values.rate);
const warmup = Number(values.warmup);
const senders = Number(values.senders);
for (const [name, value] of Object.entries({ seconds, rate, warmup, senders })) {
  if (!Number.isFinite(value) || value < 0 || (name !== 'warmup' && value === 0)) {
    process.stderr.write(`soak: --${name} must be a positive number\n`);
    process.exit(2);
  }
}

const RUN = fileURLToPath(new URL('../dist/run.js', import.meta.url));
const SECRET = 'soak-secret-token';

// The stub Telegram Bot API: every method answers ok; sendMessage calls are counted (the bot's answers).
let answers = 0;
const stub = createServer((req, res) => {
  let raw = '';
  req.on('data', (chunk) => (raw += chunk));
  req.on('end', () => {
    if (req.url?.endsWith('/sendMessage')) answers += 1;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ ok: true, result: req.url?.endsWith('/getMe') ? { id: 1, is_bot: true, first_name: 'soak', username: 'soakbot' } : true }));
  });
});
stub.listen(0, '127.0.0.1');
await once(stub, 'listening');

const dir = mkdtempSync(path.join(tmpdir(), 'switchboard-soak-'));
const credentials = path.join(dir, 'credentials.yml');
writeFileSync(
  credentials,
  [
    'rest:',
    'telegram:',
    '  access_token: "123456:soak"',
    '  verify: soakbot',
    '  webhook_url: https://soak.example/webhooks/telegram/webhook',
    `  secret_token: ${SECRET}`,
    `  api_url: http://127.0.0.1:${stub.address().port}`,
    '',
  ].join('\n'),
  { mode: 0o600 },
);

const child = spawn(process.execPath, [RUN, '--credentials', credentials, '--port', '0', '--host', '127.0.0.1', '--log-level', 'warn'], {
  stdio: ['ignore', 'pipe', 'pipe'],
});
let printed = '';
let stderr = '';
child.stdout.on('data', (chunk) => (printed += chunk));
child.stderr.on('data', (chunk) => (stderr += chunk));
const base = await new Promise((resolve, reject) => {
  const timer = setTimeout(() => reject(new Error(`the server did not start:\n${stderr}`)), 20_000);
  child.stdout.on('data', () => {
    const match = /listening on (http:\/\/\S+)/.exec(printed);
    if (match) {
      clearTimeout(timer);
      resolve(match[1]);
    }
  });
  child.once('exit', (code) => reject(new Error(`the server exited (${code}):\n${stderr}`)));
});

/** The server's resident set size in MiB, from /proc (Linux) or ps. */
function rss() {
  try {
    const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
    return Number(/VmRSS:\s+(\d+)/.exec(status)[1]) / 1024;
  } catch {
    return Number.NaN;
  }
}

/** The server's used V8 heap in MiB, from its /metrics (Node's default metrics); NaN without metrics. */
async function heapUsed() {
  try {
    const text = await (await fetch(`${base}/metrics`)).text();
    return Number(/^nodejs_heap_size_used_bytes (\S+)/m.exec(text)[1]) / 2 ** 20;
  } catch {
    return Number.NaN;
  }
}

function newStats() {
  return { sent: 0, ok: 0, errors: 0, statuses: {}, latencies: [] };
}

let updateId = 1;
const routes = {
  rest: (i) => ({
    url: `${base}/webhooks/rest/webhook`,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ sender: `soak-${i % senders}`, message: i % 2 ? 'hello' : 'I am sad' }),
  }),
  telegram: (i) => ({
    url: `${base}/webhooks/telegram/webhook`,
    headers: { 'content-type': 'application/json', 'x-telegram-bot-api-secret-token': SECRET },
    body: JSON.stringify({
      update_id: updateId++,
      message: {
        message_id: i,
        from: { id: 1000 + (i % senders), is_bot: false, first_name: 'Soak' },
        chat: { id: 1000 + (i % senders), type: 'private', first_name: 'Soak' },
        date: Math.floor(Date.now() / 1000),
        text: 'hello',
      },
    }),
  }),
};

/** Sends `rate` requests a second on every route for `duration` seconds, each timed; waits for the last. */
async function drive(duration, stats) {
  const pending = new Set();
  const started = performance.now();
  let tick = 0;
  await new Promise((resolve) => {
    const timer = setInterval(() => {
      // Catch up to where the clock says we should be, so a slow tick does not lower the rate.
      const due = Math.floor(((performance.now() - started) / 1000) * rate);
      for (; tick < due; tick++) {
        for (const [name, make] of Object.entries(routes)) {
          const request = make(tick);
          const s = stats[name];
          s.sent += 1;
          const at = performance.now();
          const done = fetch(request.url, { method: 'POST', headers: request.headers, body: request.body })
            .then(async (response) => {
              await response.arrayBuffer();
              s.latencies.push(performance.now() - at);
              s.statuses[response.status] = (s.statuses[response.status] ?? 0) + 1;
              if (response.ok) s.ok += 1;
              else s.errors += 1;
            })
            .catch(() => {
              s.errors += 1;
              s.statuses.network = (s.statuses.network ?? 0) + 1;
            })
            .finally(() => pending.delete(done));
          pending.add(done);
        }
      }
      if (performance.now() - started >= duration * 1000) {
        clearInterval(timer);
        resolve();
      }
    }, 5);
  });
  await Promise.all(pending);
}

function percentile(sorted, p) {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

if (warmup > 0) await drive(warmup, { rest: newStats(), telegram: newStats() });
await new Promise((resolve) => setTimeout(resolve, 500));
const answersBefore = answers;
const rssStart = rss();
const heapStart = await heapUsed();
const stats = { rest: newStats(), telegram: newStats() };
await drive(seconds, stats);
// The Telegram answers are sent after the acknowledgement: give the last ones a moment.
const deadline = Date.now() + 10_000;
while (answers - answersBefore < stats.telegram.ok && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
const rssEnd = rss();
const heapEnd = await heapUsed();

child.kill('SIGTERM');
const [code] = await once(child, 'close');
stub.close();
rmSync(dir, { recursive: true, force: true });

const lines = [`soak: ${seconds} s at ${rate} req/s per route (after ${warmup} s of warm-up), ${senders} senders, the moodbot`];
let errors = 0;
for (const [name, s] of Object.entries(stats)) {
  const sorted = s.latencies.sort((a, b) => a - b);
  errors += s.errors;
  lines.push(
    `${name.padEnd(9)} sent ${s.sent}  ok ${s.ok}  errors ${s.errors}  p50 ${percentile(sorted, 50).toFixed(1)} ms  p99 ${percentile(sorted, 99).toFixed(1)} ms  statuses ${JSON.stringify(s.statuses)}`,
  );
}
const delivered = answers - answersBefore;
lines.push(`telegram  answers the stub received: ${delivered} for ${stats.telegram.ok} updates acknowledged`);
const growth = ((rssEnd - rssStart) / rssStart) * 100;
lines.push(`rss       ${rssStart.toFixed(1)} MiB after warm-up → ${rssEnd.toFixed(1)} MiB at the end (${growth >= 0 ? '+' : ''}${growth.toFixed(1)} %)`);
lines.push(`heap      ${heapStart.toFixed(1)} MiB used after warm-up → ${heapEnd.toFixed(1)} MiB at the end`);
lines.push(`exit      the server stopped on SIGTERM with code ${code}`);
process.stdout.write(`${lines.join('\n')}\n`);
// Failing runs say so in the exit code, for scripts: errors, lost answers, or an unclean stop.
process.exitCode = errors > 0 || delivered < stats.telegram.ok || code !== 0 ? 1 : 0;
