/**
 * `npm run bench`: the main request paths of real servers, driven from this process (the
 * orchestrator) by autocannon, the same way for every scenario. The servers are child
 * processes: a bare graphql-yoga `{ hello }` server (the ceiling of the stack) and authgraph
 * itself (`node --import tsx src/server.ts`, RATE_LIMITS=off), on PostgreSQL and on PGlite.
 *
 * One run prints a table per database (req/s, p50, p99, each against bare yoga), then on
 * PostgreSQL a head-to-head run (authenticated `me` and bare yoga in back-to-back rounds: the
 * ratio the target reads), a memory run, a propagation run between two instances and a scale
 * run (1,000,000 users and revoked tokens vs an empty database), and a targets block. Speed
 * never changes the exit code; a server that does not start, or answers that are errors, do.
 *
 * Environment: BENCH_SECONDS (5) per measured scenario; AUTHGRAPH_TEST_PG_URL, the admin URL
 * of a PostgreSQL server to create the run's databases on (default
 * postgres://postgres@127.0.0.1:5432/postgres when it answers; without one, PGlite only);
 * BENCH_SCALE_ROWS (1000000) rows per table of the scale run.
 */
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { loadConfig } from '../src/config.js';
import { measureArgon2, type Argon2Time } from './argon2-time.js';
import { loginMany, registerUsers, type Session } from './http.js';
import { cleanUp, installExitHandlers, wasInterrupted } from './lifecycle.js';
import { CONNECTIONS, measure, quantile, warmAndMeasure, type Measurement } from './load.js';
import { bulkLoad, countRows, createDatabase, findPostgres, redact, type PostgresServer } from './postgres.js';
import { measurePropagation, type Propagation } from './propagation.js';
import { formatInt, formatMiB, formatMs, formatRatio, formatTable, formatTargets, serverMicrosPerRequest, type Target } from './report.js';
import {
  anonymousMeScenario,
  helloScenario,
  loginScenario,
  meScenario,
  mixedMeScenario,
  refreshScenario,
} from './scenarios.js';
import { startAuthgraph, startServer, type ServerProcess } from './servers.js';

