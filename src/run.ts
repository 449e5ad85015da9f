#!/usr/bin/env node
import { banner, parseCli, start, USAGE } from './cli.js';
import { ConfigError } from './errors.js';
import { VERSION } from './version.js';

const print = (text: string): void => void process.stdout.write(`${text}\n`);
const fail = (text: string, code = 1): never => {
  process.stderr.write(`switchboard: ${text}\n`);
  process.exit(code);
};

async function main(): Promise<void> {
  const parsed = parseCli(process.argv.slice(2));
  if (parsed.kind === 'help') return print(USAGE);
  if (parsed.kind === 'version') return print(VERSION);
  const started = await start(parsed.options);
  print(banner(started).join("\n"));

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    started.logger.info({ signal }, 'shutting down');
    started.server.close().then(
      () => process.exit(0),
      (error: unknown) => {
        started.logger.error({ err: error }, 'error while shutting down');
        process.exit(1);
      },
    );
  };
  started.server.onShutdownRequest = () => stop('end of input');
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

main().catch((error: unknown) => {
  if (error instanceof ConfigError) fail(error.message, 2);
  else fail(`failed to start: ${(error as Error)?.stack ?? String(error)}`);
});
