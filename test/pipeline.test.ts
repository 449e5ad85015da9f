// The message pipeline: deduplication by (channel, message id), strict order per sender, concurrency across senders,
// the typing indicator, flush, and errors that are logged and never break other senders or later messages.
import { EventEmitter } from 'node:events';
import test from 'ava';
import { captureLogs } from './harness.js';
import type { Bot } from '#src/bot.js';
import { InputChannel } from '#src/channel.js';
import { UserMessage, type BotMessage } from '#src/message.js';
import { CollectingOutputChannel, OutputChannel } from '#src/output.js';
import { Pipeline, type Outcome } from '#src/pipeline.js';
import { MemoryStore, type Store } from '#src/store.js';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Polls until `condition` holds or `capMs` passed: a bot that works "until the typing indicator was seen". */
async function until(condition: () => boolean, capMs = 3_000): Promise<void> {
  const end = Date.now() + capMs;
  while (!condition() && Date.now() < end) await sleep(5);
}

/** A deterministic PRNG (mulberry32), so a failing order reproduces. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}


/** A collecting output that also records typing indicators and flushes, in order with the answers. */
class RecordingOutput extends CollectingOutputChannel {
  readonly events: string[] = [];
  typing = 0;
  flushed = 0;

  override async sendTextMessage(recipientId: string, text: string): Promise<void> {
    this.events.push(`text:${text}`);
    await super.sendTextMessage(recipientId, text);
  }

  override async sendTyping(recipientId: string): Promise<void> {
    this.typing++;
    this.events.push(`typing:${recipientId}`);
  }

  override async flush(recipientId: string): Promise<void> {
    this.flushed++;
    this.events.push(`flush:${recipientId}`);
  }
}

function message(text: string, senderId: string, output: OutputChannel | undefined, messageId?: string, inputChannel = 'test'): UserMessage {
  return new UserMessage({ text, senderId, output, inputChannel, messageId });
}

const echo: Bot = { handle: (m) => [{ text: `echo: ${m.text}` }] };

const texts = (output: CollectingOutputChannel) => output.messages.map((m) => m.text);

// ---------------------------------------------------------------------------------------------------------------------
// Handling

test('a message is answered through its output, each answer with its recipient', async (t) => {
  const pipeline = new Pipeline({ bot: { handle: (m) => [{ text: `hi ${m.senderId}` }, { image: 'https://x.test/a.png' }] } });
  const output = new CollectingOutputChannel();
  const outcome = await pipeline.handlerFor()(message('hello', 'u1', output));
  t.is(outcome, 'handled');
  t.deepEqual(output.messages, [
    { recipient_id: 'u1', text: 'hi u1' },
    { recipient_id: 'u1', image: 'https://x.test/a.png' },
  ]);
});

test('enqueue accepts at once; done settles after the answers were sent', async (t) => {
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const pipeline = new Pipeline({
    bot: {
      handle: async (m) => {
        await gate;
        return [{ text: m.text }];
      },
    },
  });
  const output = new CollectingOutputChannel();
  const accepted = await pipeline.handlerFor().enqueue(message('x', 'u1', output, 'm1'));
  t.false(accepted.duplicate);
  t.deepEqual(output.messages, [], 'the bot has not answered yet');
  t.is(pipeline.activeSenders, 1);
  release();
  t.is(await accepted.done, 'handled');
  t.deepEqual(texts(output), ['x']);
});

test('each sender is answered in order while several senders are served concurrently', async (t) => {
  const next = random(42);
  const inFlight = new Map<string, number>();
  let maxPerSender = 0;
  let running = 0;
  let maxRunning = 0;
  const bot: Bot = {
    handle: async (m) => {
      const now = (inFlight.get(m.senderId) ?? 0) + 1;
      inFlight.set(m.senderId, now);
      maxPerSender = Math.max(maxPerSender, now);
      running++;
      maxRunning = Math.max(maxRunning, running);
      await sleep(Math.floor(next() * 12));
      running--;
      inFlight.set(m.senderId, now - 1);
      return [{ text: `${m.text}.a` }, { text: `${m.text}.b` }];
    },
  };
  const pipeline = new Pipeline({ bot, typingDelayMs: 20, typingIntervalMs: 30 });
  const onNewMessage = pipeline.handlerFor();
  const senders = ['alice', 'bob', 'carol'];
  const outputs = new Map(senders.map((s) => [s, new RecordingOutput()]));
  const pending: Promise<Outcome>[] = [];
  for (let i = 0; i < 15; i++) {
    for (const sender of senders) {
      // Half of them with a platform id, half without: the order must hold either way.
      pending.push(onNewMessage(message(`${sender}${i}`, sender, outputs.get(sender), i % 2 === 0 ? `${sender}-${i}` : undefined)));
    }
  }
  const outcomes = await Promise.all(pending);
  t.true(outcomes.every((o) => o === 'handled'));
  for (const sender of senders) {
    const expected = Array.from({ length: 15 }, (_, i) => [`${sender}${i}.a`, `${sender}${i}.b`]).flat();
    t.deepEqual(texts(outputs.get(sender)!), expected, `order of ${sender}`);
    t.is(outputs.get(sender)!.flushed, 15);
  }
  t.is(maxPerSender, 1, 'never two messages of one sender at once');
  t.true(maxRunning > 1, 'senders were served concurrently');
  t.is(pipeline.activeSenders, 0);
});

