// Issue 13, "memory test": one client flooding one session (rest clients that hang up, and a socket.io client) and
// another flooding distinct sessions, for 10 s, against a slow bot (250 ms, `botConcurrency: 4`, every other limit
// at its default). The server runs in its own process with --expose-gc and reports its heap after a full GC: it must
// stay under 100 MB above idle, the bot must run exactly 4 calls at once at its peak, and a legitimate user (who
// honours Retry-After) must still be answered. No nock in this file: aborted fetches must really hang up.
import test from 'ava';
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { io as connectClient } from 'socket.io-client';

const SERVER = fileURLToPath(new URL('./limits-server.js', import.meta.url));
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const MB = 1024 * 1024;

interface Stats { heapUsed: number; gc: boolean; peak: number; received: number; pipelinePeak: number; senders: number }

function stats(child: ChildProcess): Promise<Stats> {
  const answer = new Promise<Stats>((resolve) => {
    const onMessage = (message: { type: string } & Stats) => {
      if (message.type !== 'stats') return;
      child.off('message', onMessage);
      resolve(message);
    };
    child.on('message', onMessage);
  });
  child.send({ type: 'stats' });
  return answer;
}

test('a 10 s flood of one session and of distinct sessions keeps the heap bounded, the bot at its concurrency, and a real user answered', async (t) => {
  const child = fork(SERVER, [], { execArgv: ['--expose-gc'], stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  const [ready] = (await once(child, 'message')) as [{ type: string; port: number }];
  t.is(ready.type, 'ready', stderr);
  const url = `http://127.0.0.1:${ready.port}`;
  const post = (sender: string, message: string, signal?: AbortSignal) =>
    fetch(`${url}/webhooks/rest/webhook`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ sender, message }), signal });

  // Warm up (code paths compiled, the socket.io server loaded), then measure idle.
  for (let i = 0; i < 3; i++) await (await post('warmup', `hi ${i}`)).text();
  const idle = await stats(child);
  t.true(idle.gc, 'the server runs with --expose-gc');

  const floodMs = 10_000;
  const end = Date.now() + floodMs;
  const counts = { oneSession: 0, oneSession429: 0, distinct: 0, distinct429: 0, sioSent: 0, sioErrors: 0, legit429: 0 };
  // Under rest's 64 KB body limit (a larger body is a 413 before it is read), so these reach the sender's backlog.
  const big = 'x'.repeat(60 * 1024);
  const medium = 'y'.repeat(20 * 1024);
  const sioText = 'z'.repeat(60 * 1024);

  // 1. One session, 16 rest clients in parallel, 60 KB each, hanging up after 300 ms.
  const oneSession = Array.from({ length: 16 }, async () => {
    while (Date.now() < end) {
      counts.oneSession++;
      try {
        const response = await post('flood-one', big, AbortSignal.timeout(300));
        if (response.status === 429) counts.oneSession429++;
        await response.text();
      } catch {
        // hung up
      }
    }
  });
  // 2. Distinct sessions: 32 rest clients in parallel, a new sender id for every 20 KB message.
  let next = 0;
  const distinct = Array.from({ length: 32 }, async () => {
    while (Date.now() < end) {
      counts.distinct++;
      try {
        const response = await post(`flood-${next++}`, medium, AbortSignal.timeout(20_000));
        if (response.status === 429) counts.distinct429++;
        await response.text();
      } catch {
        // the server may be slow to answer on a loaded machine; the flood goes on
      }
    }
  });
  // 3. One socket.io client emitting 60 KB messages for its one session, ~200 a second.
  const socket = connectClient(url, { transports: ['websocket'], forceNew: true, reconnection: false });
  t.teardown(() => socket.close());
  socket.on('error', () => counts.sioErrors++);
  const sio = (async () => {
    await Promise.race([new Promise<void>((resolve) => socket.once('connect', () => resolve())), sleep(5_000)]);
    if (!socket.connected) return;
    const session = await new Promise<string>((resolve) => socket.emit('session_request', {}, (id: string) => resolve(id)));
    while (Date.now() < end && socket.connected) {
      for (let i = 0; i < 10; i++) socket.emit('user_uttered', { message: sioText, session_id: session });
      counts.sioSent += 10;
      await sleep(50);
    }
  })();
  // 4. A legitimate user: one message at a time, waiting Retry-After when told to.
  const answers: unknown[] = [];
  const legit = (async () => {
    let i = 0;
    while (Date.now() < end + 5_000 && answers.length < 3) {
      const response = await post('alice', `hello ${i}`, AbortSignal.timeout(30_000));
      if (response.status === 429) {
        counts.legit429++;
        await response.text();
        await sleep(Math.min(1_000, Number(response.headers.get('retry-after') ?? 1) * 1_000));
        continue;
      }
      answers.push(await response.json());
      i++;
    }
  })();

  // The heap, after a full GC, while the flood runs.
  const samples: number[] = [];
  await sleep(3_000);
  while (Date.now() < end - 500) {
    samples.push((await stats(child)).heapUsed);
    await sleep(2_000);
  }
  await Promise.all([...oneSession, ...distinct, sio, legit]);
  const after = await stats(child);
  const growth = Math.max(...samples, after.heapUsed) - idle.heapUsed;
  t.log(`idle heap ${(idle.heapUsed / MB).toFixed(1)} MB; max growth ${(growth / MB).toFixed(1)} MB over ${samples.length} samples; bot peak ${after.peak}; bot calls ${after.received};`, JSON.stringify(counts));
  t.true(samples.length >= 2);
  t.true(growth < 100 * MB, `heap grew ${(growth / MB).toFixed(1)} MB`);
  t.is(after.peak, 4);
  t.is(after.pipelinePeak, 4);
  t.true(counts.oneSession429 > 0 && counts.distinct > 32, JSON.stringify(counts));
  t.deepEqual(answers, [0, 1, 2].map((i) => [{ recipient_id: 'alice', text: `echo: hello ${i}` }]));
  child.send({ type: 'stop' });
});
