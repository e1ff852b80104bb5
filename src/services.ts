import { createAuditLog } from './audit/audit-log.js';
import { createAccessTokenCodec } from './auth/access-tokens.js';
import { createRevocationList } from './auth/revocation.js';
import { createAuthService } from './auth/service.js';
import { createRoleAdmin } from './authz/role-admin.js';
import type { SigningKeys } from './auth/signing-keys.js';
import type { Clock } from './clock.js';
import type { Config } from './config.js';
import type { AppServices } from './context.js';
import type { Database } from './db/client.js';
import type { Logger } from './logger.js';

/** Wires the long-lived services from configuration, keys and a database. */
export function createServices(options: {
  config: Config;
  db: Database;
  keys: SigningKeys;
  clock: Clock;
  logger: Logger;
}): AppServices {
  const { config, db, keys, clock, logger } = options;
  const accessTokens = createAccessTokenCodec(keys, {
    issuer: config.jwt.issuer,
    audience: config.jwt.audience,
    ttlSeconds: config.accessTokenTtl,
  });
  const revocations = createRevocationList(db);
  const audit = createAuditLog({ db, clock, logger });
  const auth = createAuthService({
    db,
    clock,
    audit,
    accessTokens,
    revocations,
    sessionPolicy: {
      refreshTokenTtl: config.refreshTokenTtl,
      sessionMaxAge: config.sessionMaxAge,
      refreshReuseGrace: config.refreshReuseGrace,
      successorKey: keys.successorKey,
    },
  });
  const roleAdmin = createRoleAdmin({ db, clock, audit });
  return { db, clock, logger, audit, auth, accessTokens, revocations, roleAdmin, trustProxy: config.trustProxy };
}