test('a slow sender does not hold up another sender', async (t) => {
  let releaseA!: () => void;
  const gateA = new Promise<void>((resolve) => (releaseA = resolve));
  const pipeline = new Pipeline({
    bot: {
      handle: async (m) => {
        if (m.senderId === 'A') await gateA;
        return [{ text: `done ${m.text}` }];
      },
    },
  });
  const onNewMessage = pipeline.handlerFor();
  const outA = new CollectingOutputChannel();
  const outB = new CollectingOutputChannel();
  let aDone = false;
  const a = onNewMessage(message('a1', 'A', outA)).then((outcome) => {
    aDone = true;
    return outcome;
  });
  const b = await onNewMessage(message('b1', 'B', outB));
  t.is(b, 'handled');
  t.deepEqual(texts(outB), ['done b1']);
  t.false(aDone, 'A is still working while B was answered');
  t.deepEqual(outA.messages, []);
  releaseA();
  t.is(await a, 'handled');
  t.deepEqual(texts(outA), ['done a1']);
});

test('the same sender id on two channels is two senders', async (t) => {
  let releaseSlack!: () => void;
  const gate = new Promise<void>((resolve) => (releaseSlack = resolve));
  const pipeline = new Pipeline({
    bot: {
      handle: async (m) => {
        if (m.inputChannel === 'slack') await gate;
        return [{ text: m.inputChannel }];
      },
    },
  });
  const onNewMessage = pipeline.handlerFor();
  const slack = onNewMessage(message('x', 'u1', new CollectingOutputChannel(), undefined, 'slack'));
  t.is(await onNewMessage(message('x', 'u1', new CollectingOutputChannel(), undefined, 'telegram')), 'handled');
  releaseSlack();
  t.is(await slack, 'handled');
});

test('order holds for one sender whose messages come with and without a platform id', async (t) => {
  const seen: string[] = [];
  const pipeline = new Pipeline({
    bot: {
      handle: (m) => {
        seen.push(m.text);
        return [];
      },
    },
  });
  const onNewMessage = pipeline.handlerFor();
  const output = new CollectingOutputChannel();
  await Promise.all([
    onNewMessage(message('first', 'u1', output, 'id-1')),
    onNewMessage(message('second', 'u1', output)),
    onNewMessage(message('third', 'u1', output, 'id-3')),
  ]);
  t.deepEqual(seen, ['first', 'second', 'third']);
});

test('order holds for one sender when the store answers claims out of order (a remote store)', async (t) => {
  // A store whose first claims are slowest, as a shared store with varying latency can be.
  const delays = [40, 25, 10, 0];
  let call = 0;
  const inner = new MemoryStore();
  const store: Store = {
    claim: async (key, ttl) => {
      await sleep(delays[call++] ?? 0);
      return inner.claim(key, ttl);
    },
    release: (key) => inner.release(key),
  };
  const seen: string[] = [];
  const pipeline = new Pipeline({
    bot: {
      handle: (m) => {
        seen.push(m.text);
        return [];
      },
    },
    store,
  });
  const onNewMessage = pipeline.handlerFor();
  const output = new CollectingOutputChannel();
  const outcomes = await Promise.all(['1', '2', '3', '4'].map((n) => onNewMessage(message(n, 'u1', output, `m${n}`))));
  t.deepEqual(outcomes, ['handled', 'handled', 'handled', 'handled']);
  t.deepEqual(seen, ['1', '2', '3', '4']);
});

// ---------------------------------------------------------------------------------------------------------------------
// Errors

