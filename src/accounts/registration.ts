import type { AuditLog } from '../audit/audit-log.js';
import type { Clock } from '../clock.js';
import { assertPasswordPolicy, relatedInputs } from '../credentials/password-policy.js';
import type { Passwords } from '../credentials/passwords.js';
import type { Database } from '../db/client.js';
import type { RequestInfo } from '../request-info.js';
import type { AuthService } from '../sessions/session-service.js';
import { startSession, type SessionPolicy } from '../sessions/sessions.js';
import { insertUser, recordSignIn, toAccount, type Account } from './accounts.js';

export interface RegistrationDeps {
  db: Database;
  clock: Clock;
  audit: AuditLog;
  passwords: Passwords;
  auth: Pick<AuthService, 'issueTokens'>;
  sessionPolicy: SessionPolicy;
}

/**
 * A new account's fields, parsed where they came in (graphql/arguments.ts: accountEmail,
 * accountName; the CLI uses the same parsers): a normalized valid email, a name or null.
 */
export interface NewAccount {
  email: string;
  password: string;
  name?: string | null | undefined;
}

/** Applies the password policy (which needs the email and name) and hashes the password. */
async function prepareAccount(input: NewAccount, passwords: Passwords) {
  const name = input.name ?? null;
  await assertPasswordPolicy(input.password, relatedInputs(input.email, name));
  return { email: input.email, name, passwordHash: await passwords.hash(input.password) };
}

/** Creating accounts: sign-up through the API, and the operator's CLI. */
export function createRegistration(deps: RegistrationDeps) {
  const { db, clock, audit, passwords, auth, sessionPolicy } = deps;

  return {
    /** Creates an account with role `user` and signs it in. */
    async register(input: NewAccount, request: RequestInfo) {
      const account = await prepareAccount(input, passwords);
      const now = clock.now();
      const { user, session, refreshToken } = await db.transaction(async (tx) => {
        const created = await insertUser(tx, { ...account, now });
        const user = await recordSignIn(tx, created.id, { now });
        const started = await startSession(tx, { userId: user.id, request, now, policy: sessionPolicy });
        await audit.record({ type: 'register', userId: user.id, request, detail: { sessionId: started.session.id } }, tx);
        return { user, ...started };
      });
      return auth.issueTokens(user, session, refreshToken, now);
    },

    /** Creates an account with role `user` without signing in (the operator's CLI). */
    async createUser(input: NewAccount): Promise<Account> {
      const account = await prepareAccount(input, passwords);
      return db.transaction(async (tx) => {
        const user = await insertUser(tx, { ...account, now: clock.now() });
        await audit.record({ type: 'register', userId: user.id, detail: { via: 'cli' } }, tx);
        return toAccount(user);
      });
    },

  };
}

export type Registration = ReturnType<typeof createRegistration>;
