/**
 * The operator's CLI, run as child processes (`npx tsx src/cli.ts ...`): creating users with
 * the password on stdin, granting and revoking roles (how the first admin is made), its typed
 * failures, --help, the PGlite data-directory lock, and PostgreSQL through DATABASE_URL.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import argon2 from 'argon2';
import { openDatabase } from '../src/db/client.js';
import { acquireDataDirLock } from '../src/db/data-dir-lock.js';
import { userRoles, users } from '../src/db/schema.js';
import { runCli } from './support/cli.js';
import { onPostgres } from './support/database.js';
import { GOOD_PASSWORD } from './support/operations.js';
import { createScratchDatabase, type ScratchDatabase } from './support/pg-scratch.js';

// Each CLI run starts tsx and opens (and migrates) the database: seconds, more on a busy machine.
const CLI_TEST_TIMEOUT = 180_000;

const tempDirs: string[] = [];
function freshDataDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'authgraph-cli-'));
  tempDirs.push(dir);
  return dir;
}
afterAll(() => {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

/** Opens the PGlite files a CLI process wrote (the process has exited and released the lock). */
async function inspectDataDir<T>(dataDir: string, work: (db: Awaited<ReturnType<typeof openDatabase>>['db']) => Promise<T>): Promise<T> {
  const handle = await openDatabase({ dataDir });
  try {
    return await work(handle.db);
  } finally {
    await handle.close();
  }
}

async function rolesOfEmail(db: Awaited<ReturnType<typeof openDatabase>>['db'], email: string): Promise<string[]> {
  const rows = await db
    .select({ role: userRoles.role })
    .from(userRoles)
    .innerJoin(users, eq(users.id, userRoles.userId))
    .where(eq(users.email, email));
  return rows.map((r) => r.role).sort();
}