test('a bot that throws fails that message only: other senders and later messages go on', async (t) => {
  const logs = captureLogs();
  const bot: Bot = {
    handle: async (m) => {
      await sleep(5);
      if (m.text === 'boom') throw new Error('bot exploded');
      return [{ text: `ok ${m.text}` }];
    },
  };
  const pipeline = new Pipeline({ bot, logger: logs.logger });
  const onNewMessage = pipeline.handlerFor();
  const outA = new RecordingOutput();
  const outB = new RecordingOutput();
  const results = await Promise.all([
    onNewMessage(message('boom', 'A', outA)),
    onNewMessage(message('b1', 'B', outB)),
    onNewMessage(message('a2', 'A', outA)),
    onNewMessage(message('b2', 'B', outB)),
  ]);
  t.deepEqual(results, ['failed', 'handled', 'handled', 'handled']);
  t.deepEqual(texts(outA), ['ok a2']);
  t.deepEqual(texts(outB), ['ok b1', 'ok b2']);
  t.is(outA.flushed, 1, 'no flush for the failed message');
  const failure = logs.lines().find((line) => line.msg === 'bot failed to handle the message');
  t.truthy(failure);
  t.is(failure?.sender, 'A');
  t.is(failure?.level, 50);
  t.regex(JSON.stringify(failure?.err), /bot exploded/);
});

test('a bot that throws synchronously is caught too', async (t) => {
  const pipeline = new Pipeline({
    bot: {
      handle: (m) => {
        if (m.text === 'sync') throw new TypeError('not a function');
        return [{ text: 'fine' }];
      },
    },
  });
  const onNewMessage = pipeline.handlerFor();
  const output = new CollectingOutputChannel();
  t.is(await onNewMessage(message('sync', 'u', output)), 'failed');
  t.is(await onNewMessage(message('next', 'u', output)), 'handled');
  t.deepEqual(texts(output), ['fine']);
});

test('a bot that does not return a list is logged and sends nothing; non-object answers are skipped', async (t) => {
  const logs = captureLogs();
  const answers: unknown[] = [undefined, [null, 'text', { text: 'kept' }, 7]];
  const pipeline = new Pipeline({ bot: { handle: () => answers.shift() as BotMessage[] }, logger: logs.logger });
  const onNewMessage = pipeline.handlerFor();
  const output = new CollectingOutputChannel();
  await onNewMessage(message('1', 'u', output));
  t.deepEqual(output.messages, []);
  await onNewMessage(message('2', 'u', output));
  t.deepEqual(texts(output), ['kept']);
  const messages = logs.lines().map((line) => line.msg);
  t.true(messages.includes('bot did not return a list of answers'));
  t.is(messages.filter((m) => m === 'bot returned an answer that is not an object; skipped').length, 3);
});

class FailingOutput extends RecordingOutput {
  override async sendTextMessage(recipientId: string, text: string): Promise<void> {
    if (text === 'bad') throw new Error('platform said 400');
    await super.sendTextMessage(recipientId, text);
  }
}

test('an output error fails the message, drops the rest of that reply, is logged, and the sender goes on', async (t) => {
  const logs = captureLogs();
  const pipeline = new Pipeline({ bot: { handle: (m) => (m.text === 'x' ? [{ text: 'good' }, { text: 'bad' }, { text: 'after' }] : [{ text: 'fine' }]) } });
  const onNewMessage = pipeline.handlerFor(logs.logger);
  const output = new FailingOutput();
  t.is(await onNewMessage(message('x', 'u7', output)), 'failed');
  t.is(await onNewMessage(message('y', 'u7', output)), 'handled');
  t.deepEqual(output.events, ['text:good', 'text:fine', 'flush:u7']);
  const failure = logs.lines().find((line) => line.msg === 'sending an answer failed');
  t.like(failure, { sender: 'u7', level: 50 });
  t.regex(JSON.stringify(failure?.err), /platform said 400/);
});

test('a failing flush fails the message and is logged', async (t) => {
  const logs = captureLogs();
  class BadFlush extends RecordingOutput {
    override async flush(): Promise<void> {
      throw new Error('callback url down');
    }
  }
  const pipeline = new Pipeline({ bot: echo, logger: logs.logger });
  t.is(await pipeline.handlerFor()(message('x', 'u', new BadFlush())), 'failed');
  t.truthy(logs.lines().find((line) => line.msg === 'sending the answers failed'));
});

test('a message without an output fails and is logged; the bot is not called', async (t) => {
  const logs = captureLogs();
  let calls = 0;
  const pipeline = new Pipeline({
    bot: {
      handle: () => {
        calls++;
        return [];
      },
    },
    logger: logs.logger,
  });
  t.is(await pipeline.handlerFor()(message('x', 'u', undefined)), 'failed');
  t.is(calls, 0);
  t.truthy(logs.lines().find((line) => line.msg === 'message has no output channel; the bot cannot answer'));
});

