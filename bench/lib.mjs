// The pure parts of `npm run bench`: reading /proc, summarising rounds, and rendering the ratios as a markdown table
// and an SVG bar chart. No I/O here, so test/bench.test.ts can check them on a fixed result object.

/**
 * CPU ticks (user and system) of a process from the text of /proc/<pid>/stat. The command name (field 2) is in
 * parentheses and may itself contain spaces and parentheses, so the fields are counted from the last ')'.
 */
export function parseProcStat(text) {
  const end = text.lastIndexOf(')');
  if (end < 0) throw new Error('not a /proc/<pid>/stat line: no command name in parentheses');
  // After ')' come fields 3 (state) onwards: utime is field 14, stime field 15 (proc(5)).
  const fields = text.slice(end + 1).trim().split(/\s+/);
  const utime = Number(fields[14 - 3]);
  const stime = Number(fields[15 - 3]);
  if (!Number.isInteger(utime) || !Number.isInteger(stime)) throw new Error('not a /proc/<pid>/stat line: utime/stime missing');
  return { utime, stime, ticks: utime + stime };
}

/** Resident set size in MiB from the text of /proc/<pid>/status (its VmRSS line, in kB). */
export function parseProcStatusRss(text) {
  const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(text);
  if (!match) throw new Error('no VmRSS line in /proc/<pid>/status');
  return Number(match[1]) / 1024;
}

/** The value at percentile p (0–100) of an ascending array, nearest rank; NaN when empty. */
export function percentile(sorted, p) {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))];
}

/** min, median and max of the finite numbers in values; NaN for all three when there are none. */
export function summarize(values) {
  const finite = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (finite.length === 0) return { min: Number.NaN, median: Number.NaN, max: Number.NaN, n: 0 };
  const mid = finite.length >> 1;
  const median = finite.length % 2 ? finite[mid] : (finite[mid - 1] + finite[mid]) / 2;
  return { min: finite[0], median, max: finite[finite.length - 1], n: finite.length };
}

/**
 * The comparisons the bench reports: each a ratio Switchboard ÷ a peer (or one configuration ÷ another), computed per
 * round from the measurements. `better` says which direction is good; `target` is issue 17's, when it sets one.
 */
