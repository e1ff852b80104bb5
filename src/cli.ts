import { writeFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { findUserByEmail } from './accounts/accounts.js';
import { normalizeEmail } from './accounts/email.js';
import { bootstrap, type Runtime } from './bootstrap.js';
import { ConfigError, loadConfig } from './config.js';
import type { AppServices } from './services.js';
import { DataDirLockedError } from './db/data-dir-lock.js';
import { createLogger } from './logger.js';
import { AuthError } from './errors.js';
import { accountEmail, accountName, parseArgument } from './graphql/arguments.js';
import { purgeExpired } from './purge.js';

/** A failure the operator can fix; printed without a stack trace. */
class CliError extends Error {}

/** Reads a secret from standard input; one trailing line break is the terminator, not the secret. */
async function readStdin(): Promise<string> {
  if (process.stdin.isTTY) process.stderr.write('Password (then Enter and Ctrl-D): ');
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

async function userIdByEmail(services: AppServices, email: string): Promise<string> {
  const user = await findUserByEmail(services.db, normalizeEmail(email));
  if (!user) throw new CliError(`No user has the email ${normalizeEmail(email)}.`);
  return user.id;
}


/** Opens the configured database (migrated), runs `work`, and always closes it. */
async function withRuntime<T>(work: (runtime: Runtime) => Promise<T>): Promise<T> {
  const config = loadConfig();
  // The CLI changes the key set only through `keys` commands, never by its own environment.
  const runtime = await bootstrap(config, createLogger(config.logLevel === 'info' ? 'warn' : config.logLevel), { manageKeys: false });
  try {
    return await work(runtime);
  } finally {
    await runtime.close();
  }
}

const program = new Command()
  .name('authgraph')
  .description('Administration of an authgraph server. Uses DATABASE_URL, or the PGlite files in DATA_DIR.')
  .exitOverride();

program
  .command('migrate')
  .description('Apply pending database migrations (the server also does this at start-up).')
  .action(() => withRuntime(async () => console.log('migrations applied')));

program
  .command('print-schema')
  .description('Print the GraphQL schema (SDL, sorted) that is committed as schema.graphql.')
  .option('--write', "write it to schema.graphql, and Apollo's possibleTypes map to possible-types.json, instead of standard output")
  .action(async (options: { write?: boolean }) => {
    const { printPossibleTypes, printSchemaSdl } = await import('./graphql/schema.js');
    if (options.write) {
      writeFileSync('schema.graphql', printSchemaSdl());
      writeFileSync('possible-types.json', printPossibleTypes());
    } else process.stdout.write(printSchemaSdl());
  });

program
  .command('purge')
  .description('Delete revocation entries, refresh tokens and sessions that have expired.')
  .action(() =>
    withRuntime(async ({ services }) => {
      const counts = await purgeExpired(services);
      console.log(
        `purged ${counts.revokedTokens} revoked access tokens, ${counts.sessions} refresh tokens and sessions, ` +
          `${counts.rateLimits} rate-limit counters, ${counts.lockouts} lockouts, ${counts.auditEvents} audit events, ` +
          `${counts.oneTimeTokens} emailed tokens`,
      );
    }),
  );

program
  .command('create-user')
  .description('Create an account (role "user"), reading its password from standard input.')
  .requiredOption('--email <email>', 'the email address')
  .requiredOption('--password-stdin', 'read the password from standard input (never from an argument)')
  .option('--name <name>', 'display name')
  .action((options: { email: string; name?: string }) =>
    withRuntime(async ({ services }) => {
      const password = await readStdin();
      const user = await services.registration.createUser({
        email: parseArgument(accountEmail, options.email, 'email'),
        name: options.name === undefined ? null : parseArgument(accountName, options.name, 'name'),
        password,
      });
      console.log(`created user ${user.email} (${user.id})`);
    }),
  );

program
  .command('grant-role')
  .description('Give a user a role, e.g. make the first admin: grant-role --email you@example.com --role admin')
  .requiredOption('--email <email>', "the user's email")
  .requiredOption('--role <role>', 'the role name (user, admin)')
  .action((options: { email: string; role: string }) =>
    withRuntime(async ({ services }) => {
      const user = await services.roleAdmin.grantRole({ kind: 'operator' }, await userIdByEmail(services, options.email), options.role);
      console.log(`granted ${options.role} to ${user.email}`);
    }),
  );

program
  .command('revoke-role')
  .description('Take a role from a user (the last active admin keeps theirs).')
  .requiredOption('--email <email>', "the user's email")
  .requiredOption('--role <role>', 'the role name')
  .action((options: { email: string; role: string }) =>
    withRuntime(async ({ services }) => {
      const user = await services.roleAdmin.revokeRole({ kind: 'operator' }, await userIdByEmail(services, options.email), options.role);
      console.log(`revoked ${options.role} from ${user.email}`);
    }),
  );

/** The stored key set's manager; under HS* there is none. */
function keyManager(services: AppServices) {
  const manager = services.signingKeys.manager;
  if (!manager) {
    throw new CliError(`JWT_ALGORITHM=${services.signingKeys.algorithm} signs with JWT_SECRET: there is no key set to manage.`);
  }
  return manager;
}

const when = (date: Date | null) => (date ? date.toISOString() : '-');

const keys = program.command('keys').description('The access-token signing keys (JWT_ALGORITHM RS*, ES256, EdDSA).');

keys
  .command('list')
  .description('Every key: kid, algorithm, state, source, created, activates (signs from), retires (stops signing: due, or done), removed at.')
  .action(() =>
    withRuntime(async ({ services }) => {
      const rows = (await keyManager(services).list()).map((k) =>
        [k.kid, k.algorithm, k.state, k.source, when(k.createdAt), when(k.activatesAt), when(k.retiresAt ?? k.retiredAt), when(k.removeAt)].join('\t'),
      );
      console.log(['kid\talg\tstate\tsource\tcreated\tactivates\tretires\tremoved_at', ...rows].join('\n'));
    }),
  );

keys
  .command('rotate')
  .description(
    'Schedule a new key: published now, signing after 2 x JWKS_MAX_AGE; the current key then retires. ' +
      'With --now it signs at once (emergency: clients whose cached key set lacks it refuse its tokens until they refetch).',
  )
  .option('--now', 'make the new key sign at once')
  .action((options: { now?: boolean }) =>
    withRuntime(async ({ services }) => {
      const kid = await keyManager(services).rotate({ immediately: options.now ?? false });
      console.log(options.now ? `key ${kid} signs now` : `key ${kid} is published and will sign after the pre-publication wait`);
    }),
  );

keys
  .command('retire')
  .description(
    'Revoke a compromised key: unpublished and its tokens refused by every instance at once (their sessions refresh). ' +
      'Retiring the signing key promotes a replacement at once. A kid starting with "-" goes after "--".',
  )
  .argument('<kid>', 'the key id (see keys list)')
  .action((kid: string) =>
    withRuntime(async ({ services }) => {
      if (!(await keyManager(services).retire(kid))) throw new CliError(`No published key has the kid ${kid}.`);
      console.log(`key ${kid} is revoked`);
    }),
  );

try {
  await program.parseAsync();
} catch (err) {
  if (err instanceof CommanderError) process.exit(err.exitCode);
  if (err instanceof ConfigError || err instanceof DataDirLockedError || err instanceof CliError) {
    console.error(`authgraph: ${err.message}`);
  } else if (err instanceof AuthError) {
    console.error(`authgraph: ${err.code}: ${err.message}`);
  } else {
    console.error('authgraph:', err instanceof Error ? err.message : err);
  }
  process.exit(1);
}