test('done never rejects, even when an output misbehaves in an unexpected place; the sender goes on', async (t) => {
  const broken = new RecordingOutput();
  Object.defineProperty(broken, 'sendTyping', {
    get() {
      throw new Error('getter exploded');
    },
  });
  const pipeline = new Pipeline({ bot: echo });
  const onNewMessage = pipeline.handlerFor();
  const first = onNewMessage(message('x', 'u', broken));
  const output = new CollectingOutputChannel();
  const second = onNewMessage(message('y', 'u', output));
  t.is(await first, 'failed');
  t.is(await second, 'handled');
  t.deepEqual(texts(output), ['echo: y']);
  await pipeline.drain();
  t.is(pipeline.activeSenders, 0);
});

// ---------------------------------------------------------------------------------------------------------------------
// Deduplication

function countingBot() {
  const calls: string[] = [];
  const bot: Bot = {
    handle: async (m) => {
      calls.push(m.text);
      await sleep(5);
      return [{ text: m.text }];
    },
  };
  return { bot, calls };
}

test('a message id delivered twice is processed once; the second delivery is a duplicate', async (t) => {
  const { bot, calls } = countingBot();
  const pipeline = new Pipeline({ bot });
  const onNewMessage = pipeline.handlerFor();
  const output = new CollectingOutputChannel();
  const first = await onNewMessage.enqueue(message('hi', 'u', output, 'Ev01'));
  const second = await onNewMessage.enqueue(message('hi', 'u', output, 'Ev01'));
  t.false(first.duplicate);
  t.true(second.duplicate);
  t.is(await second.done, 'duplicate');
  t.is(await first.done, 'handled');
  t.is(await onNewMessage(message('hi', 'u', output, 'Ev01')), 'duplicate');
  t.deepEqual(calls, ['hi']);
  t.deepEqual(texts(output), ['hi']);
});

test('the same id on another channel is not a duplicate; messages without an id never are', async (t) => {
  const { bot, calls } = countingBot();
  const pipeline = new Pipeline({ bot });
  const onNewMessage = pipeline.handlerFor();
  const output = new CollectingOutputChannel();
  t.is(await onNewMessage(message('a', 'u', output, '1', 'slack')), 'handled');
  t.is(await onNewMessage(message('b', 'u', output, '1', 'telegram')), 'handled');
  t.is(await onNewMessage(message('c', 'u', output, '1', 'slack')), 'duplicate');
  t.is(await onNewMessage(message('d', 'u', output)), 'handled');
  t.is(await onNewMessage(message('d', 'u', output)), 'handled');
  t.deepEqual(calls, ['a', 'b', 'd', 'd']);
});

test('of concurrent deliveries of one id, exactly one is processed', async (t) => {
  const { bot, calls } = countingBot();
  const pipeline = new Pipeline({ bot });
  const onNewMessage = pipeline.handlerFor();
  const output = new CollectingOutputChannel();
  // Retries may come from another sender id guess or another instance; the id alone decides.
  const accepted = await Promise.all(Array.from({ length: 8 }, (_, i) => onNewMessage.enqueue(message('once', `u${i % 2}`, output, 'same'))));
  t.is(accepted.filter((a) => !a.duplicate).length, 1);
  const outcomes = await Promise.all(accepted.map((a) => a.done));
  t.is(outcomes.filter((o) => o === 'handled').length, 1);
  t.is(outcomes.filter((o) => o === 'duplicate').length, 7);
  t.deepEqual(calls, ['once']);
});

test('a message id is forgotten after the dedup TTL', async (t) => {
  let now = 1_000_000;
  const store = new MemoryStore(() => now);
  const { bot, calls } = countingBot();
  const pipeline = new Pipeline({ bot, store, dedupTtlMs: 10 * 60_000 });
  const onNewMessage = pipeline.handlerFor();
  const output = new CollectingOutputChannel();
  t.is(await onNewMessage(message('1', 'u', output, 'mid.1')), 'handled');
  now += 10 * 60_000 - 1;
  t.is(await onNewMessage(message('2', 'u', output, 'mid.1')), 'duplicate', 'still remembered just before the TTL');
  now += 1;
  t.is(await onNewMessage(message('3', 'u', output, 'mid.1')), 'handled', 'forgotten at the TTL');
  t.is(await onNewMessage(message('4', 'u', output, 'mid.1')), 'duplicate', 'and remembered again');
  t.deepEqual(calls, ['1', '3']);
});

test('the default dedup window is at least 10 minutes', async (t) => {
  let now = 0;
  const pipeline = new Pipeline({ bot: echo, store: new MemoryStore(() => now) });
  const onNewMessage = pipeline.handlerFor();
  const output = new CollectingOutputChannel();
  await onNewMessage(message('1', 'u', output, 'x'));
  now += 10 * 60_000;
  t.is(await onNewMessage(message('2', 'u', output, 'x')), 'duplicate');
});

