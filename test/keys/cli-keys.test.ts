/**
 * `authgraph keys …` as an operator runs it: a child process on PGlite in DATA_DIR (under
 * `npm run test:pg`, on a scratch PostgreSQL database through DATABASE_URL). Each process costs
 * seconds, so one key set is taken through the commands in order.
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { calculateJwkThumbprint, type JWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/db/client.js';
import { signingKeys } from '../../src/db/schema.js';
import { TEST_KEY_ENCRYPTION_KEY } from '../support/app.js';
import { CLI_JWT_SECRET, runCli, type CliResult } from '../support/cli.js';
import { onPostgres } from '../support/database.js';
import { createScratchDatabase, type ScratchDatabase } from '../support/pg-scratch.js';

const STEP_TIMEOUT = 300_000;
const HEADER = ['kid', 'alg', 'state', 'source', 'created', 'activates', 'retires', 'removed_at'] as const;

let dataDir: string;
let scratch: ScratchDatabase | undefined;
/** The stored key set's environment: no JWT_SECRET (ES256), a fixed KEY_ENCRYPTION_KEY. */
let env: Record<string, string | undefined>;
beforeAll(async () => {
  dataDir = mkdtempSync(path.join(tmpdir(), 'authgraph-cli-keys-'));
  scratch = onPostgres ? await createScratchDatabase() : undefined;
  env = { JWT_SECRET: undefined, DATA_DIR: dataDir, KEY_ENCRYPTION_KEY: TEST_KEY_ENCRYPTION_KEY, DATABASE_URL: scratch?.url };
});
afterAll(async () => {
  await scratch?.drop();
  rmSync(dataDir, { recursive: true, force: true });
});

const keys = (args: string[], extra: Record<string, string | undefined> = {}) => runCli(['keys', ...args], { env: { ...env, ...extra } });

/** A command that must succeed: exit 0, nothing on stderr. */
function succeeded(res: CliResult): string {
  expect({ code: res.code, stderr: res.stderr.trim() }, res.stdout).toEqual({ code: 0, stderr: '' });
  return res.stdout;
}

/** A refusal: exit 1, one line of explanation, no stack trace. */
function refused(res: CliResult): string {
  expect(res.code, `${res.stdout}\n${res.stderr}`).toBe(1);
  expect(res.stderr).not.toMatch(/^\s+at /m);
  return res.stderr.trim();
}

type Row = Record<(typeof HEADER)[number], string>;
/** `keys list`: a header line, then one tab-separated line per key. */
function parseList(stdout: string): Map<string, Row> {
  const [header, ...lines] = stdout.trim().split('\n');
  expect(header!.split('\t')).toEqual(HEADER);
  return new Map(
    lines.map((line) => {
      const cells = line.split('\t');
      expect(cells).toHaveLength(HEADER.length);
      const row = Object.fromEntries(HEADER.map((name, i) => [name, cells[i]!])) as Row;
      return [row.kid, row];
    }),
  );
}
const stateOf = (rows: Map<string, Row>) => Object.fromEntries([...rows].map(([kid, row]) => [kid, row.state]));

/** A real ES256 key whose RFC 7638 thumbprint (base64url) starts with "-": about one in 64 does. */
async function keyWithDashKid(): Promise<{ kid: string; jwk: JWK }> {
  for (;;) {
    const jwk = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' }) as JWK;
    const kid = await calculateJwkThumbprint(jwk, 'sha256');
    if (kid.startsWith('-')) return { kid, jwk: { ...jwk, kid, alg: 'ES256', use: 'sig' } };
  }
}

/** Adds a retired key to the set directly (no CLI may run meanwhile: PGlite's DATA_DIR is single-process). */
async function insertRetiredKey(kid: string, jwk: JWK): Promise<void> {
  const database = await openDatabase(scratch ? { databaseUrl: scratch.url } : { dataDir });
  try {
    const now = new Date();
    await database.db.insert(signingKeys).values({
      kid,
      algorithm: 'ES256',
      state: 'retired',
      source: 'generated',
      publicJwk: jwk as Record<string, unknown>,
      privateKey: null,
      createdAt: new Date(now.getTime() - 60_000),
      activatesAt: new Date(now.getTime() - 60_000),
      retiredAt: now,
      removeAt: new Date(now.getTime() + 86_400_000),
    });
  } finally {
    await database.close();
  }
}

