#!/usr/bin/env node
// The outgoing transport under `HttpClient`, measured alone (issue 17 item 1): the same JSON POST to a local keep-alive
// HTTP server (a child process, so its CPU is not counted), made by
//   node-fetch        node-fetch 3 as HttpClient used it: the default agent, `AbortSignal.timeout` per call
//   node-fetch+agent  node-fetch 3 with a keep-alive `http.Agent` (maxSockets bound) and one timer per call
//   http.request      node's `http.request` on a keep-alive `http.Agent` (maxSockets bound), one timer per call
//   global fetch      Node's bundled fetch (undici inside; the `undici` package itself is not installed here)
// CPU µs per call from process.cpuUsage() of this process, calls/s; subjects alternate, in a rotated order, each round.
// Usage: node bench/transport.mjs [--calls 4000] [--concurrency 16] [--rounds 5]
import { fork } from 'node:child_process';
import http from 'node:http';
import { parseArgs } from 'node:util';
import fetch from 'node-fetch';

if (process.argv[2] === '--serve') {
  const body = JSON.stringify({ ok: true, result: { message_id: 1, chat: { id: 1, type: 'private' }, text: 'hello' } });
  const server = http.createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
  });
  server.listen(0, '127.0.0.1', () => process.send(server.address().port));
} else {
  const { values } = parseArgs({ options: { calls: { type: 'string', default: '4000' }, concurrency: { type: 'string', default: '16' }, rounds: { type: 'string', default: '5' } } });
  const calls = Number(values.calls);
  const concurrency = Number(values.concurrency);
  const rounds = Number(values.rounds);
  const child = fork(new URL(import.meta.url).pathname, ['--serve']);
  const port = await new Promise((resolve) => child.once('message', resolve));
  const url = `http://127.0.0.1:${port}/bot123:abc/sendMessage`;
  const payload = () => JSON.stringify({ chat_id: '10001', text: 'bench 1' });
  const TIMEOUT = 10_000;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

  /** A timer per call that aborts the call: one `setTimeout`, an AbortController only for node-fetch's signal. */
  const subjects = {
    'node-fetch': async () => {
      const response = await fetch(url, { method: 'POST', headers: { accept: 'application/json', 'content-type': 'application/json' }, body: payload(), signal: AbortSignal.timeout(TIMEOUT), redirect: 'follow' });
      return JSON.parse(await response.text());
    },
    'node-fetch+agent': async () => {
      const controller = new AbortController();
      const timer = setTimeout(() => controller.abort(), TIMEOUT);
      try {
        const response = await fetch(url, { method: 'POST', headers: { accept: 'application/json', 'content-type': 'application/json' }, body: payload(), signal: controller.signal, agent, redirect: 'follow' });
        return JSON.parse(await response.text());
      } finally {
        clearTimeout(timer);
      }
    },
    'http.request': () =>
      new Promise((resolve, reject) => {
        const body = payload();
        const req = http.request(url, { method: 'POST', agent, headers: { accept: 'application/json', 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
          const chunks = [];
          res.on('data', (chunk) => chunks.push(chunk));
          res.on('end', () => {
            clearTimeout(timer);
            resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
          });
          res.on('error', reject);
        });
        const timer = setTimeout(() => req.destroy(new Error('timeout')), TIMEOUT);
        req.on('error', (error) => {
          clearTimeout(timer);
          reject(error);
        });
        req.end(body);
      }),
    'global fetch': async () => {
      const response = await globalThis.fetch(url, { method: 'POST', headers: { accept: 'application/json', 'content-type': 'application/json' }, body: payload(), signal: AbortSignal.timeout(TIMEOUT) });
      return JSON.parse(await response.text());
    },
  };

  async function measure(call) {
    let next = 0;
    const worker = async () => {
      while (next++ < calls) await call();
    };
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    await Promise.all(Array.from({ length: concurrency }, worker));
    const elapsed = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    return { cpuUs: (cpu.user + cpu.system) / calls, perSecond: calls / elapsed };
  }

  const names = Object.keys(subjects);
  for (const name of names) await measure(subjects[name]); // warm-up, every subject
  const results = Object.fromEntries(names.map((name) => [name, []]));
  for (let round = 0; round < rounds; round++) {
    for (let i = 0; i < names.length; i++) {
      const name = names[(i + round) % names.length];
      results[name].push(await measure(subjects[name]));
    }
  }
  const median = (values) => values.sort((a, b) => a - b)[Math.floor(values.length / 2)];
  const base = median(results['node-fetch'].map((r) => r.cpuUs));
  process.stdout.write(`${calls} POSTs × ${rounds} rounds, ${concurrency} in flight, Node ${process.version}\n\n| transport | CPU µs/call (median) | min–max | ÷ node-fetch | calls/s (median) |\n|---|---:|---:|---:|---:|\n`);
  for (const name of names) {
    const cpu = results[name].map((r) => r.cpuUs);
    const rate = results[name].map((r) => r.perSecond);
    process.stdout.write(`| ${name} | ${median([...cpu]).toFixed(0)} | ${Math.min(...cpu).toFixed(0)}–${Math.max(...cpu).toFixed(0)} | ${(median([...cpu]) / base).toFixed(2)} | ${median(rate).toFixed(0)} |\n`);
  }
  agent.destroy();
  child.kill();
}