test('a failing dedup store does not lose the message', async (t) => {
  const logs = captureLogs();
  const store: Store = {
    claim: async () => {
      throw new Error('redis down');
    },
    release: async () => {},
  };
  const { bot, calls } = countingBot();
  const pipeline = new Pipeline({ bot, store, logger: logs.logger });
  t.is(await pipeline.handlerFor()(message('x', 'u', new CollectingOutputChannel(), 'id')), 'handled');
  t.deepEqual(calls, ['x']);
  t.truthy(logs.lines().find((line) => line.msg === 'dedup store failed; processing the message anyway'));
});

test('MemoryStore: claim is first-come, release forgets, expired keys are swept', async (t) => {
  let now = 0;
  const store = new MemoryStore(() => now);
  t.true(await store.claim('a', 100));
  t.false(await store.claim('a', 100));
  await store.release('a');
  t.true(await store.claim('a', 100));
  const claims = await Promise.all(Array.from({ length: 5 }, () => store.claim('b', 100)));
  t.is(claims.filter(Boolean).length, 1);
  now = 100;
  t.true(await store.claim('b', 100), 'expired exactly at the TTL');
  // Many expired keys are swept as the map grows, so memory stays bounded.
  for (let i = 0; i < 3000; i++) await store.claim(`k${i}`, 10);
  now = 1_000;
  for (let i = 0; i < 3000; i++) await store.claim(`n${i}`, 10);
  t.true(store.size < 4000, `size ${store.size}`);
});

// ---------------------------------------------------------------------------------------------------------------------
// Typing and flush

test('no typing indicator for a bot that answers quickly', async (t) => {
  const pipeline = new Pipeline({ bot: echo, typingDelayMs: 20, typingIntervalMs: 30 });
  const output = new RecordingOutput();
  await pipeline.handlerFor()(message('x', 'u', output));
  await sleep(80);
  t.is(output.typing, 0);
  t.deepEqual(output.events, ['text:echo: x', 'flush:u']);
});

test('a slow bot gets a typing indicator after the delay, repeated while it works, and stopped after', async (t) => {
  const output = new RecordingOutput();
  const pipeline = new Pipeline({
    bot: {
      // Works until the indicator was shown three times (or gives up after 3 s): no race with the timers.
      handle: async () => {
        await until(() => output.typing >= 3);
        return [{ text: 'slow answer' }];
      },
    },
    typingDelayMs: 20,
    typingIntervalMs: 30,
  });
  await pipeline.handlerFor()(message('x', 'u9', output));
  t.true(output.typing >= 3, `typing shown ${output.typing} times`);
  t.true(output.events.slice(0, output.typing).every((e) => e === 'typing:u9'), 'typing comes before the answer');
  t.deepEqual(output.events.slice(output.typing), ['text:slow answer', 'flush:u9']);
  const shown = output.typing;
  await sleep(100);
  t.is(output.typing, shown, 'no typing after the bot finished');
});

test('a failing typing indicator is only logged at debug and does not disturb the answer', async (t) => {
  const logs = captureLogs();
  class BadTyping extends CollectingOutputChannel {
    attempts = 0;
    override async sendTyping(): Promise<void> {
      this.attempts++;
      throw new Error('typing endpoint 500');
    }
  }
  const output = new BadTyping();
  const pipeline = new Pipeline({
    bot: {
      handle: async () => {
        await until(() => output.attempts >= 2);
        return [{ text: 'ok' }];
      },
    },
    typingDelayMs: 10,
    typingIntervalMs: 15,
    logger: logs.logger,
  });
  t.is(await pipeline.handlerFor()(message('x', 'u', output)), 'handled');
  t.true(output.attempts >= 2, 'tried again after a failure');
  t.deepEqual(texts(output), ['ok']);
  const typingLogs = logs.lines().filter((line) => line.msg === 'typing indicator failed');
  t.true(typingLogs.length >= 1);
  t.true(typingLogs.every((line) => line.level === 20));
});

