/** A throwaway project directory, as a user of Switchboard would have: its own modules and node_modules. */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (dist/test/fixtures.js → ../..). */
export const PACKAGE_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** The CLI as built (`node dist/run.js`). */
export const RUN = path.join(PACKAGE_ROOT, 'dist', 'run.js');

/** Runs the CLI to completion (killed after 30 s): its exit code and everything it printed. */
export async function runCli(args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [RUN, ...args], { cwd: options.cwd ?? PACKAGE_ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...options.env } });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  // 'close', not 'exit': only then has all of the child's output been read.
  const [code] = (await once(child, 'close')) as [number | null];
  clearTimeout(timer);
  return { code, stdout, stderr };
}

export interface Project {
  dir: string;
  write(file: string, text: string): string;
  remove(): void;
}

/** A temp directory whose node_modules/switchboard links to this package, so `import 'switchboard'` resolves. */
export function makeProject(): Project {
  const dir = mkdtempSync(path.join(tmpdir(), 'switchboard-test-'));
  mkdirSync(path.join(dir, 'node_modules'), { recursive: true });
  symlinkSync(PACKAGE_ROOT, path.join(dir, 'node_modules', 'switchboard'), 'dir');
  return {
    dir,
    write(file, text) {
      const full = path.join(dir, file);
      mkdirSync(path.dirname(full), { recursive: true });
      writeFileSync(full, text);
      return full;
    },
    remove() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A plain-JS channel module: echoes the text back through a collecting output, like a tiny rest channel. */
export function echoChannelSource(className: string, name: string, exportStyle: 'default' | 'named' = 'default'): string {
  return `import { InputChannel, CollectingOutputChannel, UserMessage, jsonBody } from 'switchboard';
${exportStyle === 'default' ? 'export default ' : 'export '}class ${className} extends InputChannel {
  name() { return ${JSON.stringify(name)}; }
  router(onNewMessage) {
    const router = this.newRouter();
    router.post('/webhook', async (ctx) => {
      const body = jsonBody(ctx);
      const output = new CollectingOutputChannel();
      await onNewMessage(new UserMessage({ text: String(body.text ?? ''), senderId: String(body.from ?? 'someone'), output, inputChannel: this.name() }));
      ctx.body = { channel: ${JSON.stringify(className)}, answers: output.messages };
    });
    return router;
  }
}
`;
}
