#!/usr/bin/env node
// `npm run bench`: Switchboard against baselines and peers this script starts itself, each server in its own child
// process (so the CPU time read from /proc/<pid>/stat is that server's alone), interleaved over rounds on loopback.
//   1. rest + moodbot vs bare Koa + koa-bodyparser: req/s and CPU per request
//   2. the signed Telegram webhook → sendMessage to a local mock Bot API, vs Telegraf and grammY doing the same echo:
//      deliveries counted at the mock (delivered/s at c16 and c64), CPU per webhook, end-to-end p50/p99
//   3. socket.io sessions: RSS with them open and round-trip p50/p99, vs bare socket.io
//   4. startup to the first 200 on /health and RSS 1 s later, vs bare Koa; and idle RSS: a rest-only Switchboard and a
//      bare Koa started with the others and never sent a request, read at the end of every round (by then V8 has had
//      time to give back what starting up took, as on a real idle instance)
//   5. the Telegram path with the Redis store vs in-memory (a redis-server is started when one is on the PATH)
// The servers of 1–3 and 5 start once, are warmed up and stay up for the run (idle, they use no CPU), measured in
// turn each round in a rotated order; the socket.io sessions are opened once; every startup is a fresh process.
// Prints the ratios (min/median over rounds) as a markdown table; writes bench/results/latest.{json,svg}.
// Usage: npm run bench [-- --quick] [-- --seconds 2 --rounds 3 --sessions 10000]
//        npm run bench -- --report bench/results/latest.json   (the table and the SVG again, from saved results)
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { io as connectClient } from 'socket.io-client';
import { parseProcStat, parseProcStatusRss, percentile, ratios, renderAbsolute, renderSvg, renderTable } from './lib.mjs';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    seconds: { type: 'string' },
    rounds: { type: 'string' },
    sessions: { type: 'string' },
    report: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
});
if (values.help) {
  process.stdout.write('usage: npm run bench [-- --quick] [-- --seconds N] [-- --rounds N] [-- --sessions N]\n       npm run bench -- --report bench/results/latest.json   (table and SVG again from saved results)\n');
  process.exit(0);
}
const HERE = path.dirname(fileURLToPath(import.meta.url));
const RESULTS = path.join(HERE, 'results');

/** Prints the table and (re)draws bench/results/latest.svg from a run's data: its rounds, machine and command. */
function report(data) {
  const { machine, command, when, noisy } = data;
  const rows = ratios(data.rounds);
  const summary = `${machine.cores} × ${machine.cpu}, Node ${machine.node}, load average ${machine.loadAverageAtStart.toFixed(1)} → ${machine.loadAverageAtEnd.toFixed(1)}${noisy ? ' (shared, noisy machine)' : ''}`;
  mkdirSync(RESULTS, { recursive: true });
  writeFileSync(path.join(RESULTS, 'latest.svg'), renderSvg(rows, { subtitle: `${command} · ${when.slice(0, 16)}Z · ${summary}` }));
  process.stdout.write(`\n${command} · ${when} · ${summary}\n\n${renderTable(rows)}\n\nMedians over the rounds:\n\n${renderAbsolute(data.rounds)}\n\nwrote bench/results/latest.json and bench/results/latest.svg (the run took ${data.durationSeconds.toFixed(0)} s)\n`);
}

if (values.report) {
  report(JSON.parse(readFileSync(values.report, 'utf8')));
  process.exit(0);
}

const quick = values.quick;
const seconds = Number(values.seconds ?? (quick ? 1 : 2));
const rounds = Number(values.rounds ?? 3);
const sessions = Number(values.sessions ?? (quick ? 200 : 2000));
for (const [name, value] of Object.entries({ seconds, rounds, sessions })) {
  if (!Number.isFinite(value) || value <= 0) {
    process.stderr.write(`bench: --${name} must be a positive number\n`);
    process.exit(2);
  }
}
const warmupSeconds = quick ? 0.5 : 1.5;

const ROOT = path.dirname(HERE);
const RUN = path.join(ROOT, 'dist', 'run.js');
const PEERS = path.join(HERE, 'peers');
const TOKEN = '123456789:bench-token';
const SECRET = 'bench-secret-token';
const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout?.trim()) || 100;
const t0 = performance.now();
const log = (line) => process.stderr.write(`bench: ${((performance.now() - t0) / 1000).toFixed(0).padStart(3)} s  ${line}\n`);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

if (!existsSync(RUN)) {
  log('dist/run.js is missing: run `npm run build` first');
  process.exit(2);
}