describe('CLI on PGlite (DATA_DIR)', () => {
  let dataDir: string;
  const env = () => ({ DATA_DIR: dataDir });
  const cli = (args: string[], input?: string) => runCli(args, { env: env(), input });

  beforeAll(() => {
    dataDir = freshDataDir();
  });

  it(
    'create-user --password-stdin creates the user with role user and the password from stdin',
    async () => {
      const res = await cli(['create-user', '--email', 'a@x.io', '--password-stdin', '--name', 'A'], `${GOOD_PASSWORD}\n`);
      expect(res.stderr).toBe('');
      expect(res.code).toBe(0);
      expect(res.stdout).toMatch(/^created user a@x\.io \([0-9a-f-]{36}\)\n$/);
      await inspectDataDir(dataDir, async (db) => {
        const [row] = await db.select().from(users).where(eq(users.email, 'a@x.io'));
        expect(row).toMatchObject({ name: 'A', active: true });
        // The trailing line break ended the password; it is not part of it.
        expect(await argon2.verify(row!.passwordHash!, GOOD_PASSWORD)).toBe(true);
        expect(await rolesOfEmail(db, 'a@x.io')).toEqual(['user']);
      });
    },
    CLI_TEST_TIMEOUT,
  );

  it(
    'create-user normalizes the email like register does',
    async () => {
      const res = await cli(['create-user', '--email', '  Norm@X.IO ', '--password-stdin'], GOOD_PASSWORD);
      expect(res.code).toBe(0);
      expect(res.stdout).toContain('created user norm@x.io');
    },
    CLI_TEST_TIMEOUT,
  );

  it(
    'create-user refuses a weak password from stdin with exit 1 and WEAK_PASSWORD',
    async () => {
      const res = await cli(['create-user', '--email', 'weak@x.io', '--password-stdin'], 'password123\n');
      expect(res.code).toBe(1);
      expect(res.stderr).toContain('WEAK_PASSWORD');
      expect(res.stdout).toBe('');
      await inspectDataDir(dataDir, async (db) => {
        expect(await db.select().from(users).where(eq(users.email, 'weak@x.io'))).toEqual([]);
      });
    },
    CLI_TEST_TIMEOUT,
  );

  it(
    'create-user refuses an email already taken with exit 1 and EMAIL_TAKEN',
    async () => {
      const res = await cli(['create-user', '--email', 'A@X.io', '--password-stdin'], GOOD_PASSWORD);
      expect(res.code).toBe(1);
      expect(res.stderr).toContain('EMAIL_TAKEN');
    },
    CLI_TEST_TIMEOUT,
  );

  it(
    'grant-role --role admin makes the user an admin',
    async () => {
      const res = await cli(['grant-role', '--email', 'a@x.io', '--role', 'admin']);
      expect(res.stderr).toBe('');
      expect(res.code).toBe(0);
      expect(res.stdout).toBe('granted admin to a@x.io\n');
      await inspectDataDir(dataDir, async (db) => {
        expect(await rolesOfEmail(db, 'a@x.io')).toEqual(['admin', 'user']);
      });
    },
    CLI_TEST_TIMEOUT,
  );

  it(
    'revoke-role of the sole admin fails with exit 1 and LAST_ADMIN',
    async () => {
      const res = await cli(['revoke-role', '--email', 'a@x.io', '--role', 'admin']);
      expect(res.code).toBe(1);
      expect(res.stderr).toContain('LAST_ADMIN');
      expect(res.stdout).toBe('');
      await inspectDataDir(dataDir, async (db) => {
        expect(await rolesOfEmail(db, 'a@x.io')).toEqual(['admin', 'user']);
      });
    },
    CLI_TEST_TIMEOUT,
  );

  it(
    'revoke-role of an admin succeeds once another admin exists',
    async () => {
      const grant = await cli(['grant-role', '--email', 'norm@x.io', '--role', 'admin']);
      expect(grant.code).toBe(0);
      const res = await cli(['revoke-role', '--email', 'a@x.io', '--role', 'admin']);
      expect(res.stderr).toBe('');
      expect(res.code).toBe(0);
      expect(res.stdout).toBe('revoked admin from a@x.io\n');
      // norm@x.io is now the sole admin and keeps the role.
      const last = await cli(['revoke-role', '--email', 'norm@x.io', '--role', 'admin']);
      expect(last.code).toBe(1);
      expect(last.stderr).toContain('LAST_ADMIN');
      await inspectDataDir(dataDir, async (db) => {
        expect(await rolesOfEmail(db, 'a@x.io')).toEqual(['user']);
        expect(await rolesOfEmail(db, 'norm@x.io')).toEqual(['admin', 'user']);
      });
    },
    CLI_TEST_TIMEOUT,
  );

  it(
    'grant-role of an unknown role fails with exit 1 and UNKNOWN_ROLE',
    async () => {
      const res = await cli(['grant-role', '--email', 'a@x.io', '--role', 'superuser']);
      expect(res.code).toBe(1);
      expect(res.stderr).toContain('UNKNOWN_ROLE');
      expect(res.stderr).toContain('superuser');
    },
    CLI_TEST_TIMEOUT,
  );

  it(
    'revoke-role of an unknown role fails with exit 1 and UNKNOWN_ROLE',
    async () => {
      const res = await cli(['revoke-role', '--email', 'a@x.io', '--role', 'superuser']);
      expect(res.code).toBe(1);
      expect(res.stderr).toContain('UNKNOWN_ROLE');
    },
    CLI_TEST_TIMEOUT,
  );

  it(
    'grant-role for an unknown email fails with exit 1 and says no user has it',
    async () => {
      const res = await cli(['grant-role', '--email', 'Nobody@X.io', '--role', 'admin']);
      expect(res.code).toBe(1);
      expect(res.stderr).toContain('No user has the email nobody@x.io');
    },
    CLI_TEST_TIMEOUT,
  );

  it(
    'revoke-role for an unknown email fails with exit 1 and says no user has it',
    async () => {
      const res = await cli(['revoke-role', '--email', 'nobody@x.io', '--role', 'admin']);
      expect(res.code).toBe(1);
      expect(res.stderr).toContain('No user has the email nobody@x.io');
    },
    CLI_TEST_TIMEOUT,
  );

  it(
    'fails at once with exit 1 and says to stop the server or use DATABASE_URL while another process holds DATA_DIR',
    async () => {
      const release = acquireDataDirLock(dataDir);
      try {
        const res = await cli(['grant-role', '--email', 'a@x.io', '--role', 'admin']);
        expect(res.code).toBe(1);
        expect(res.stderr).toContain(`in use by process ${process.pid}`);
        expect(res.stderr).toMatch(/stop that process \(the server\)/);
        expect(res.stderr).toContain('DATABASE_URL');
        // It did not wait for the lock, and left it to its holder.
        expect(res.ms).toBeLessThan(15_000);
        expect(readFileSync(path.join(dataDir, 'authgraph.lock'), 'utf8')).toBe(String(process.pid));
      } finally {
        release();
      }
      expect(existsSync(path.join(dataDir, 'authgraph.lock'))).toBe(false);
      // The data is intact and usable once the lock is free.
      await inspectDataDir(dataDir, async (db) => {
        expect(await rolesOfEmail(db, 'a@x.io')).toEqual(['user']);
      });
    },
    CLI_TEST_TIMEOUT,
  );

  it(
    'create-user fails with exit 1 while another process holds DATA_DIR, creating nobody',
    async () => {
      const release = acquireDataDirLock(dataDir);
      try {
        const res = await cli(['create-user', '--email', 'locked@x.io', '--password-stdin'], GOOD_PASSWORD);
        expect(res.code).toBe(1);
        expect(res.stderr).toContain('DATABASE_URL');
      } finally {
        release();
      }
      await inspectDataDir(dataDir, async (db) => {
        expect(await db.select().from(users).where(eq(users.email, 'locked@x.io'))).toEqual([]);
      });
    },
    CLI_TEST_TIMEOUT,
  );
});

