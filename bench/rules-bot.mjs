#!/usr/bin/env node
// What the built-in moodbot costs per message (issue 17: "the moodbot must not cost more than a bare Koa request").
// 1. handle(): N calls of RulesBot.handle on a mix of messages, CPU µs per call (process.cpuUsage).
// 2. HTTP: the rest channel + moodbot against bare Koa + koa-bodyparser answering the same JSON, each server in its
//    own process, interleaved rounds of autocannon; req/s and server CPU per request (from /proc/<pid>/stat).
// Not a unit test: numbers vary with the machine and its load. Build first (`npx tsc -b`).
// Usage: node bench/rules-bot.mjs [--calls 200000] [--rounds 3] [--seconds 5] [--connections 32] [--skip-http]
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';

const { values } = parseArgs({
  options: {
    calls: { type: 'string', default: '200000' },
    rounds: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '5' },
    connections: { type: 'string', default: '32' },
    'skip-http': { type: 'boolean', default: false },
    serve: { type: 'string' },
  },
});

const TEXTS = ['hello', 'I am sad', 'are you a bot?', 'what is the weather like in Paris today?', '/mood_great', 'goodbye'];

async function serve(kind) {
  let listen;
  if (kind === 'koa') {
    const { default: Koa } = await import('koa');
    const { default: bodyParser } = await import('koa-bodyparser');
    const app = new Koa();
    app.use(bodyParser());
    app.use((ctx) => {
      if (ctx.method !== 'POST' || ctx.path !== '/webhooks/rest/webhook') return;
      ctx.body = [{ recipient_id: ctx.request.body.sender, text: 'Hey! How are you?' }];
    });
    listen = () => new Promise((resolve) => { const s = app.listen(0, '127.0.0.1', () => resolve(s.address().port)); });
  } else {
    const { SwitchboardServer, loadChannels } = await import('switchboard');
    const { loadBot } = await import('../dist/bots/index.js');
    // `rest-constant`: the same host with a bot that answers without looking, to tell the bot's cost from the host's.
    const bot = kind === 'rest-constant' ? { handle: async () => [{ text: 'Hey! How are you?' }] } : await loadBot(undefined);
    const server = new SwitchboardServer({ channels: await loadChannels([], ['rest']), bot });
    listen = async () => (await server.listen(0, '127.0.0.1')).port;
  }
  process.stdout.write(`${await listen()}\n`);
}

function cpuMsOf(pid) {
  // /proc/<pid>/stat: utime and stime are fields 14 and 15, in clock ticks (100 per second on Linux).
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
}

async function start(kind) {
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), '--serve', kind], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise((resolve, reject) => {
    child.stdout.once('data', (chunk) => {
      child.stdout.resume(); // never let a full pipe block the server
      resolve(Number(String(chunk).trim()));
    });
    child.once('exit', (code) => reject(new Error(`${kind} server exited with ${code}`)));
  });
  return { child, port };
}

async function load(port, seconds) {
  const { default: autocannon } = await import('autocannon');
  let i = 0;
  const result = await autocannon({
    url: `http://127.0.0.1:${port}/webhooks/rest/webhook`,
    connections: Number(values.connections),
    duration: seconds,
    requests: [{
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      setupRequest: (req) => ({ ...req, body: JSON.stringify({ sender: `u${i % 1000}`, message: TEXTS[i++ % TEXTS.length] }) }),
    }],
  });
  return { rps: result.requests.average, total: result.requests.total, errors: result.errors + result.non2xx };
}

async function measureServer(kind, seconds) {
  const { child, port } = await start(kind);
  await load(port, 1); // warm-up
  const before = cpuMsOf(child.pid);
  const r = await load(port, seconds);
  const cpuMs = cpuMsOf(child.pid) - before;
  child.kill('SIGKILL');
  return { ...r, cpuUsPerRequest: (cpuMs * 1000) / r.total };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main() {
  const { RulesBot, defaultBotPath } = await import('../dist/bots/rules.js');
  const { UserMessage } = await import('../dist/message.js');
  const bot = RulesBot.fromFile(defaultBotPath());
  const messages = TEXTS.map((text) => new UserMessage({ text, senderId: 'bench' }));
  const calls = Number(values.calls);
  const rounds = Number(values.rounds);
  const run = async (n) => {
    const start = process.cpuUsage();
    for (let i = 0; i < n; i += 1) await bot.handle(messages[i % messages.length]);
    const used = process.cpuUsage(start);
    return (used.user + used.system) / n;
  };
  await run(Math.min(calls, 20000)); // warm-up
  const perCall = [];
  for (let round = 0; round < rounds; round += 1) perCall.push(await run(calls));
  const lines = [`moodbot handle(): ${calls} calls × ${rounds} rounds, CPU µs per call: median ${median(perCall).toFixed(2)} (min ${Math.min(...perCall).toFixed(2)})`];
  for (const text of TEXTS) {
    const one = new UserMessage({ text, senderId: 'bench' });
    const start = process.cpuUsage();
    const n = Math.max(1, Math.floor(calls / TEXTS.length));
    for (let i = 0; i < n; i += 1) await bot.handle(one);
    const used = process.cpuUsage(start);
    lines.push(`  ${JSON.stringify(text).padEnd(45)} ${((used.user + used.system) / n).toFixed(2)} µs`);
  }
  process.stdout.write(`${lines.join('\n')}\n`);
  if (values['skip-http']) return;

  const seconds = Number(values.seconds);
  const results = { koa: [], moodbot: [], 'rest-constant': [] };
  const kinds = Object.keys(results);
  for (let round = 0; round < rounds; round += 1) {
    // Interleaved, each round in another order, so that a change in the machine's load falls on all three.
    for (let k = 0; k < kinds.length; k += 1) {
      const kind = kinds[(k + round) % kinds.length];
      results[kind].push(await measureServer(kind, seconds));
    }
  }
  const ratios = results.koa.map((k, i) => results.moodbot[i].rps / k.rps);
  const cpuRatios = results.koa.map((k, i) => results.moodbot[i].cpuUsPerRequest / k.cpuUsPerRequest);
  const row = (name, rs) => `| ${name} | ${median(rs.map((r) => r.rps)).toFixed(0)} | ${median(rs.map((r) => r.cpuUsPerRequest)).toFixed(1)} | ${rs.reduce((s, r) => s + r.errors, 0)} |`;
  process.stdout.write(
    [
      '',
      `HTTP, ${values.connections} connections, ${seconds} s × ${rounds} interleaved rounds (medians)`,
      '| server | req/s | server CPU µs/request | errors |',
      '|---|---|---|---|',
      row('bare Koa + koa-bodyparser', results.koa),
      row('rest + moodbot', results.moodbot),
      row('rest + constant answer', results['rest-constant']),
      `ratio req/s rest+moodbot ÷ Koa: median ${median(ratios).toFixed(2)} (min ${Math.min(...ratios).toFixed(2)})`,
      `ratio CPU/request rest+moodbot ÷ Koa: median ${median(cpuRatios).toFixed(2)} (min ${Math.min(...cpuRatios).toFixed(2)})`,
      '',
    ].join('\n'),
  );
}

if (values.serve) await serve(values.serve);
else await main();