/** The peers (Telegraf, grammY) live in their own package so the main one stays lean; installed on first use. */
function ensurePeers() {
  const installed = ['telegraf', 'grammy'].every((name) => existsSync(path.join(PEERS, 'node_modules', name, 'package.json')));
  if (installed) return true;
  log('installing the peers (Telegraf, grammY) into bench/peers …');
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  const result = spawnSync(npm, ['ci', '--prefix', PEERS, '--no-audit', '--no-fund'], { stdio: ['ignore', 2, 2] });
  if (result.status !== 0) log('installing the peers failed: the Telegram comparisons with Telegraf and grammY are left out');
  return result.status === 0;
}

// ---------------------------------------------------------------------------------------------------------------
// Processes and /proc

function cpuSeconds(pid) {
  return parseProcStat(readFileSync(`/proc/${pid}/stat`, 'utf8')).ticks / CLK_TCK;
}

function rssMiB(pid) {
  return parseProcStatusRss(readFileSync(`/proc/${pid}/status`, 'utf8'));
}

async function freePort() {
  const probe = http.createServer();
  await new Promise((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address();
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

/** Starts a server in a child process and resolves once it prints `listening on <url>`. */
async function startServer(name, args, env = {}) {
  const child = spawn(process.execPath, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr.on('data', (chunk) => (err = (err + chunk).slice(-4000)));
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start within 30 s:\n${err}`)), 30_000);
    child.stdout.on('data', (chunk) => {
      out += chunk;
      const match = /listening on (http:\/\/[^\s,]+)/.exec(out);
      if (match) {
        clearTimeout(timer);
        resolve(match[1].replace(/\/$/, ''));
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited (${code}) before listening:\n${err}`));
    });
  });
  child.stdout.resume();
  return {
    name,
    url,
    pid: child.pid,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// The mock Telegram Bot API: answers every method; sendMessage is a delivery, timed from the webhook that caused it.

const sentAt = new Map(); // text of an update → when the load generator built it
let window = { delivered: 0, latencies: [], lastAt: 0 };
const mock = http.createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
  const chunks = [];
  req.on('data', (chunk) => chunks.push(chunk));
  req.on('end', () => {
    const method = req.url.slice(req.url.lastIndexOf('/') + 1);
    let result = true;
    if (method === 'sendMessage') {
      let body = {};
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        // a form-encoded body would land here; every client measured sends JSON
      }
      const at = sentAt.get(body.text);
      if (at !== undefined) {
        sentAt.delete(body.text);
        const now = performance.now();
        window.delivered += 1;
        window.lastAt = now;
        window.latencies.push(now - at);
      }
      result = { message_id: 1, date: Math.floor(Date.now() / 1000), chat: { id: Number(body.chat_id) || 0, type: 'private' }, text: body.text };
    } else if (method === 'getMe') {
      result = { id: 1, is_bot: true, first_name: 'bench', username: 'benchbot' };
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ ok: true, result }));
  });
});
await new Promise((resolve) => mock.listen(0, '127.0.0.1', resolve));
const API_ROOT = `http://127.0.0.1:${mock.address().port}`;

// ---------------------------------------------------------------------------------------------------------------
// Load

let updateId = 0;
function telegramUpdate() {
  const id = ++updateId;
  const chat = { id: 10_000 + (id % 1000), type: 'private', first_name: 'Bench' };
  const text = `bench ${id}`;
  sentAt.set(text, performance.now());
  return JSON.stringify({ update_id: id, message: { message_id: id, from: { id: chat.id, is_bot: false, first_name: 'Bench' }, chat, date: 1_700_000_000, text } });
}

let restSender = 0;
function load(url, { connections, duration, body, rate }) {
  return autocannon({
    url,
    connections,
    duration,
    // A fixed offered rate (open loop): requests go out on schedule whatever the server's acknowledgements do.
    ...(rate ? { overallRate: rate } : {}),
    requests: [{ method: 'POST', headers: { 'content-type': 'application/json', 'x-telegram-bot-api-secret-token': SECRET }, setupRequest: (req) => ({ ...req, body: body() }) }],
  });
}

const restBody = () => JSON.stringify({ sender: `u${restSender++ % 1000}`, message: 'hello' });

async function measureRest(server) {
  const url = `${server.url}/webhooks/rest/webhook`;
  const cpu0 = cpuSeconds(server.pid);
  const result = await load(url, { connections: 32, duration: seconds, body: restBody });
  const cpu = cpuSeconds(server.pid) - cpu0;
  const requests = result.requests.total;
  return { rps: requests / seconds, cpuUsPerRequest: (cpu / requests) * 1e6, p99Ms: result.latency.p99, errors: result.errors + result.non2xx };
}

