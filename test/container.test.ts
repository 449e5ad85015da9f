/**
 * The container files cannot be built here (no registry), so this checks what can be checked: what the Dockerfile
 * copies exists and is not excluded from the build context, its runtime shape (non-root, readiness health check,
 * exec-form CMD), the compose file and Prometheus' configuration parse and point at each other, and every query of
 * the Grafana dashboard names a metric a live server's `/metrics` exposes, with labels it has.
 */
import test from 'ava';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { load } from 'js-yaml';
import { parseCli } from '#src/cli.js';
import { startTestHost } from 'switchboard/testing';
import RestInput from '../channels/rest/index.js';
import SocketIOInput from '../channels/socketio/index.js';
import { PACKAGE_ROOT } from './fixtures.js';

const read = (file: string) => readFileSync(path.join(PACKAGE_ROOT, file), 'utf8');

/** The Dockerfile's instructions, continuation lines joined, comments dropped. */
function instructions(): Array<{ op: string; args: string }> {
  return read('Dockerfile')
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => {
      const [op, ...rest] = line.split(/\s+/);
      return { op: op!.toUpperCase(), args: rest.join(' ') };
    });
}

/** Whether .dockerignore keeps `file` out of the build context (its last matching pattern wins, `!` re-includes). */
function dockerIgnored(file: string): boolean {
  const patterns = read('.dockerignore').split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
  const parts = file.split('/');
  const candidates = parts.map((_, i) => parts.slice(0, i + 1).join('/'));
  let ignored = false;
  for (const raw of patterns) {
    const negated = raw.startsWith('!');
    const pattern = (negated ? raw.slice(1) : raw).replace(/^\//, '');
    const source = pattern.split('**').map((piece) => piece.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]')).join('.*');
    const regex = new RegExp(`^${source}$`);
    if (candidates.some((candidate) => regex.test(candidate))) ignored = !negated;
  }
  return ignored;
}

test('the Dockerfile: two stages, npm ci, only files that exist and are in the build context, non-root, health check on readiness, SIGTERM to node', (t) => {
  const steps = instructions();
  const froms = steps.filter((s) => s.op === 'FROM');
  t.is(froms.length, 2);
  t.regex(froms[0]!.args, /^node:20\S* AS build$/i);
  t.regex(froms[1]!.args, /^node:20\S* AS runtime$/i);
  const runtimeAt = steps.indexOf(froms[1]!);
  const build = steps.slice(0, runtimeAt);
  const runtime = steps.slice(runtimeAt);
  t.true(build.some((s) => s.op === 'RUN' && /\bnpm ci\b/.test(s.args)));
  t.true(build.some((s) => s.op === 'RUN' && /\btsc -b\b/.test(s.args)));
  t.true(runtime.some((s) => s.op === 'RUN' && /\bnpm ci\b.*--omit=dev/.test(s.args)));
  t.false(runtime.some((s) => s.op === 'RUN' && /\btsc\b/.test(s.args)), 'no compiler in the runtime image');

  // Every COPY from the context names files that exist and that .dockerignore lets through.
  const copies = steps.filter((s) => s.op === 'COPY' && !s.args.startsWith('--from'));
  t.true(copies.length >= 4);
  for (const copy of copies) {
    const sources = copy.args.split(/\s+/).slice(0, -1);
    for (const source of sources) {
      t.true(existsSync(path.join(PACKAGE_ROOT, source)), `${source} exists`);
      t.false(dockerIgnored(source), `${source} is in the build context`);
    }
  }
  // What the runtime needs at run time: the compiled entry point comes from the build stage's tsc (src/run.ts →
  // dist/run.js), the default bot from examples/moodbot.
  t.true(runtime.some((s) => s.op === 'COPY' && s.args === '--from=build /app/dist ./dist'));
  t.true(existsSync(path.join(PACKAGE_ROOT, 'src/run.ts')));
  t.true(runtime.some((s) => s.op === 'COPY' && s.args.startsWith('examples/moodbot ')));
  // Never in the context: node_modules, a local credentials file, the repository.
  for (const excluded of ['node_modules', 'credentials.yml', '.git', 'dist']) t.true(dockerIgnored(excluded), excluded);

  const user = runtime.find((s) => s.op === 'USER');
  t.truthy(user);
  t.notRegex(user!.args, /^(root|0)(:|$)/);
  const health = runtime.find((s) => s.op === 'HEALTHCHECK');
  t.truthy(health);
  t.regex(health!.args, /CMD \["node", "-e", .*\/health\/ready/);
  t.notRegex(health!.args, /curl|wget/);
  t.is(runtime.find((s) => s.op === 'STOPSIGNAL')?.args, 'SIGTERM');
  // Exec form: node is PID 1 and gets SIGTERM itself (a shell form would put /bin/sh in between).
  t.deepEqual(JSON.parse(runtime.find((s) => s.op === 'CMD')!.args), ['node', 'dist/run.js']);
  // The health check's script is valid JavaScript.
  const script = (JSON.parse(health!.args.slice(health!.args.indexOf('CMD ') + 4)) as string[])[2]!;
  t.notThrows(() => new Function(script));
});

test('docker-compose.yml parses: Switchboard, Redis and Prometheus, scraping the metrics port Switchboard is started with', (t) => {
  const compose = load(read('examples/docker-compose.yml')) as { services: Record<string, Record<string, unknown>> };
  t.deepEqual(Object.keys(compose.services).sort(), ['prometheus', 'redis', 'switchboard']);
  const switchboard = compose.services.switchboard!;
  const build = switchboard.build as { context: string; dockerfile: string };
  t.true(existsSync(path.join(PACKAGE_ROOT, 'examples', build.context, build.dockerfile)));
  const command = switchboard.command as string[];
  t.deepEqual(command.slice(0, 2), ['node', 'dist/run.js']);
  // The command's options are ones the CLI accepts.
  const parsed = parseCli(command.slice(2), {});
  t.is(parsed.kind, 'run');
  const options = parsed.kind === 'run' ? parsed.options : undefined;
  t.is(options?.metricsPort, 9464);
  t.true(options?.metrics);

  const prometheus = compose.services.prometheus!;
  const mount = (prometheus.volumes as string[]).find((v) => v.endsWith(':/etc/prometheus/prometheus.yml:ro'))!;
  const configFile = path.join(PACKAGE_ROOT, 'examples', mount.split(':')[0]!);
  t.true(existsSync(configFile));
  const config = load(readFileSync(configFile, 'utf8')) as { scrape_configs: Array<{ metrics_path?: string; static_configs: Array<{ targets: string[] }> }> };
  const job = config.scrape_configs[0]!;
  t.is(job.metrics_path ?? '/metrics', '/metrics');
  t.deepEqual(job.static_configs[0]!.targets, [`switchboard:${options!.metricsPort}`]);
  t.true((compose.services.redis!.image as string).startsWith('redis:'));
  // Switchboard connects to that Redis (by its service name) once it is healthy.
  const withEnv = parseCli(command.slice(2), switchboard.environment as NodeJS.ProcessEnv);
  t.is(withEnv.kind === 'run' ? withEnv.options.redis : undefined, 'redis://redis:6379');
  t.deepEqual(switchboard.depends_on, { redis: { condition: 'service_healthy' } });
});

test('every query of the Grafana dashboard names a metric /metrics exposes, with labels it has', async (t) => {
  const host = await startTestHost([RestInput.fromCredentials({}), SocketIOInput.fromCredentials({})], { logLevel: 'silent' });
  t.teardown(() => host.close());
  const scrape = await (await fetch(`${host.url}/metrics`)).text();
  // Declared metrics (a labelled counter never incremented has no sample yet, but has its TYPE line).
  const types = new Map<string, string>();
  for (const match of scrape.matchAll(/^# TYPE (\S+) (\S+)$/gm)) types.set(match[1]!, match[2]!);
  const exposed = (name: string) => {
    if (types.has(name)) return true;
    const base = name.replace(/_(bucket|count|sum)$/, '');
    return base !== name && types.get(base) === 'histogram';
  };
  // Labels each metric has: ours from the code, `instance` and `job` from Prometheus, `le` on histogram buckets.
  const known = new Set(['channel', 'outcome', 'action', 'kind', 'result', 'method', 'status_class', 'reason', 'le', 'instance', 'job']);

  const dashboard = JSON.parse(read('examples/grafana-dashboard.json')) as { panels: Array<{ title: string; targets: Array<{ expr: string }> }> };
  const exprs = dashboard.panels.flatMap((p) => p.targets.map((target) => ({ title: p.title, expr: target.expr })));
  t.true(exprs.length >= 10);
  const used = new Set<string>();
  for (const { title, expr } of exprs) {
    const names = [...expr.matchAll(/\b(switchboard_\w+|process_\w+|nodejs_\w+)\b/g)].map((m) => m[1]!);
    t.true(names.length > 0, `${title}: names a metric`);
    for (const name of names) {
      t.true(exposed(name), `${title}: ${name} is exposed`);
      used.add(name.replace(/_(bucket|count|sum)$/, ''));
    }
    const labels = [
      ...[...expr.matchAll(/\bby \(([^)]*)\)/g)].flatMap((m) => m[1]!.split(',').map((l) => l.trim())),
      ...[...expr.matchAll(/[{,]\s*(\w+)\s*(?:=~|!=|!~|=)/g)].map((m) => m[1]!),
    ];
    for (const label of labels) t.true(known.has(label), `${title}: label ${label}`);
  }
  // A panel for each of Switchboard's own metrics.
  for (const name of types.keys()) if (name.startsWith('switchboard_')) t.true(used.has(name), `${name} has a panel`);
});