test('a typing indicator that throws synchronously or returns no promise does not crash the process', async (t) => {
  class SyncThrow extends CollectingOutputChannel {
    calls = 0;
    // Written without `async`, as a plain-JS channel might: throws instead of rejecting.
    override sendTyping(): Promise<void> {
      this.calls++;
      throw new Error('sync typing failure');
    }
  }
  class NoPromise extends CollectingOutputChannel {
    calls = 0;
    override sendTyping(): Promise<void> {
      this.calls++;
      return undefined as unknown as Promise<void>;
    }
  }
  const a = new SyncThrow();
  const b = new NoPromise();
  const pipeline = new Pipeline({
    bot: {
      handle: async (m) => {
        const output = m.senderId === 'a' ? a : b;
        await until(() => output.calls >= 2);
        return [{ text: 'ok' }];
      },
    },
    typingDelayMs: 5,
    typingIntervalMs: 10,
  });
  const onNewMessage = pipeline.handlerFor();
  t.deepEqual(await Promise.all([onNewMessage(message('x', 'a', a)), onNewMessage(message('x', 'b', b))]), ['handled', 'handled']);
  t.true(a.calls >= 2 && b.calls >= 2, 'the indicator kept being shown');
  t.deepEqual(texts(a), ['ok']);
  t.deepEqual(texts(b), ['ok']);
});

test('flush is called once per message, after all its answers, with the recipient', async (t) => {
  const pipeline = new Pipeline({ bot: { handle: (m) => [{ text: `${m.text}1` }, { text: `${m.text}2` }] } });
  const onNewMessage = pipeline.handlerFor();
  const output = new RecordingOutput();
  await Promise.all([onNewMessage(message('a', 'r1', output)), onNewMessage(message('b', 'r1', output))]);
  t.deepEqual(output.events, ['text:a1', 'text:a2', 'flush:r1', 'text:b1', 'text:b2', 'flush:r1']);
});

test('drain waits for every queued message', async (t) => {
  const { bot, calls } = countingBot();
  const pipeline = new Pipeline({ bot });
  const onNewMessage = pipeline.handlerFor();
  for (let i = 0; i < 5; i++) void onNewMessage.enqueue(message(`m${i}`, `u${i % 2}`, new CollectingOutputChannel()));
  // Let the enqueues be accepted, then drain.
  await sleep(0);
  t.true(pipeline.activeSenders > 0);
  await pipeline.drain();
  t.is(calls.length, 5);
  t.is(pipeline.activeSenders, 0);
});

test('with botConcurrency, at most that many bot calls run at once, every sender in order, and all are processed', async (t) => {
  const next = random(13);
  let running = 0;
  let peak = 0;
  const bot: Bot = {
    handle: async (m) => {
      running++;
      peak = Math.max(peak, running);
      await sleep(Math.floor(next() * 15));
      running--;
      return [{ text: m.text }];
    },
  };
  const pipeline = new Pipeline({ bot, botConcurrency: 3, botWait: 100 });
  const outputs = new Map<string, CollectingOutputChannel>();
  const dones: Array<Promise<Outcome>> = [];
  for (let i = 0; i < 5; i++) {
    for (let s = 0; s < 12; s++) {
      const sender = `s${s}`;
      if (!outputs.has(sender)) outputs.set(sender, new CollectingOutputChannel());
      dones.push((await pipeline.enqueue(message(`${sender}-${i}`, sender, outputs.get(sender)))).done);
    }
  }
  t.true((await Promise.all(dones)).every((o) => o === 'handled'));
  t.is(peak, 3);
  t.is(pipeline.peakConcurrency, 3);
  for (const [sender, output] of outputs) t.deepEqual(texts(output), [0, 1, 2, 3, 4].map((i) => `${sender}-${i}`));
  t.is(pipeline.activeSenders, 0);
});

test('a bot slot is free again once the bot has answered: a slow platform send does not hold up another sender\'s bot call', async (t) => {
  let release!: () => void;
  const platform = new Promise<void>((resolve) => (release = resolve));
  class SlowPlatform extends OutputChannel {
    readonly sent: string[] = [];
    async sendTextMessage(_recipient: string, text: string): Promise<void> {
      if (text === 'answer a1') await platform;
      this.sent.push(text);
    }
  }
  const asked: string[] = [];
  const bot: Bot = { handle: async (m) => (asked.push(m.text), [{ text: `answer ${m.text}` }]) };
  const pipeline = new Pipeline({ bot, botConcurrency: 1, botWait: 10 });
  const a = new SlowPlatform();
  const b = new SlowPlatform();
  const doneA1 = (await pipeline.enqueue(message('a1', 'a', a))).done;
  const doneA2 = (await pipeline.enqueue(message('a2', 'a', a))).done;
  const doneB = (await pipeline.enqueue(message('b1', 'b', b))).done;
  t.is(await doneB, 'handled', 'b was asked and answered while a1\'s answer was still being sent');
  t.deepEqual(b.sent, ['answer b1']);
  t.deepEqual(asked, ['a1', 'b1'], 'a2 waits for its turn: the sender\'s order holds');
  t.is(pipeline.activeBotCalls, 0, 'no bot call is running while a1\'s answer is sent');
  release();
  t.deepEqual([await doneA1, await doneA2], ['handled', 'handled']);
  t.deepEqual(a.sent, ['answer a1', 'answer a2']);
  t.is(pipeline.peakConcurrency, 1);
});