/** One load run on the Telegram webhook; deliveries are those the mock saw for this run's updates, drained after. */
async function measureTelegram(server, connections, rate) {
  const url = `${server.url}/webhooks/telegram/webhook`;
  sentAt.clear();
  window = { delivered: 0, latencies: [], lastAt: 0 };
  const cpu0 = cpuSeconds(server.pid);
  const started = performance.now();
  const result = await load(url, { connections, duration: seconds, body: telegramUpdate, rate });
  const loadEnded = performance.now();
  const acknowledged = result['2xx'];
  // Answers still queued when the load stops: wait for them (bounded), so the latencies include the slowest.
  const deadline = performance.now() + 10_000;
  while (window.delivered < acknowledged && performance.now() < deadline) await sleep(20);
  const cpu = cpuSeconds(server.pid) - cpu0;
  const latencies = window.latencies.sort((a, b) => a - b);
  // Delivered/s over the load and the drain after it: a server that acknowledges fast but delivers late is not
  // credited with the acknowledgements, and one whose answers lag by more than the run is not counted as zero.
  const elapsed = (Math.max(loadEnded, window.lastAt) - started) / 1000;
  return {
    deliveredPerSecond: window.delivered / elapsed,
    rps: result.requests.total / seconds,
    cpuUsPerRequest: (cpu / Math.max(1, window.delivered)) * 1e6,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    // Peers acknowledge after sending, so an answer to a request cut off at the end can outnumber the 2xx.
    undelivered: Math.max(0, acknowledged - window.delivered),
    errors: result.errors + result.non2xx,
  };
}

/** A warm-up load, so that no subject is measured on a cold JIT; once per process. */
async function warm(server, route, body) {
  await load(`${server.url}${route}`, { connections: 16, duration: warmupSeconds, body });
  await sleep(300);
}

/**
 * The offered rate of the fixed-rate run (updates/s): one every subject sustains on this machine, so the end-to-end
 * latency it measures is a message's path, not a queue. The c16/c64 runs are closed loops: a server that acknowledges
 * before it answers (Switchboard) gets its next requests sooner than one that answers first (Telegraf), so at c64 its
 * answers queue and the latency there measures that queue.
 */
const FIXED_RATE = quick ? 200 : 1000;

async function telegramRound(server, levels = [16, 64], fixed = true) {
  const out = {};
  for (const connections of levels) out[`c${connections}`] = await measureTelegram(server, connections);
  if (fixed) out.fixed = await measureTelegram(server, 64, FIXED_RATE);
  return out;
}

/** Opens `count` socket.io sessions on the server, 250 at a time, each confirmed; closed at the end of the run. */
async function openSessions(server, count) {
  // The RSS before: what each session costs is the growth from it (the issue's "per 1k connections").
  const rssBefore = rssMiB(server.pid);
  const sockets = [];
  closers.push(() => sockets.forEach((socket) => socket.disconnect()));
  for (let i = 0; i < count; i += 250) {
    const batch = [];
    for (let j = i; j < Math.min(count, i + 250); j++) {
      const socket = connectClient(server.url, { transports: ['websocket'], reconnection: false, forceNew: true, timeout: 30_000 });
      sockets.push(socket);
      batch.push(
        new Promise((resolve, reject) => {
          socket.once('connect_error', reject);
          socket.once('session_confirm', (id) => {
            socket.sessionId = id;
            resolve();
          });
          socket.once('connect', () => socket.emit('session_request', {}));
        }),
      );
    }
    await Promise.all(batch);
  }
  return { server, sockets, rssBefore };
}

/** The server's RSS with the sessions open, then one round trip (user_uttered → bot_uttered) on up to 500 of them. */
async function measureSocketio({ server, sockets, rssBefore }) {
  const rss = rssMiB(server.pid);
  const perThousandMiB = ((rss - rssBefore) / sockets.length) * 1000;
  const latencies = [];
  // 500 sessions, 100 at a time: enough for a p99 without making --sessions 10000 slow.
  const sample = sockets.slice(0, 500);
  for (let i = 0; i < sample.length; i += 100) {
    await Promise.all(
      sample.slice(i, i + 100).map(
        (socket) =>
          new Promise((resolve, reject) => {
            const at = performance.now();
            const timer = setTimeout(() => reject(new Error('no bot_uttered within 10 s')), 10_000);
            socket.once('bot_uttered', () => {
              clearTimeout(timer);
              latencies.push(performance.now() - at);
              resolve();
            });
            socket.emit('user_uttered', { message: 'hello', session_id: socket.sessionId });
          }),
      ),
    );
  }
  latencies.sort((a, b) => a - b);
  return { rssMiB: rss, perThousandMiB, p50Ms: percentile(latencies, 50), p99Ms: percentile(latencies, 99) };
}