describe(`authgraph keys (${onPostgres ? 'PostgreSQL' : 'PGlite in DATA_DIR'})`, () => {
  const kids: { first?: string; scheduled?: string; emergency?: string; dashed?: string } = {};

  it(
    'list changes nothing by itself; rotate --now on an empty set makes the first key; rotate publishes a next key that signs after the wait; rotate --now makes a new current key and retires the others',
    async () => {
      // The CLI shapes the set only when told to: on a database no server has opened, list shows no key.
      expect(parseList(succeeded(await keys(['list']))).size).toBe(0);
      const made = /^key (\S+) signs now$/m.exec(succeeded(await keys(['rotate', '--now'])))?.[1];
      const initial = parseList(succeeded(await keys(['list'])));
      expect(initial.size).toBe(1);
      const [first] = [...initial.values()];
      expect(first!.kid).toBe(made);
      expect(first).toMatchObject({ alg: 'ES256', state: 'current', source: 'generated', removed_at: '-' });
      // Due to retire at its automatic rotation (KEY_ROTATION_INTERVAL, 30 days).
      expect(Date.parse(first!.retires) - Date.parse(first!.activates)).toBe(2_592_000_000);
      expect(first!.kid).toMatch(/^[\w-]{43}$/);
      kids.first = first!.kid;

      const rotateStarted = Date.now();
      const rotated = succeeded(await keys(['rotate']));
      const rotateEnded = Date.now();
      const scheduled = /^key (\S+) is published and will sign after the pre-publication wait$/m.exec(rotated)?.[1];
      if (!scheduled) throw new Error(`keys rotate printed no kid:\n${rotated}`);
      kids.scheduled = scheduled;

      // A retired key whose kid starts with "-", for `retire -- <kid>` below.
      const dashed = await keyWithDashKid();
      await insertRetiredKey(dashed.kid, dashed.jwk);
      kids.dashed = dashed.kid;

      const afterRotate = parseList(succeeded(await keys(['list'])));
      expect(stateOf(afterRotate)).toEqual({ [kids.first]: 'current', [scheduled]: 'next', [dashed.kid]: 'retired' });
      // Published now, signing after 2 x JWKS_MAX_AGE (default 300 s).
      const activates = Date.parse(afterRotate.get(scheduled)!.activates);
      expect(activates).toBeGreaterThanOrEqual(rotateStarted + 600_000);
      expect(activates).toBeLessThanOrEqual(rotateEnded + 600_000);

      const now = succeeded(await keys(['rotate', '--now']));
      const emergency = /^key (\S+) signs now$/m.exec(now)?.[1];
      expect(emergency, now).toBeDefined();
      expect([kids.first, scheduled]).not.toContain(emergency);
      kids.emergency = emergency;
    },
    STEP_TIMEOUT,
  );

  it(
    'retire -- <kid> revokes a key whose kid starts with "-"; retire of an unknown kid exits 1 saying so; list shows what rotate --now and retire did',
    async () => {
      expect(kids.emergency, 'the rotation steps did not complete').toBeDefined();
      const retired = succeeded(await keys(['retire', '--', kids.dashed!]));
      // (The audit event of a revocation is logged at warn level, on stdout too.)
      expect(retired.split('\n')).toContain(`key ${kids.dashed} is revoked`);

      const unknown = refused(await keys(['retire', '--', 'no-such-kid']));
      expect(unknown).toBe('authgraph: No published key has the kid no-such-kid.');

      const rows = parseList(succeeded(await keys(['list'])));
      // rotate --now: the waiting key and the old current retire (published until removal), the new one signs.
      expect(stateOf(rows)).toEqual({
        [kids.first!]: 'retired',
        [kids.scheduled!]: 'retired',
        [kids.emergency!]: 'current',
        [kids.dashed!]: 'revoked',
      });
      expect(rows.get(kids.first!)!.retires).not.toBe('-');
      expect(rows.get(kids.first!)!.removed_at).not.toBe('-');
    },
    STEP_TIMEOUT,
  );

  it(
    'refuses every keys command under HS256 (JWT_SECRET set): exit 1, there is no key set',
    async () => {
      const message = refused(await keys(['list'], { JWT_SECRET: CLI_JWT_SECRET }));
      expect(message).toBe('authgraph: JWT_ALGORITHM=HS256 signs with JWT_SECRET: there is no key set to manage.');
    },
    STEP_TIMEOUT,
  );
});