/** A bot that notes each message it is given and holds every one until `release()`, answering `answers(text)`. */
function gatedBot(answers: (text: string) => BotMessage[] = () => []): { bot: Bot; seen: string[]; release: () => void } {
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const seen: string[] = [];
  const bot: Bot = { handle: async (m) => { seen.push(m.text); await gate; return answers(m.text); } };
  return { bot, seen, release };
}

test('a message whose signal aborts while it waits is dropped; the sender\'s other messages go on', async (t) => {
  const { bot, seen, release } = gatedBot();
  const pipeline = new Pipeline({ bot });
  const output = new CollectingOutputChannel();
  const first = await pipeline.enqueue(message('one', 'u', output));
  const abort = new AbortController();
  const second = await pipeline.enqueue(message('two', 'u', output), undefined, { signal: abort.signal });
  const third = await pipeline.enqueue(message('three', 'u', output));
  abort.abort();
  t.is(await second.done, 'dropped');
  release();
  t.is(await first.done, 'handled');
  t.is(await third.done, 'handled');
  t.deepEqual(seen, ['one', 'three']);
  const late = new AbortController();
  late.abort();
  t.is(await (await pipeline.enqueue(message('four', 'u', output), undefined, { signal: late.signal })).done, 'dropped');
  t.deepEqual(seen, ['one', 'three']);
});

// ---------------------------------------------------------------------------------------------------------------------
// Reply addresses: the output rebuilt by the channel from the message's data

/** A channel that rebuilds a collecting output per address, remembering what it was asked for. */
function addressBook() {
  const outputs = new Map<string, RecordingOutput>();
  const asked: unknown[] = [];
  const source = {
    outputChannel(replyTo: Record<string, unknown>) {
      asked.push(replyTo);
      if (typeof replyTo.room !== 'string') throw new TypeError('reply address without "room"');
      let output = outputs.get(replyTo.room);
      if (!output) outputs.set(replyTo.room, (output = new RecordingOutput()));
      return output;
    },
  };
  return { source, outputs, asked };
}

test('a message with a reply address is answered through the output its channel rebuilds from it, typing included', async (t) => {
  const book = addressBook();
  const pipeline = new Pipeline({ bot: { handle: async (m) => (await sleep(60), [{ text: `echo: ${m.text}` }]) }, typingDelayMs: 10, typingIntervalMs: 1_000 });
  const outcome = await pipeline.handlerFor(undefined, book.source)(new UserMessage({ text: 'hi', senderId: 'u1', replyTo: { room: 'r1' }, inputChannel: 'test' }));
  t.is(outcome, 'handled');
  t.deepEqual(book.asked, [{ room: 'r1' }]);
  t.deepEqual(book.outputs.get('r1')!.events, ['typing:u1', 'text:echo: hi', 'flush:u1']);
});

test('with both a live output and an address, the address wins; a message rebuilt from JSON is answered the same', async (t) => {
  const book = addressBook();
  const live = new RecordingOutput();
  const handler = pipelineFor(book.source);
  const original = new UserMessage({ text: 'one', senderId: 'u1', output: live, replyTo: { room: 'r1' }, inputChannel: 'test' });
  t.is(await handler(original), 'handled');
  t.is(await handler(UserMessage.fromJSON(JSON.parse(JSON.stringify(new UserMessage({ text: 'two', senderId: 'u1', replyTo: { room: 'r1' }, inputChannel: 'test' }))))), 'handled');
  t.deepEqual(live.events, []);
  t.deepEqual(texts(book.outputs.get('r1')!), ['echo: one', 'echo: two']);
});

function pipelineFor(source: ReturnType<typeof addressBook>['source'], logger?: ReturnType<typeof captureLogs>['logger']) {
  return new Pipeline({ bot: echo, logger }).handlerFor(logger, source);
}

test('a channel without outputChannel still answers through the live output (third-party channels keep working)', async (t) => {
  const live = new RecordingOutput();
  const handler = new Pipeline({ bot: echo }).handlerFor(undefined, {});
  t.is(await handler(new UserMessage({ text: 'hi', senderId: 'u1', output: live, replyTo: { room: 'r1' }, inputChannel: 'test' })), 'handled');
  t.deepEqual(texts(live), ['echo: hi']);
});

