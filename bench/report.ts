/** How the bench prints: one table per database, lines for the other runs, a targets block. */
import type { Measurement } from './load.js';

const int = (n: number) => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : 'n/a');
const ms = (n: number) => (Number.isFinite(n) ? (n >= 100 ? n.toFixed(0) : n.toFixed(1)) : 'n/a');
const ratio = (n: number) => (Number.isFinite(n) ? n.toFixed(2) : 'n/a');

/** Formats milliseconds (one decimal under 100). */
export const formatMs = ms;
/** Formats a whole number with thousands separators. */
export const formatInt = int;
/** Formats a ratio with two decimals. */
export const formatRatio = ratio;

/** MiB with no decimals, or n/a. */
export const formatMiB = (n: number | null) => (n === null ? 'n/a' : `${n.toFixed(0)} MiB`);

function row(cells: string[], widths: number[]): string {
  return cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ');
}

/** Server CPU per answered request, in microseconds (NaN where CPU was not counted). */
export function serverMicrosPerRequest(m: Measurement): number {
  return m.cpu && m.responses > 0 ? (m.cpu.serverSeconds * 1e6) / m.responses : Number.NaN;
}

const cores = (n: number | undefined) => (n === undefined || !Number.isFinite(n) ? 'n/a' : n.toFixed(2));

/**
 * The table of one database: each scenario's req/s, p50 and p99, each with its ratio to bare
 * yoga (req/s: higher is better; latency: lower is), the server's CPU per request and its ratio
 * (the load generator shares the machine, so this is the figure that does not depend on it),
 * its answers and errors. A scenario with errors is marked with "!" and its first bad answer is
 * printed under the table. Then where the CPU went in each: the server, the load generator, and
 * the rest of the machine (PostgreSQL, anything else running), in cores.
 */
export function formatTable(title: string, bare: Measurement, rows: readonly Measurement[]): string {
  const widths = [26, 8, 6, 7, 6, 7, 6, 10, 6, 9, 7];
  const header = row(['', 'req/s', '×bare', 'p50 ms', '×bare', 'p99 ms', '×bare', 'CPU µs/req', '×bare', 'answers', 'errors'], widths);
  const lines = [title, `  ${header}`];
  const bareCpu = serverMicrosPerRequest(bare);
  for (const m of [bare, ...rows]) {
    const cells = [
      m.title,
      int(m.reqPerSec),
      ratio(m.reqPerSec / bare.reqPerSec),
      ms(m.p50),
      ratio(m.p50 / bare.p50),
      ms(m.p99),
      ratio(m.p99 / bare.p99),
      int(serverMicrosPerRequest(m)),
      ratio(serverMicrosPerRequest(m) / bareCpu),
      int(m.responses),
      m.errors > 0 ? `${int(m.errors)} !` : '0',
    ];
    lines.push(`  ${row(cells, widths)}`);
  }
  for (const m of [bare, ...rows].filter((r) => r.errors > 0)) {
    lines.push(`  ! ${m.title}: ${int(m.errors)} of ${int(m.responses)} answers were errors; first: ${m.firstError ?? '?'}`);
  }
  lines.push('  CPU in cores while measured: server / load generator (this process) / rest of the machine (PostgreSQL, other work)');
  for (const m of [bare, ...rows]) {
    lines.push(`    ${m.title.padEnd(widths[0]!)}  ${cores(m.cpu?.server)} / ${cores(m.cpu?.loadGenerator)} / ${cores(m.cpu?.rest)}`);
  }
  return lines.join('\n');
}

export interface Target {
  name: string;
  /** The measured figure, as printed. */
  figure: string;
  /** null: not measured in this run. */
  met: boolean | null;
}

export function formatTargets(targets: readonly Target[]): string {
  const nameWidth = Math.max(...targets.map((t) => t.name.length));
  const figureWidth = Math.max(...targets.map((t) => t.figure.length));
  const verdict = (met: boolean | null) => (met === null ? 'not measured' : met ? 'met' : 'NOT MET');
  return ['targets', ...targets.map((t) => `  ${t.name.padEnd(nameWidth)}  ${t.figure.padEnd(figureWidth)}  ${verdict(t.met)}`)].join('\n');
}
