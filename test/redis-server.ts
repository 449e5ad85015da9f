/**
 * A throwaway redis-server for tests: its own process on a free 127.0.0.1 port, nothing written to disk, killed in
 * teardown. `.ci/run` installs Debian's redis-server; under `CI` a missing one makes the Redis tests fail, elsewhere
 * they are skipped with a message saying how to run them.
 */
import type { ExecutionContext, TestFn } from 'ava';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { connect, createServer } from 'node:net';

/** Whether a `redis-server` binary is on the PATH. */
export const hasRedisServer: boolean = spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0;

/**
 * `test` when redis-server is there or under CI (where its absence must fail, never skip); otherwise `test.skip`,
 * after saying so once.
 */
export function redisTest<Context>(test: TestFn<Context>): TestFn<Context> | TestFn<Context>['skip'] {
  if (hasRedisServer || process.env.CI) return test;
  process.stderr.write('redis-server is not installed: skipping the Redis tests (apt-get install redis-server to run them)\n');
  return test.skip;
}

/** A free TCP port on 127.0.0.1 (bound, then released). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** True when something on `port` answers PING with +PONG (or, with a password set, asks for it); false otherwise. */
function pong(port: number, passworded = false): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let reply = '';
    socket.setTimeout(500, () => socket.destroy());
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk: Buffer) => {
      reply += chunk.toString();
      if (reply.includes('\r\n')) socket.end();
    });
    socket.on('error', () => undefined);
    socket.on('close', () => resolve(reply.startsWith('+PONG') || (passworded && reply.startsWith('-NOAUTH'))));
  });
}

export class RedisServer {
  private child: ChildProcess | undefined;
  private stderr = '';

  private constructor(readonly port: number, private readonly args: string[]) {}

  /** Starts a redis-server on a free port (with these extra arguments); stopped in the test's teardown. */
  static async start(t: ExecutionContext, args: string[] = []): Promise<RedisServer> {
    const server = new RedisServer(await freePort(), args);
    t.teardown(() => server.stop());
    await server.restart();
    return server;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** (Re)starts the server on its port, and waits until it answers PING (10 s at most). */
  async restart(): Promise<void> {
    if (this.child) return;
    const child = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...this.args], { stdio: ['ignore', 'ignore', 'pipe'] });
    this.child = child;
    child.stderr!.on('data', (chunk: Buffer) => (this.stderr += chunk.toString()));
    const spawned = new Promise<void>((resolve, reject) => {
      child.once('error', reject);
      child.once('spawn', resolve);
    });
    await spawned.catch((error: NodeJS.ErrnoException) => {
      this.child = undefined;
      throw error.code === 'ENOENT'
        ? new Error(`redis-server is not installed${process.env.CI ? ' (CI is set: the Redis tests must run)' : ''}; install it with "apt-get install -y redis-server"`)
        : error;
    });
    const deadline = Date.now() + 10_000;
    while (!(await pong(this.port, this.args.includes('--requirepass')))) {
      if (child.exitCode !== null || Date.now() > deadline) throw new Error(`redis-server did not start on port ${this.port}: ${this.stderr}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  /** Freezes the server (SIGSTOP): connections stay open, nothing answers — a hung Redis or a partition. */
  pause(): void {
    this.child?.kill('SIGSTOP');
  }

  resume(): void {
    this.child?.kill('SIGCONT');
  }

  /** Kills the server at once (SIGKILL: an outage, not a shutdown) and waits until it is gone. */
  async stop(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    child.kill('SIGKILL');
    await exited;
  }
}
