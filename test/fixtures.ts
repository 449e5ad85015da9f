/** A throwaway project directory, as a user of Switchboard would have: its own modules and node_modules. */
import { mkdtempSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (dist/test/fixtures.js → ../..). */
export const PACKAGE_ROOT = fileURLToPath(new URL('../../', import.meta.url));

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
