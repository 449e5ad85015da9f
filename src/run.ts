#!/usr/bin/env node
import { banner, parseCli, start, USAGE, type Started } from './cli.js';
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

  // Signals are handled from the start: one that arrives while starting stops the server as soon as it is up.
  let started: Started | undefined;
  let stopRequested: string | undefined;
  let stopping = false;
  const stop = (signal: string) => {
    if (!started) {
      if (stopRequested) process.exit(signal === 'SIGINT' ? 130 : 1);
      stopRequested = signal;
      return;
    }
    const { logger, server } = started;
    if (stopping) {
      // A second signal: the operator does not want to wait for the drain.
      if (signal === 'SIGINT' || signal === 'SIGTERM') {
        logger.error({ signal }, 'second signal: exiting without finishing the shutdown');
        process.exit(signal === 'SIGINT' ? 130 : 1);
      }
      return;
    }
    stopping = true;
    logger.info({ signal, graceMs: server.shutdownGraceMs }, 'shutting down: finishing open requests and queued messages');
    server.close().then(
      // Exit code 1 when the grace ran out and work was abandoned (each piece logged at error).
      (report) => process.exit(report.abandoned > 0 ? 1 : 0),
      (error: unknown) => {
        logger.error({ err: error }, 'error while shutting down');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));

  started = await start(parsed.options);
  started.server.onShutdownRequest = () => stop('end of input');
  print(banner(started).join('\n'));
  if (stopRequested) stop(stopRequested);
}

main().catch((error: unknown) => {
  if (error instanceof ConfigError) fail(error.message, 2);
  else fail(`failed to start: ${(error as Error)?.stack ?? String(error)}`);
});