describe.concurrent('CLI --help', () => {
  const HELP: [command: string, mentions: string[]][] = [
    ['create-user', ['--email', '--password-stdin', '--name']],
    ['grant-role', ['--email', '--role']],
    ['revoke-role', ['--email', '--role']],
    ['print-schema', ['--write']],
    ['migrate', ['migrations']],
    ['purge', ['expired']],
  ];

  for (const [command, mentions] of HELP) {
    it(
      `${command} --help exits 0 and describes its options`,
      async () => {
        const res = await runCli([command, '--help'], { env: { DATA_DIR: freshDataDir() } });
        expect(res.code).toBe(0);
        expect(res.stdout).toContain(`Usage: authgraph ${command}`);
        for (const mention of mentions) expect(res.stdout).toContain(mention);
      },
      CLI_TEST_TIMEOUT,
    );
  }

  it(
    '--help exits 0 and lists every command',
    async () => {
      const res = await runCli(['--help'], { env: { DATA_DIR: freshDataDir() } });
      expect(res.code).toBe(0);
      for (const [command] of HELP) expect(res.stdout).toContain(command);
    },
    CLI_TEST_TIMEOUT,
  );

  it(
    'create-user without --email exits 1 naming the missing option',
    async () => {
      const res = await runCli(['create-user', '--password-stdin'], { env: { DATA_DIR: freshDataDir() } });
      expect(res.code).toBe(1);
      expect(res.stderr).toContain('--email');
    },
    CLI_TEST_TIMEOUT,
  );
});

describe.runIf(onPostgres)('CLI on PostgreSQL (DATABASE_URL)', () => {
  let scratch: ScratchDatabase;
  beforeAll(async () => {
    scratch = await createScratchDatabase();
  });
  afterAll(() => scratch?.drop());

  it(
    'creates a user, makes them admin and keeps the last admin, through DATABASE_URL even while DATA_DIR is locked',
    async () => {
      const lockedDir = freshDataDir();
      const release = acquireDataDirLock(lockedDir);
      const env = { DATABASE_URL: scratch.url, DATA_DIR: lockedDir };
      try {
        const created = await runCli(['create-user', '--email', 'pg@x.io', '--password-stdin', '--name', 'Pg'], {
          env,
          input: `${GOOD_PASSWORD}\n`,
        });
        expect(created.stderr).toBe('');
        expect(created.code).toBe(0);
        const granted = await runCli(['grant-role', '--email', 'pg@x.io', '--role', 'admin'], { env });
        expect(granted.code).toBe(0);
        const revoked = await runCli(['revoke-role', '--email', 'pg@x.io', '--role', 'admin'], { env });
        expect(revoked.code).toBe(1);
        expect(revoked.stderr).toContain('LAST_ADMIN');
      } finally {
        release();
      }
      const rows = await scratch.sql<{ email: string; name: string; role: string }[]>`
        select u.email, u.name, r.role from users u join user_roles r on r.user_id = u.id order by r.role`;
      expect(rows.map((r) => ({ ...r }))).toEqual([
        { email: 'pg@x.io', name: 'Pg', role: 'admin' },
        { email: 'pg@x.io', name: 'Pg', role: 'user' },
      ]);
    },
    CLI_TEST_TIMEOUT,
  );
});
