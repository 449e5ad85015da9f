// The pure parts of `npm run bench` (bench/lib.mjs): the /proc parsers, the summaries over rounds, and the table and
// SVG rendered from a fixed result object. Nothing here is timed; speed is measured by the bench itself.
import test from 'ava';

interface Row {
  key: string;
  group: string;
  label: string;
  better: 'higher' | 'lower';
  target?: number;
  perRound: number[];
  min: number;
  median: number;
  max: number;
  n: number;
  met?: boolean;
}
interface BenchLib {
  parseProcStat(text: string): { utime: number; stime: number; ticks: number };
  parseProcStatusRss(text: string): number;
  percentile(sorted: number[], p: number): number;
  summarize(values: number[]): { min: number; median: number; max: number; n: number };
  ratios(rounds: Record<string, Record<string, number>>[], comparisons?: unknown[]): Row[];
  renderTable(rows: Row[]): string;
  renderAbsolute(rounds: Record<string, Record<string, number>>[]): string;
  renderSvg(rows: Row[], options?: { title?: string; subtitle?: string }): string;
}

// dist/test/bench.test.js → bench/lib.mjs at the root of the repository (plain JavaScript, outside the TS project).
const lib = (await import(new URL('../../bench/lib.mjs', import.meta.url).href)) as BenchLib;

test('parseProcStat reads utime and stime after the last parenthesis, whatever the command name holds', (t) => {
  // Fields 14 and 15 (utime, stime) are 1234 and 56; the name has spaces and a ')' of its own.
  const line = '4242 (node (bench) x) S 1 4242 4242 0 -1 4194560 5000 0 0 0 1234 56 0 0 20 0 11 0 900 1100000000 20000 18446744073709551615 1 1 0 0 0 0 0 4096 134234626 0 0 0 17 1 0 0 0 0 0\n';
  t.deepEqual(lib.parseProcStat(line), { utime: 1234, stime: 56, ticks: 1290 });
  t.throws(() => lib.parseProcStat('no parentheses here'), { message: /command name/ });
  t.throws(() => lib.parseProcStat('1 (x) S 1 2'), { message: /utime/ });
});

test('parseProcStatusRss reads VmRSS in MiB', (t) => {
  t.is(lib.parseProcStatusRss('Name:\tnode\nVmHWM:\t  90000 kB\nVmRSS:\t   81920 kB\nThreads:\t11\n'), 80);
  t.throws(() => lib.parseProcStatusRss('Name:\tnode\n'), { message: /VmRSS/ });
});

test('percentile is nearest-rank and summarize takes the median of the finite values', (t) => {
  const sorted = Array.from({ length: 100 }, (_, i) => i + 1);
  t.is(lib.percentile(sorted, 50), 50);
  t.is(lib.percentile(sorted, 99), 99);
  t.is(lib.percentile([7], 99), 7);
  t.true(Number.isNaN(lib.percentile([], 50)));
  t.deepEqual(lib.summarize([3, Number.NaN, 1, 2, 10]), { min: 1, median: 2.5, max: 10, n: 4 });
  t.deepEqual(lib.summarize([5, 1, 3]), { min: 1, median: 3, max: 5, n: 3 });
});

// Three rounds of two comparisons; the third comparison's peer was never measured.
const rounds = [
  { 'switchboard.rest': { rps: 900, cpuUsPerRequest: 300 }, 'koa.rest': { rps: 1000, cpuUsPerRequest: 200 } },
  { 'switchboard.rest': { rps: 1100, cpuUsPerRequest: 220 }, 'koa.rest': { rps: 1000, cpuUsPerRequest: 200 } },
  { 'switchboard.rest': { rps: 500, cpuUsPerRequest: 400 }, 'koa.rest': { rps: 1000, cpuUsPerRequest: 200 } },
];
const comparisons = [
  { key: 'rps', group: 'rest vs Koa', label: 'req/s', of: ['switchboard.rest', 'koa.rest', 'rps'], better: 'higher', target: 0.95 },
  { key: 'cpu', group: 'rest vs Koa', label: 'CPU <per> request', of: ['switchboard.rest', 'koa.rest', 'cpuUsPerRequest'], better: 'lower', target: 1.2 },
  { key: 'none', group: 'rest vs nobody', label: 'req/s', of: ['switchboard.rest', 'nobody.rest', 'rps'], better: 'higher' },
];

test('ratios gives each comparison per round, its min/median/max and whether the target is met', (t) => {
  const [rps, cpu, none] = lib.ratios(rounds, comparisons);
  t.deepEqual(rps!.perRound, [0.9, 1.1, 0.5]);
  t.is(rps!.median, 0.9);
  t.is(rps!.min, 0.5);
  t.is(rps!.met, false);
  t.deepEqual(cpu!.perRound, [1.5, 1.1, 2]);
  t.is(cpu!.median, 1.5);
  t.is(cpu!.met, false);
  t.true(Number.isNaN(none!.median));
  t.is(none!.met, undefined);
});

test('renderTable prints one markdown row per comparison with median, min, max and the target', (t) => {
  const table = lib.renderTable(lib.ratios(rounds, comparisons));
  const lines = table.split('\n');
  t.is(lines.length, 5);
  t.is(lines[2], '| rest vs Koa: req/s | 0.90 | 0.50 | 1.10 | higher | ≥ 0.95 ✗ |');
  t.is(lines[3], '| rest vs Koa: CPU <per> request | 1.50 | 1.10 | 2.00 | lower | ≤ 1.2 ✗ |');
  t.is(lines[4], '| rest vs nobody: req/s | — | — | — | higher |  |');
  t.regex(lib.renderAbsolute(rounds), /\| switchboard\.rest \| 900 \|/);
});

test('renderSvg draws a bar per measured comparison, escapes the text and leaves out what was not measured', (t) => {
  const svg = lib.renderSvg(lib.ratios(rounds, comparisons), { subtitle: 'npm run bench & co' });
  t.true(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"'));
  t.true(svg.trimEnd().endsWith('</svg>'));
  // One background rect, then one bar per comparison with a finite median.
  t.is(svg.match(/<rect /g)?.length, 3);
  t.true(svg.includes('CPU &lt;per&gt; request'));
  t.true(svg.includes('npm run bench &amp; co'));
  t.false(svg.includes('nobody'));
  t.true(svg.includes('>0.90 ↑<'));
  t.true(svg.includes('>1.50 ↓<'));
  // Every element opened is closed: the file is one well-formed svg root.
  t.is(svg.match(/<text /g)?.length, svg.match(/<\/text>/g)?.length);
});