function getStatus(url) {
  return new Promise((resolve) => {
    const req = http.get(url, { agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode);
    });
    req.on('error', () => resolve(0));
    req.setTimeout(1000, () => req.destroy());
  });
}

/** Time from spawning the process to the first 200 on /health, and its RSS one second later (start-up garbage included). */
async function measureStartup(name, args, env = {}) {
  const started = performance.now();
  const child = spawn(process.execPath, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: 'ignore' });
  try {
    const url = `http://127.0.0.1:${env.BENCH_PORT}/health`;
    const deadline = started + 30_000;
    while ((await getStatus(url)) !== 200) {
      if (performance.now() > deadline || child.exitCode !== null) throw new Error(`${name} did not answer 200 on /health`);
      await sleep(5);
    }
    const firstOkMs = performance.now() - started;
    await sleep(1000);
    return { firstOkMs, startRssMiB: rssMiB(child.pid) };
  } finally {
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The subjects

const scratch = mkdtempSync(path.join(os.tmpdir(), 'switchboard-bench-'));
const credentials = (name, lines) => {
  const file = path.join(scratch, `${name}.yml`);
  writeFileSync(file, `${lines.join('\n')}\n`, { mode: 0o600 });
  return file;
};
const restCredentials = credentials('rest', ['rest:']);
const telegramCredentials = credentials('telegram', [
  'telegram:',
  `  access_token: "${TOKEN}"`,
  '  verify: benchbot',
  '  webhook_url: https://bench.example/webhooks/telegram/webhook',
  `  secret_token: ${SECRET}`,
  `  api_url: ${API_ROOT}`,
]);
const socketioCredentials = credentials('socketio', ['socketio:']);
const switchboardEnv = { XDG_STATE_HOME: scratch, NODE_ENV: 'production' };
const switchboard = (file, extra = []) => [RUN, '--credentials', file, '--port', '0', '--host', '127.0.0.1', '--log-level', 'warn', ...extra];
const peerEnv = { BENCH_TOKEN: TOKEN, BENCH_SECRET: SECRET, BENCH_API_ROOT: API_ROOT };

const peers = ensurePeers();

let redisUrl;
let redisServer;
if (spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0) {
  const port = await freePort();
  redisServer = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  redisUrl = `redis://127.0.0.1:${port}`;
  await sleep(300);
} else {
  log('no redis-server on the PATH: the Redis store comparison is left out');
}

/** Runs `steps` in the order given, rotated by the round so that no subject always goes first. */
async function rotated(round, steps) {
  const order = steps.map((_, i) => steps[(i + round) % steps.length]);
  for (const step of order) await step();
}

const machine = {
  cpu: os.cpus()[0]?.model ?? 'unknown',
  cores: os.cpus().length,
  memoryGiB: Math.round(os.totalmem() / 2 ** 30),
  node: process.version,
  platform: `${os.type()} ${os.release()}`,
  loadAverageAtStart: os.loadavg()[0],
};
const command = `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`;
log(`${rounds} rounds of ${seconds} s per measurement, ${sessions} socket.io sessions; ${machine.cores} cores, load average ${machine.loadAverageAtStart.toFixed(1)}`);

const results = [];
const benchStarted = performance.now();
const echoBot = ['--bot', path.join(HERE, 'servers', 'echo-bot.mjs')];
// The rest, Telegram and socket.io subjects run for the whole bench, each in its own process, warmed once and then
// measured in turn every round; the startups are fresh processes every round.
const running = [];
const closers = [];
async function keep(name, args, env) {
  const server = await startServer(name, args, env);
  running.push(server);
  return server;
}
try {
  log('starting the servers (at once: their start is not what is measured here) and warming them up');
  const specs = {
    koa: [path.join(HERE, 'servers', 'koa.mjs')],
    'switchboard rest': switchboard(restCredentials),
    'switchboard telegram': switchboard(telegramCredentials, echoBot),
    ...(peers ? { telegraf: [path.join(PEERS, 'telegraf.mjs')], grammy: [path.join(PEERS, 'grammy.mjs')] } : {}),
    ...(redisUrl ? { 'switchboard telegram redis': switchboard(telegramCredentials, [...echoBot, '--redis', redisUrl, '--redis-prefix', `bench-${process.pid}:`]) } : {}),
    'bare socket.io': [path.join(HERE, 'servers', 'socketio.mjs')],
    'switchboard socket.io': switchboard(socketioCredentials),
    // Never sent a request: their RSS is read at the end of each round.
    'koa idle': [path.join(HERE, 'servers', 'koa.mjs')],
    'switchboard idle': switchboard(restCredentials),
  };
  const envOf = (name) => (name.startsWith('switchboard') ? switchboardEnv : name === 'telegraf' || name === 'grammy' ? peerEnv : {});
  const settled = await Promise.allSettled(Object.entries(specs).map(([name, args]) => keep(name, args, envOf(name))));
  const failed = settled.find((outcome) => outcome.status === 'rejected');
  if (failed) throw failed.reason;
  const byName = Object.fromEntries(running.map((server) => [server.name, server]));
  const rest = { koa: byName.koa, switchboard: byName['switchboard rest'] };
  const telegram = { switchboard: byName['switchboard telegram'], ...(peers ? { telegraf: byName.telegraf, grammy: byName.grammy } : {}) };
  const redis = byName['switchboard telegram redis'];
  const idle = { koa: byName['koa idle'], switchboard: byName['switchboard idle'] };
  const idleSince = performance.now();
  // The sessions are opened once and held for the whole run (opening thousands is most of the cost); each round reads
  // the RSS with them open and times round trips.
  const socketio = {
    bare: await openSessions(byName['bare socket.io'], sessions),
    switchboard: await openSessions(byName['switchboard socket.io'], sessions),
  };
  for (const server of Object.values(rest)) await warm(server, '/webhooks/rest/webhook', restBody);
  for (const server of [...Object.values(telegram), ...(redis ? [redis] : [])]) await warm(server, '/webhooks/telegram/webhook', telegramUpdate);

  for (let round = 0; round < rounds; round++) {
    const r = {};
    results.push(r);
    log(`round ${round + 1}/${rounds}: rest`);
    await rotated(
      round,
      Object.entries(rest).map(([name, server]) => async () => (r[`${name}.rest`] = await measureRest(server))),
    );
    log(`round ${round + 1}/${rounds}: telegram`);
    await rotated(
      round,
      Object.entries(telegram).map(([name, server]) => async () => {
        const t = await telegramRound(server);
        r[`${name}.telegram.c16`] = t.c16;
        r[`${name}.telegram.c64`] = t.c64;
        r[`${name}.telegram.fixed`] = t.fixed;
      }),
    );
    if (redis) {
      log(`round ${round + 1}/${rounds}: telegram with redis`);
      r['switchboard.telegram.redis.c64'] = (await telegramRound(redis, [64], false)).c64;
    }
    log(`round ${round + 1}/${rounds}: socket.io, ${sessions} sessions`);
    await rotated(
      round,
      Object.entries(socketio).map(([name, open]) => async () => (r[`${name}.socketio`] = await measureSocketio(open))),
    );
    log(`round ${round + 1}/${rounds}: startup`);
    await rotated(round, [
      async () => (r['koa.startup'] = await measureStartup('koa', [path.join(HERE, 'servers', 'koa.mjs')], { BENCH_PORT: String(await freePort()) })),
      async () => {
        const port = String(await freePort());
        r['switchboard.startup'] = await measureStartup('switchboard', [RUN, '--credentials', restCredentials, '--port', port, '--host', '127.0.0.1', '--log-level', 'warn'], { ...switchboardEnv, BENCH_PORT: port });
      },
    ]);
    const idleSeconds = Math.round((performance.now() - idleSince) / 1000);
    for (const [name, server] of Object.entries(idle)) r[`${name}.idle`] = { idleRssMiB: rssMiB(server.pid), idleSeconds };
  }
} finally {
  for (const close of closers) close();
  for (const server of running) await server.stop();
  redisServer?.kill('SIGKILL');
  mock.close();
  rmSync(scratch, { recursive: true, force: true });
}

machine.loadAverageAtEnd = os.loadavg()[0];
const noisy = Math.max(machine.loadAverageAtStart, machine.loadAverageAtEnd) > machine.cores * 0.5;
const data = { when: new Date().toISOString(), command, machine, noisy, options: { seconds, rounds, sessions, quick }, durationSeconds: (performance.now() - benchStarted) / 1000, rounds: results, ratios: ratios(results) };
mkdirSync(RESULTS, { recursive: true });
writeFileSync(path.join(RESULTS, 'latest.json'), `${JSON.stringify(data, null, 2)}\n`);
report(data);