test('an address the channel refuses is logged, and the live output answers when there is one; without one the message fails', async (t) => {
  const logs = captureLogs();
  const book = addressBook();
  const live = new RecordingOutput();
  const handler = pipelineFor(book.source, logs.logger);
  t.is(await handler(new UserMessage({ text: 'hi', senderId: 'u1', output: live, replyTo: { elsewhere: true }, inputChannel: 'test' })), 'handled');
  t.deepEqual(texts(live), ['echo: hi']);
  t.is(await handler(new UserMessage({ text: 'lost', senderId: 'u2', replyTo: { elsewhere: true }, inputChannel: 'test' })), 'failed');
  const errors = logs.lines().filter((line) => line.level === 50).map((line) => line.msg);
  t.deepEqual(errors, [
    'the channel could not rebuild the output from the reply address',
    'the channel could not rebuild the output from the reply address',
    'message has no output channel; the bot cannot answer',
  ]);
});

test('a message with an address whose channel cannot rebuild outputs says so in the log', async (t) => {
  const logs = captureLogs();
  const handler = new Pipeline({ bot: echo, logger: logs.logger }).handlerFor(logs.logger);
  t.is(await handler(new UserMessage({ text: 'hi', senderId: 'u1', replyTo: { room: 'r1' }, inputChannel: 'test' })), 'failed');
  t.true(logs.lines().some((line) => line.level === 50 && line.msg === 'message has a reply address, but its channel has no outputChannel(replyTo); the bot cannot answer'));
});

// ---------------------------------------------------------------------------------------------------------------------
// InputChannel.answerInResponse: a channel answering in the HTTP response drops a waiting message whose client hung up

/** A channel exposing the protected helper, and a response whose client can hang up. */
class ResponseChannel extends InputChannel {
  name(): string {
    return 'resp';
  }
  router(): never {
    throw new Error('not mounted');
  }
  answer(res: EventEmitter & { writableEnded: boolean }, onNewMessage: ReturnType<Pipeline['handlerFor']>, message: UserMessage) {
    return this.answerInResponse({ res: res as never }, onNewMessage, message);
  }
}
const response = () => Object.assign(new EventEmitter(), { writableEnded: false });

test('answerInResponse: a message still waiting when its client hangs up is dropped (the bot never sees it); one with the bot is finished; listeners are removed', async (t) => {
  const { bot, seen, release } = gatedBot((text) => [{ text: `re: ${text}` }]);
  const pipeline = new Pipeline({ bot });
  const onNewMessage = pipeline.handlerFor();
  const channel = new ResponseChannel();
  const first = response();
  const firstOutput = new CollectingOutputChannel();
  const answered = channel.answer(first, onNewMessage, message('one', 'u', firstOutput));
  const second = response();
  const waiting = channel.answer(second, onNewMessage, message('two', 'u', new CollectingOutputChannel()));
  await new Promise((resolve) => setImmediate(resolve));
  t.deepEqual(seen, ['one']);
  // The first client hangs up while its message is with the bot: it is finished all the same.
  first.emit('close');
  second.emit('close');
  t.is(await waiting, 'dropped');
  release();
  t.is(await answered, 'handled');
  t.deepEqual(firstOutput.messages.map((m) => m.text), ['re: one']);
  t.deepEqual(seen, ['one']);
  t.is(first.listenerCount('close'), 0);
  t.is(second.listenerCount('close'), 0);
});

test('answerInResponse: a client that hangs up while the message is being accepted still takes it out of the queue; a finished response is not a hang-up', async (t) => {
  const { bot, seen, release } = gatedBot();
  const pipeline = new Pipeline({ bot });
  const handler = pipeline.handlerFor();
  // The hang-up comes while `enqueue` is still settling (before the channel holds `accepted`).
  const res = response();
  const onNewMessage = Object.assign(handler, {
    enqueue: async (m: UserMessage) => {
      const accepted = await pipeline.enqueue(m);
      res.emit('close');
      return accepted;
    },
  });
  const channel = new ResponseChannel();
  const holding = channel.answer(response(), handler, message('one', 'u', new CollectingOutputChannel()));
  t.is(await channel.answer(res, onNewMessage, message('two', 'u', new CollectingOutputChannel())), 'dropped');
  // A response already written whose socket then closes: the message (with the bot) is finished as usual.
  const ended = Object.assign(response(), { writableEnded: true });
  const third = channel.answer(ended, handler, message('three', 'u', new CollectingOutputChannel()));
  ended.emit('close');
  release();
  t.is(await holding, 'handled');
  t.is(await third, 'handled');
  t.deepEqual(seen, ['one', 'three']);
});
