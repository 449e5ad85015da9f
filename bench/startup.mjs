#!/usr/bin/env node
// Startup time: from spawning the CLI (`node dist/run.js`) to the first 200 on GET /health and on the socket.io
// handshake, and to the "listening on" banner, with every built-in channel configured (console aside: it owns the
// terminal) and every platform API pointed at a local stub. The stub
// either answers every call at once (`--platform ok`) or accepts connections and never answers (`--platform hang`,
// what issue 17 saw stall startup). Several builds can be compared, interleaved round by round:
//
//   node bench/startup.mjs [--runs 7] [--platform hang|ok|both] [--dist dist] [--dist /other/checkout/dist]...
//
// A measurement, not a test: numbers depend on the machine. Prints min and median per build and platform mode.
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = fileURLToPath(new URL('..', import.meta.url));
const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '7' },
    platform: { type: 'string', default: 'both' },
    dist: { type: 'string', multiple: true },
    'give-up': { type: 'string', default: '60000' },
  },
});
const runs = Number(values.runs);
const dists = (values.dist ?? [path.join(root, 'dist')]).map((d) => path.resolve(d));
const modes = values.platform === 'both' ? ['ok', 'hang'] : [values.platform];
const giveUpMs = Number(values['give-up']);

/** A stub for every platform: `ok` answers `{"ok":true}` at once; `hang` keeps the request open until closed. */
async function platformStub(mode) {
  const held = new Set();
  const server = createServer((req, res) => {
    if (mode === 'hang') {
      held.add(res);
      res.on('close', () => held.delete(res));
      return;
    }
    req.resume();
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ ok: true, result: true, token: 't', access_token: 't', expires_in: 3600, data: { authToken: 'a', userId: 'u' } }));
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${server.address().port}`;
  return {
    url,
    close: () => new Promise((resolve) => {
      for (const res of held) res.destroy();
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

function credentials(api) {
  return `
facebook: {verify: v, secret: s, page-access-token: p, api_url: "${api}"}
slack: {slack_token: xoxb-1, slack_signing_secret: s, api_url: "${api}"}
telegram: {access_token: "123456:ABC", verify: bench_bot, webhook_url: "https://bot.example.com/webhooks/telegram/webhook", api_url: "${api}"}
twilio: {account_sid: AC0123456789abcdef0123456789abcdef, auth_token: a, twilio_number: "+14155551234", api_url: "${api}"}
mattermost: {url: "${api}/api/v4", token: t, webhook_token: w}
rocketchat: {user: bot, password: p, server_url: "${api}", webhook_token: w}
webexteams: {access_token: a, webhook_secret: w, api_url: "${api}"}
whatsapp: {phone_number_id: "1", access_token: a, app_secret: s, verify_token: v, api_url: "${api}"}
instagram: {verify: v, secret: s, page-access-token: p, instagram_account_id: "1", api_url: "${api}"}
line: {channel_secret: s, channel_access_token: a, api_url: "${api}"}
discord: {public_key: "${'ab'.repeat(32)}", application_id: "1", api_url: "${api}"}
botframework: {app_id: a, app_password: p, openid_metadata: "${api}/openid", token_url: "${api}/token", api_url: "${api}"}
hangouts: {project_id: "1", api_url: "${api}"}
socketio: {session_secret: bench-session-secret}
rest: {}
callback: {url: "${api}/callback"}
`;
}

/**
 * One start: ms from spawn to the first 200 on GET /health, to the first 200 on the socket.io handshake (polled every
 * 2 ms), and to the "listening on" banner on stdout; undefined for what did not come within `giveUpMs`.
 */
async function startOnce(dist, file, port) {
  const started = process.hrtime.bigint();
  const since = () => Number(process.hrtime.bigint() - started) / 1e6;
  const child = spawn(process.execPath, [path.join(dist, 'run.js'), '--credentials', file, '--port', String(port), '--host', '127.0.0.1', '--log-level', 'silent'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  let stdout = '';
  const times = { health: undefined, socketio: undefined, banner: undefined };
  child.stderr.on('data', (chunk) => (stderr += chunk));
  child.stdout.on('data', (chunk) => {
    stdout += chunk;
    if (times.banner === undefined && stdout.includes('listening on')) times.banner = since();
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const ok = (url) => fetch(url).then((r) => (r.body?.cancel(), r.status === 200), () => false);
  while (since() < giveUpMs && (times.health === undefined || times.socketio === undefined || times.banner === undefined)) {
    if (times.health === undefined && (await ok(`http://127.0.0.1:${port}/health`))) times.health = since();
    if (times.socketio === undefined && (await ok(`http://127.0.0.1:${port}/socket.io/?EIO=4&transport=polling`))) times.socketio = since();
    if (child.exitCode !== null) throw new Error(`the server exited (${child.exitCode}): ${stderr}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
  child.kill('SIGKILL');
  await exited;
  return times;
}

async function freePort() {
  const server = createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

const dir = mkdtempSync(path.join(tmpdir(), 'switchboard-startup-'));
const results = new Map();
try {
  for (const mode of modes) {
    const stub = await platformStub(mode);
    const file = path.join(dir, `credentials-${mode}.yml`);
    writeFileSync(file, credentials(stub.url));
    // One unmeasured start per build warms the file cache.
    for (const dist of dists) await startOnce(dist, file, await freePort());
    for (let round = 0; round < runs; round++) {
      for (const dist of dists) {
        const times = await startOnce(dist, file, await freePort());
        const key = `${dist} | ${mode}`;
        if (!results.has(key)) results.set(key, []);
        results.get(key).push(times);
      }
    }
    await stub.close();
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}

const median = (xs) => {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};
const show = (x) => (x === undefined || x === Infinity ? `> ${giveUpMs}` : x.toFixed(0));
const cell = (xs) => `${show(Math.min(...xs.map((x) => x ?? Infinity)))} / ${show(median(xs.map((x) => x ?? Infinity)))}`;
console.log(`ms from spawn, min / median of ${runs} runs (every built-in channel but console configured)\n`);
console.log('| build | platform API | first 200 on /health | first 200 on /socket.io | "listening on" banner |');
console.log('|---|---|---|---|---|');
for (const [key, runsOf] of results) {
  const [dist, mode] = key.split(' | ');
  console.log(`| ${dist} | ${mode} | ${cell(runsOf.map((r) => r.health))} | ${cell(runsOf.map((r) => r.socketio))} | ${cell(runsOf.map((r) => r.banner))} |`);
}