export const COMPARISONS = [
  { key: 'rest.rps', group: 'rest + moodbot vs bare Koa', label: 'req/s', of: ['switchboard.rest', 'koa.rest', 'rps'], better: 'higher', target: 0.95 },
  { key: 'rest.cpu', group: 'rest + moodbot vs bare Koa', label: 'CPU per request', of: ['switchboard.rest', 'koa.rest', 'cpuUsPerRequest'], better: 'lower', target: 1.2 },
  { key: 'tg.telegraf.c16.delivered', group: 'Telegram vs Telegraf', label: 'delivered/s, c16', of: ['switchboard.telegram.c16', 'telegraf.telegram.c16', 'deliveredPerSecond'], better: 'higher', target: 1.25 },
  { key: 'tg.telegraf.c64.delivered', group: 'Telegram vs Telegraf', label: 'delivered/s, c64', of: ['switchboard.telegram.c64', 'telegraf.telegram.c64', 'deliveredPerSecond'], better: 'higher', target: 1.25 },
  { key: 'tg.telegraf.c16.cpu', group: 'Telegram vs Telegraf', label: 'CPU per webhook, c16', of: ['switchboard.telegram.c16', 'telegraf.telegram.c16', 'cpuUsPerRequest'], better: 'lower', target: 0.8 },
  { key: 'tg.telegraf.c64.cpu', group: 'Telegram vs Telegraf', label: 'CPU per webhook, c64', of: ['switchboard.telegram.c64', 'telegraf.telegram.c64', 'cpuUsPerRequest'], better: 'lower', target: 0.8 },
  { key: 'tg.telegraf.c64.p50', group: 'Telegram vs Telegraf', label: 'end-to-end p50, c64', of: ['switchboard.telegram.c64', 'telegraf.telegram.c64', 'p50Ms'], better: 'lower' },
  { key: 'tg.telegraf.c16.p99', group: 'Telegram vs Telegraf', label: 'end-to-end p99, c16', of: ['switchboard.telegram.c16', 'telegraf.telegram.c16', 'p99Ms'], better: 'lower', target: 1 },
  { key: 'tg.telegraf.c64.p99', group: 'Telegram vs Telegraf', label: 'end-to-end p99, c64', of: ['switchboard.telegram.c64', 'telegraf.telegram.c64', 'p99Ms'], better: 'lower', target: 1 },
  { key: 'tg.telegraf.fixed.p50', group: 'Telegram vs Telegraf', label: 'end-to-end p50, fixed rate', of: ['switchboard.telegram.fixed', 'telegraf.telegram.fixed', 'p50Ms'], better: 'lower' },
  { key: 'tg.telegraf.fixed.p99', group: 'Telegram vs Telegraf', label: 'end-to-end p99, fixed rate', of: ['switchboard.telegram.fixed', 'telegraf.telegram.fixed', 'p99Ms'], better: 'lower', target: 1 },
  { key: 'tg.grammy.c16.delivered', group: 'Telegram vs grammY', label: 'delivered/s, c16', of: ['switchboard.telegram.c16', 'grammy.telegram.c16', 'deliveredPerSecond'], better: 'higher' },
  { key: 'tg.grammy.c64.delivered', group: 'Telegram vs grammY', label: 'delivered/s, c64', of: ['switchboard.telegram.c64', 'grammy.telegram.c64', 'deliveredPerSecond'], better: 'higher' },
  { key: 'tg.grammy.c64.cpu', group: 'Telegram vs grammY', label: 'CPU per webhook, c64', of: ['switchboard.telegram.c64', 'grammy.telegram.c64', 'cpuUsPerRequest'], better: 'lower' },
  { key: 'tg.grammy.c64.p99', group: 'Telegram vs grammY', label: 'end-to-end p99, c64', of: ['switchboard.telegram.c64', 'grammy.telegram.c64', 'p99Ms'], better: 'lower' },
  { key: 'sio.rss', group: 'socket.io vs bare socket.io', label: 'RSS with the sessions open', of: ['switchboard.socketio', 'bare.socketio', 'rssMiB'], better: 'lower', target: 1.1 },
  { key: 'sio.rss.per1k', group: 'socket.io vs bare socket.io', label: 'RSS per 1,000 sessions (growth from before they opened)', of: ['switchboard.socketio', 'bare.socketio', 'perThousandMiB'], better: 'lower' },
  { key: 'sio.p50', group: 'socket.io vs bare socket.io', label: 'round trip p50', of: ['switchboard.socketio', 'bare.socketio', 'p50Ms'], better: 'lower' },
  { key: 'sio.p99', group: 'socket.io vs bare socket.io', label: 'round trip p99', of: ['switchboard.socketio', 'bare.socketio', 'p99Ms'], better: 'lower' },
  { key: 'start.time', group: 'startup vs bare Koa', label: 'time to first 200 on /health', of: ['switchboard.startup', 'koa.startup', 'firstOkMs'], better: 'lower', target: 1.2 },
  { key: 'start.rss', group: 'startup vs bare Koa', label: 'RSS 1 s after the first 200', of: ['switchboard.startup', 'koa.startup', 'startRssMiB'], better: 'lower' },
  { key: 'idle.rss', group: 'startup vs bare Koa', label: 'idle RSS (rest only, never sent a request)', of: ['switchboard.idle', 'koa.idle', 'idleRssMiB'], better: 'lower' },
  { key: 'redis.delivered', group: 'Telegram, Redis store vs in-memory', label: 'delivered/s, c64', of: ['switchboard.telegram.redis.c64', 'switchboard.telegram.c64', 'deliveredPerSecond'], better: 'higher', target: 0.7 },
];

function pick(round, subject, field) {
  const value = round[subject]?.[field];
  return typeof value === 'number' ? value : Number.NaN;
}

/** Every comparison's ratio per round and its min/median/max over the rounds (NaN where a side was not measured). */
export function ratios(rounds, comparisons = COMPARISONS) {
  return comparisons.map((c) => {
    const [subject, peer, field] = c.of;
    const perRound = rounds.map((round) => {
      const a = pick(round, subject, field);
      const b = pick(round, peer, field);
      return b > 0 ? a / b : Number.NaN;
    });
    const summary = summarize(perRound);
    const met = c.target === undefined || !Number.isFinite(summary.median) ? undefined : c.better === 'higher' ? summary.median >= c.target : summary.median <= c.target;
    return { ...c, perRound, ...summary, met };
  });
}

const fmt = (v, digits = 2) => (Number.isFinite(v) ? v.toFixed(digits) : '—');

/** The ratios as a markdown table: median, min and max over the rounds, which way is better, the target and whether it is met. */
export function renderTable(rows) {
  const lines = ['| comparison (Switchboard ÷ peer) | median | min | max | better | target |', '|---|---:|---:|---:|---|---|'];
  for (const r of rows) {
    const target = r.target === undefined ? '' : `${r.better === 'higher' ? '≥' : '≤'} ${r.target} ${r.met === undefined ? '' : r.met ? '✓' : '✗'}`.trim();
    lines.push(`| ${r.group}: ${r.label} | ${fmt(r.median)} | ${fmt(r.min)} | ${fmt(r.max)} | ${r.better} | ${target} |`);
  }
  return lines.join('\n');
}