function positive(name: string, fallback: number): number {
  const raw = process.env[name]?.trim();
  if (!raw) return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name} must be a positive number, not "${raw}"`);
  return value;
}

const SECONDS = positive('BENCH_SECONDS', 5);
const WARMUP_SECONDS = Math.min(2, SECONDS);
const SCALE_ROWS = Math.round(positive('BENCH_SCALE_ROWS', 1_000_000));
/** Distinct valid tokens of the memory run, and sessions revoked by the propagation run. */
const SESSIONS = 200;
/** Shared by every authgraph instance of the run: they read one key set from the database. */
const KEY_ENCRYPTION_KEY = randomBytes(32).toString('hex');

/** Why the run must exit non-zero (answers that were errors); speed never lands here. */
const broken: string[] = [];
const progress = (message: string) => console.error(`… ${message}`);
const loadAverage = () => os.loadavg().map((n) => n.toFixed(2)).join(' ');
const elapsed = (since: number) => `${((performance.now() - since) / 1000).toFixed(1)} s`;

function checked(where: string, measurements: readonly Measurement[]): void {
  for (const m of measurements) {
    if (m.errors > 0) broken.push(`${where}, ${m.title}: ${m.errors} of ${m.responses} answers were errors`);
  }
}

interface PathsRun {
  rows: Measurement[];
  emails: string[];
  /** One access token per connection, for `me`. */
  tokens: string[];
}

/** authenticated `me`, anonymous `me`, rotating `refresh` and `login` on one running server. */
async function measurePaths(server: ServerProcess, where: string): Promise<PathsRun> {
  progress(`${where}: registering ${CONNECTIONS} users and signing in`);
  const { emails, sessions } = await registerUsers(server.base, 'bench', CONNECTIONS);
  // One chain per connection for the warm-up and one for the measured run.
  const refreshPool = await loginMany(server.base, emails, 2 * CONNECTIONS);
  const tokens = sessions.map((s) => s.accessToken);
  const scenarios = [
    meScenario(tokens),
    anonymousMeScenario(),
    refreshScenario(refreshPool),
    loginScenario(emails),
  ];
  const rows: Measurement[] = [];
  for (const scenario of scenarios) {
    progress(`${where}: ${scenario.title}`);
    rows.push(await warmAndMeasure(server, scenario, SECONDS, WARMUP_SECONDS));
  }
  checked(where, rows);
  return { rows, emails, tokens };
}

/** Rounds of the head-to-head run: in each, one measurement of each server, back to back. */
const HEAD_TO_HEAD_ROUNDS = 5;

interface HeadToHead {
  bare: Measurement[];
  me: Measurement[];
  /** me ÷ bare in req/s, per round. */
  ratios: number[];
  /** The median of the rounds' ratios. */
  ratio: number;
}

/** The round with the most req/s. */
const best = (rounds: Measurement[]) => rounds.reduce((a, b) => (b.reqPerSec > a.reqPerSec ? b : a));

/**
 * Authenticated `me` against bare yoga on two servers running side by side, in rounds of one
 * measurement each, back to back (which goes first alternates), and the median of the rounds'
 * ratios: a ratio of two single measurements minutes apart mostly measures what else the
 * machine did meanwhile (on this machine it moved from 0.54 to 0.97 between runs of one commit).
 */
async function measureHeadToHead(yoga: ServerProcess, server: ServerProcess, tokens: string[]): Promise<HeadToHead> {
  const bare: Measurement[] = [];
  const me: Measurement[] = [];
  for (let round = 0; round < HEAD_TO_HEAD_ROUNDS; round++) {
    progress(`head to head: round ${round + 1} of ${HEAD_TO_HEAD_ROUNDS}`);
    // Both servers sat idle for a while: the first round warms each up again first (a server
    // idle for a minute answered its next seconds at half speed).
    const warmup = round === 0 ? WARMUP_SECONDS : 0;
    const measureBare = async () => bare.push(await warmAndMeasure(yoga, helloScenario(), SECONDS, warmup));
    const measureMe = async () => me.push(await warmAndMeasure(server, meScenario(tokens), SECONDS, warmup));
    if (round % 2 === 0) {
      await measureBare();
      await measureMe();
    } else {
      await measureMe();
      await measureBare();
    }
  }
  checked('head to head', [...bare, ...me]);
  const ratios = me.map((m, i) => m.reqPerSec / bare[i]!.reqPerSec);
  return { bare, me, ratios, ratio: quantile([...ratios].sort((a, b) => a - b), 0.5) };
}

function formatHeadToHead(h: HeadToHead): string {
  const list = (rounds: Measurement[]) => rounds.map((m) => formatInt(m.reqPerSec)).join(', ');
  const cpuList = (rounds: Measurement[]) => rounds.map((m) => formatInt(serverMicrosPerRequest(m))).join(', ');
  return [
    `head to head (PostgreSQL): me, authenticated, vs bare yoga, ${h.bare.length} rounds of one measurement each, back to back`,
    `  bare yoga: ${list(h.bare)} req/s; server CPU ${cpuList(h.bare)} µs per request`,
    `  me:        ${list(h.me)} req/s; server CPU ${cpuList(h.me)} µs per request`,
    `  ratio me ÷ bare per round: ${h.ratios.map(formatRatio).join(', ')}; median ${formatRatio(h.ratio)}`,
  ].join('\n');
}

interface MemoryRun {
  where: string;
  atStart: number | null;
  before: number | null;
  after: number | null;
  load: Measurement;
  validTokens: number;
  forged: number;
  /** Still valid afterwards: the propagation run revokes them one by one. */
  sessions: Session[];
}

/** RSS of the server before and after 3 × BENCH_SECONDS of `me` with many valid and forged tokens. */
async function measureMemory(server: ServerProcess, where: string, emails: string[], atStart: number | null): Promise<MemoryRun> {
  progress(`${where}: ${SESSIONS} sessions for the memory run`);
  const sessions = await loginMany(server.base, emails, SESSIONS);
  const scenario = mixedMeScenario(sessions.map((s) => s.accessToken));
  const before = server.rssMiB();
  progress(`${where}: memory run, ${3 * SECONDS} s`);
  const load = await measure(server, scenario, 3 * SECONDS);
  const after = server.rssMiB();
  checked(`${where}, memory run`, [load]);
  return { where, atStart, before, after, load, validTokens: sessions.length, forged: scenario.forged(), sessions };
}

function formatMemory(m: MemoryRun): string {
  const growth = m.before !== null && m.after !== null ? ` (${m.after - m.before >= 0 ? '+' : ''}${(m.after - m.before).toFixed(0)} MiB)` : '';
  return [
    `memory (${m.where}): RSS ${formatMiB(m.atStart)} after start-up, ${formatMiB(m.before)} before the load, ${formatMiB(m.after)} after${growth}`,
    `  load: ${m.load.seconds.toFixed(0)} s of me, ${m.validTokens} valid tokens in turn and ${formatInt(m.forged)} distinct forged ones` +
      ` (every other request): ${formatInt(m.load.reqPerSec)} req/s, ${formatInt(m.load.errors)} errors`,
  ].join('\n');
}

function formatPropagation(p: Propagation): string {
  return [
    `propagation (PostgreSQL, instances A and B): logout on A until B refuses the token, ${p.rounds} rounds`,
    `  p50 ${formatMs(p.p50)} ms, p99 ${formatMs(p.p99)} ms, max ${formatMs(p.max)} ms; ${p.pollsPerRound.toFixed(2)} polls of B per round` +
      (p.missed > 0 ? `; ! ${p.missed} revocations NOT honoured by B within 2 s` : ''),
  ].join('\n');
}

/** Rounds of the scale run per database, alternating, so that other work on the machine weighs on both alike. */
const SCALE_ROUNDS = 2;

interface ScaleSide {
  rounds: Measurement[];
  /** The round with the most req/s: the ratio compares best with best. */
  best: Measurement;
  startupMs: number;
  rssAfter: number | null;
}

interface ScaleRun {
  empty: ScaleSide;
  full: ScaleSide;
  rows: { users: number; revokedTokens: number };
  loadMs: number;
}

/**
 * Authenticated `me` on an empty database and on one holding SCALE_ROWS users and revoked
 * tokens: two servers, one per database, measured in alternation. The full database gets its
 * rows while no server runs on it, then a fresh start, as after a deployment: whatever the
 * server loads at start-up, it loads from the full tables.
 */
async function measureScale(pg: PostgresServer, argon: Argon2Time): Promise<ScaleRun> {
  const emptyDb = await createDatabase(pg, 'empty');
  const fullDb = await createDatabase(pg, 'full');
  const start = (name: string, url: string) => startAuthgraph(name, { databaseUrl: url, keyEncryptionKey: KEY_ENCRYPTION_KEY });
  const tokensOf = async (server: ServerProcess) =>
    (await registerUsers(server.base, 'bench-scale', CONNECTIONS)).sessions.map((s) => s.accessToken);

  progress('scale run: migrating the database to fill, and signing in to it');
  const setup = await start('scale-setup', fullDb.url);
  const fullTokens = await tokensOf(setup);
  await setup.stop();
  progress(`scale run: bulk-loading ${formatInt(SCALE_ROWS)} users and ${formatInt(SCALE_ROWS)} revoked tokens`);
  const accessTokenTtl = loadConfig({}).accessTokenTtl;
  const loadMs = await bulkLoad(fullDb.url, { count: SCALE_ROWS, passwordHash: argon.hash, accessTokenTtl });
  const rows = await countRows(fullDb.url);

  const emptyServer = await start('scale-empty', emptyDb.url);
  const emptyTokens = await tokensOf(emptyServer);
  const fullServer = await start('scale-full', fullDb.url);
  const emptyRounds: Measurement[] = [];
  const fullRounds: Measurement[] = [];
  for (let round = 0; round < SCALE_ROUNDS; round++) {
    const warmup = round === 0 ? WARMUP_SECONDS : 0;
    progress(`scale run: round ${round + 1} of ${SCALE_ROUNDS}, empty then full`);
    emptyRounds.push(await warmAndMeasure(emptyServer, meScenario(emptyTokens), SECONDS, warmup));
    fullRounds.push(await warmAndMeasure(fullServer, meScenario(fullTokens), SECONDS, warmup));
  }
  const side = (server: ServerProcess, rounds: Measurement[]): ScaleSide => ({
    rounds,
    best: best(rounds),
    startupMs: server.startupMs,
    rssAfter: server.rssMiB(),
  });
  const result = { empty: side(emptyServer, emptyRounds), full: side(fullServer, fullRounds), rows, loadMs };
  await emptyServer.stop();
  await fullServer.stop();
  await emptyDb.drop();
  await fullDb.drop();
  checked('scale run', [...emptyRounds, ...fullRounds]);
  return result;
}

function formatScale(s: ScaleRun): string {
  const line = (label: string, side: ScaleSide) =>
    `  ${label} ${side.rounds.map((r) => formatInt(r.reqPerSec)).join(', ')} req/s;` +
    ` best round p50 ${formatMs(side.best.p50)} ms, p99 ${formatMs(side.best.p99)} ms,` +
    ` server CPU ${formatInt(serverMicrosPerRequest(side.best))} µs per request;` +
    ` server up in ${(side.startupMs / 1000).toFixed(1)} s, RSS ${formatMiB(side.rssAfter)} after the rounds`;
  return [
    `scale (PostgreSQL): me, authenticated, on an empty database vs one with ${formatInt(s.rows.users)} users and` +
      ` ${formatInt(s.rows.revokedTokens)} revoked tokens (bulk load ${(s.loadMs / 1000).toFixed(1)} s); ${SCALE_ROUNDS} rounds each, alternating`,
    line('empty:', s.empty),
    line('full: ', s.full),
    `  ratio full ÷ empty, best rounds: ${formatRatio(s.full.best.reqPerSec / s.empty.best.reqPerSec)}`,
  ].join('\n');
}

interface PostgresResults {
  pg: PostgresServer;
  rows: Measurement[];
  memory: MemoryRun;
  headToHead: HeadToHead;
  propagation: Propagation;
  scale: ScaleRun;
}

async function runPostgres(pg: PostgresServer, bare: Measurement, yoga: ServerProcess, argon: Argon2Time): Promise<PostgresResults> {
  const db = await createDatabase(pg, 'main');
  progress(`PostgreSQL: starting instance A on ${db.name}`);
  const a = await startAuthgraph('instance-A', { databaseUrl: db.url, keyEncryptionKey: KEY_ENCRYPTION_KEY });
  const atStart = a.rssMiB();
  const paths = await measurePaths(a, 'PostgreSQL');
  console.log(
    formatTable(
      `PostgreSQL ${pg.version} (${redact(pg.adminUrl)}, ${pg.source}; fresh database ${db.name}, dropped at the end)`,
      bare,
      paths.rows,
    ),
  );
  console.log();
  const headToHead = await measureHeadToHead(yoga, a, paths.tokens);
  console.log(formatHeadToHead(headToHead));
  console.log();

  const memory = await measureMemory(a, 'PostgreSQL, instance A', paths.emails, atStart);
  console.log(formatMemory(memory));
  console.log();

  progress('PostgreSQL: starting instance B on the same database');
  const b = await startAuthgraph('instance-B', { databaseUrl: db.url, keyEncryptionKey: KEY_ENCRYPTION_KEY });
  progress(`propagation run, ${memory.sessions.length} rounds`);
  const propagation = await measurePropagation(a.base, b.base, memory.sessions);
  if (propagation.missed > 0) broken.push(`propagation: ${propagation.missed} revocations were not honoured by B within 2 s`);
  console.log(formatPropagation(propagation));
  console.log();
  await b.stop();
  await a.stop();
  await db.drop();

  const scale = await measureScale(pg, argon);
  console.log(formatScale(scale));
  console.log();
  return { pg, rows: paths.rows, headToHead, memory, propagation, scale };
}

async function runPglite(bare: Measurement, withMemory: boolean): Promise<{ rows: Measurement[] }> {
  progress('PGlite: starting the server');
  const server = await startAuthgraph('pglite', { keyEncryptionKey: KEY_ENCRYPTION_KEY });
  const atStart = server.rssMiB();
  const paths = await measurePaths(server, 'PGlite');
  console.log(formatTable('PGlite (embedded, a temporary DATA_DIR)', bare, paths.rows));
  console.log();
  if (withMemory) {
    console.log(formatMemory(await measureMemory(server, 'PGlite', paths.emails, atStart)));
    console.log();
  }
  await server.stop();
  return { rows: paths.rows };
}

const cpuSplit = (m: Measurement) =>
  m.cpu ? [m.cpu.server, m.cpu.loadGenerator, m.cpu.rest].map((n) => n.toFixed(2)).join(' / ') : 'n/a';

/**
 * The login target as CPU: the machine's CPU time per sign-in measured, what the target leaves
 * per sign-in (cores ÷ 0.9 × the ceiling), and what argon2 alone takes of it when it hashes on
 * every core at once. The rest (statements, tokens, GraphQL, PostgreSQL, the load generator)
 * must fit in the difference.
 */
function loginBudget(login: Measurement, argon: Argon2Time): string {
  if (!login.cpu || login.reqPerSec <= 0) return 'CPU per sign-in: n/a';
  const { server, loadGenerator, rest } = login.cpu;
  const perLogin = ((server + loadGenerator + rest) / login.reqPerSec) * 1000;
  const allowed = (argon.cores / (0.9 * argon.ceilingPerSec)) * 1000;
  const hashing = (argon.cores / argon.parallelPerSec) * 1000;
  return (
    `machine CPU per sign-in ${formatMs(perLogin)} ms, of which argon2 alone takes ${formatMs(hashing)};` +
    ` the target allows ${formatMs(allowed)} ms, leaving ${formatMs(allowed - hashing)} ms for the rest`
  );
}

function targets(argon: Argon2Time, pg: PostgresResults | null, pglite: Measurement[]): Target[] {
  const byTitle = (rows: readonly Measurement[], prefix: string) => rows.find((r) => r.title.startsWith(prefix));
  const list: Target[] = [];
  const h = pg?.headToHead;
  list.push({
    name: 'me, authenticated, on PostgreSQL ≥ 0.75 × bare yoga',
    figure: h
      ? `${formatRatio(h.ratio)} × (median of ${h.ratios.length} back-to-back rounds, from ${formatRatio(Math.min(...h.ratios))} to ${formatRatio(Math.max(...h.ratios))})`
      : '-',
    met: h ? h.ratio >= 0.75 : null,
  });
  const scale = pg?.scale;
  const scaleRatio = scale ? scale.full.best.reqPerSec / scale.empty.best.reqPerSec : Number.NaN;
  list.push({
    name: `me with ${formatInt(SCALE_ROWS)} users + revoked tokens ≥ 0.9 × empty`,
    figure: scale ? `${formatRatio(scaleRatio)} × (${formatInt(scale.full.best.reqPerSec)} vs ${formatInt(scale.empty.best.reqPerSec)} req/s)` : '-',
    met: scale ? scaleRatio >= 0.9 : null,
  });
  const propagation = pg?.propagation;
  list.push({
    name: 'revocation seen by the other instance, p99 < 50 ms',
    figure: propagation ? `${formatMs(propagation.p99)} ms (${propagation.rounds} rounds)` : '-',
    met: propagation ? propagation.missed === 0 && propagation.p99 < 50 : null,
  });
  const ceiling = argon.ceilingPerSec;
  for (const [where, rows] of [
    ['PostgreSQL', pg?.rows],
    ['PGlite', pglite],
  ] as const) {
    const login = rows && byTitle(rows, 'login');
    list.push({
      name: `login on ${where} ≥ 0.9 × cores ÷ argon2 hash time`,
      figure: login
        ? `${formatRatio(login.reqPerSec / ceiling)} × (${formatInt(login.reqPerSec)} of ${formatInt(ceiling)}/s;` +
          ` cores used by server / load generator / rest: ${cpuSplit(login)};` +
          ` argon2 alone: ${formatRatio(argon.parallelPerSec / ceiling)} ×;` +
          ` login ÷ argon2 alone: ${formatRatio(login.reqPerSec / argon.parallelPerSec)} ×;` +
          ` ${loginBudget(login, argon)})`
        : '-',
      met: login ? login.reqPerSec / ceiling >= 0.9 : null,
    });
  }
  return list;
}

async function main(): Promise<void> {
  const started = performance.now();
  const found = await findPostgres();
  progress('timing argon2id');
  const argon = await measureArgon2();
  const cpu = os.cpus()[0]?.model.trim() ?? 'unknown CPU';
  console.log(`authgraph bench, ${new Date().toISOString()}, load average ${loadAverage()}`);
  console.log(`  ${argon.cores} cores (${cpu}), ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}, load generator in this process`);
  console.log(
    `  autocannon: ${CONNECTIONS} connections, ${SECONDS} s per scenario after a ${WARMUP_SECONDS} s warm-up; latency timed per request here`,
  );
  console.log(
    `  argon2id (the app's parameters): ${formatMs(argon.ms)} ms per hash, one at a time; ${argon.cores} cores ÷ that = ${formatInt(argon.ceilingPerSec)} hashes/s`,
  );
  console.log(
    `  argon2id alone, ${argon.cores} at a time: ${formatInt(argon.parallelPerSec)} hashes/s (${formatRatio(argon.parallelPerSec / argon.ceilingPerSec)} × that)`,
  );
  if (found.note) console.log(`  ${found.note}`);
  console.log();

  progress('bare yoga');
  const yoga = await startServer('bare yoga', 'bench/bare-yoga.ts', {});
  const bare = await warmAndMeasure(yoga, helloScenario(), SECONDS, WARMUP_SECONDS);
  checked('bare yoga', [bare]);

  // bare yoga stays up for the head-to-head run on PostgreSQL.
  const pg = found.server ? await runPostgres(found.server, bare, yoga, argon) : null;
  await yoga.stop();
  const pglite = await runPglite(bare, pg === null);

  console.log(formatTargets(targets(argon, pg, pglite.rows)));
  console.log();
  console.log(`bench took ${elapsed(started)}; load average now ${loadAverage()} (other work on the machine skews every figure)`);
}

installExitHandlers();
try {
  await main();
  if (broken.length > 0) {
    console.error(`\nbench: something broke (the figures above are not trustworthy):\n  ${broken.join('\n  ')}`);
    process.exitCode = 1;
  }
} catch (err) {
  if (!wasInterrupted()) console.error(`\nbench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  process.exitCode = 1;
} finally {
  await cleanUp();
}