/** The absolute medians behind the ratios, one row per subject, for readers who want units. */
export function renderAbsolute(rounds) {
  const subjects = [...new Set(rounds.flatMap((round) => Object.keys(round)))].sort();
  const fields = [
    ['rps', 'req/s', 0],
    ['deliveredPerSecond', 'delivered/s', 0],
    ['cpuUsPerRequest', 'CPU µs/req', 0],
    ['p50Ms', 'p50 ms', 1],
    ['p99Ms', 'p99 ms', 1],
    ['rssMiB', 'RSS MiB', 0],
    ['perThousandMiB', 'MiB per 1k sessions', 1],
    ['firstOkMs', 'start ms', 0],
    ['startRssMiB', 'RSS 1 s after start MiB', 0],
    ['idleRssMiB', 'idle RSS MiB', 0],
    ['undelivered', 'undelivered', 0],
    ['errors', 'errors', 0],
  ];
  const lines = [`| subject | ${fields.map((f) => f[1]).join(' | ')} |`, `|---|${fields.map(() => '---:').join('|')}|`];
  for (const subject of subjects) {
    const cells = fields.map(([field, , digits]) => fmt(summarize(rounds.map((round) => pick(round, subject, field))).median, digits));
    lines.push(`| ${subject} | ${cells.join(' | ')} |`);
  }
  return lines.join('\n');
}

const escapeXml = (text) => String(text).replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]);

/**
 * A horizontal bar chart of the median ratios as plain SVG text, on a log scale centred on 1 (parity) from 1/16 to
 * 16: a bar from 1 to the median (green on the good side of 1, red on the other), a thin line from min to max over
 * the rounds, a blue tick at the target, and the median in a column of its own on the right.
 */
export function renderSvg(rows, { title = 'Switchboard ÷ peer (median of rounds, log scale)', subtitle = '' } = {}) {
  const shown = rows.filter((r) => Number.isFinite(r.median));
  const labelWidth = 360;
  const plotWidth = 420;
  const rowHeight = 22;
  const top = subtitle ? 58 : 40;
  const height = top + shown.length * rowHeight + 44;
  const width = labelWidth + plotWidth + 90;
  const span = 4; // log2(16)
  const x = (v) => {
    const log = Math.log2(Math.min(16, Math.max(1 / 16, v > 0 ? v : 1 / 16)));
    return labelWidth + 10 + ((log + span) / (2 * span)) * (plotWidth - 20);
  };
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="#fff"/>`,
    `<text x="10" y="20" font-size="15" font-weight="bold">${escapeXml(title)}</text>`,
  ];
  if (subtitle) out.push(`<text x="10" y="38" fill="#555">${escapeXml(subtitle)}</text>`);
  shown.forEach((r, i) => {
    const y = top + i * rowHeight;
    const good = r.better === 'higher' ? r.median >= 1 : r.median <= 1;
    const [from, to] = [x(1), x(r.median)].sort((a, b) => a - b);
    out.push(`<text x="${labelWidth - 6}" y="${y + 14}" text-anchor="end">${escapeXml(`${r.group}: ${r.label}`)}</text>`);
    out.push(`<rect x="${from.toFixed(1)}" y="${y + 3}" width="${Math.max(1, to - from).toFixed(1)}" height="${rowHeight - 8}" fill="${good ? '#4c9a5a' : '#c9583e'}"/>`);
    out.push(`<line x1="${x(r.min).toFixed(1)}" x2="${x(r.max).toFixed(1)}" y1="${y + 10}" y2="${y + 10}" stroke="#222"/>`);
    if (r.target !== undefined) out.push(`<line x1="${x(r.target).toFixed(1)}" x2="${x(r.target).toFixed(1)}" y1="${y + 1}" y2="${y + rowHeight - 3}" stroke="#1f4e99" stroke-width="2"/>`);
    out.push(`<text x="${labelWidth + plotWidth + 10}" y="${y + 14}">${r.median.toFixed(2)}${r.better === 'higher' ? ' ↑' : ' ↓'}</text>`);
  });
  const axisY = top + shown.length * rowHeight + 4;
  out.push(`<line x1="${x(1).toFixed(1)}" x2="${x(1).toFixed(1)}" y1="${top}" y2="${axisY}" stroke="#888" stroke-dasharray="4 3"/>`);
  for (const tick of [1 / 16, 1 / 4, 1, 4, 16]) {
    out.push(`<text x="${x(tick).toFixed(1)}" y="${axisY + 14}" text-anchor="middle" fill="#555">${tick < 1 ? `1/${1 / tick}` : tick}</text>`);
  }
  out.push(`<text x="10" y="${axisY + 32}" fill="#555">${escapeXml('↑ higher is better, ↓ lower is better; blue tick: target; black line: min–max over rounds; 1 = parity')}</text>`);
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
