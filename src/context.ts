import type { YogaInitialContext } from 'graphql-yoga';
import type { AccessClaims, AccessTokenCodec, AccessTokenFailure } from './auth/access-tokens.js';
import type { RevocationList, RevocationReason } from './auth/revocation.js';
import type { AuthService } from './auth/service.js';
import type { RequestInfo } from './auth/sessions.js';
import type { Clock } from './clock.js';
import type { Database } from './db/client.js';
import type { Logger } from './logger.js';
import { readRequestInfo, type ServerContext } from './request-info.js';

/** Who is calling: nobody, somebody whose token was refused (and why), or a signed-in user. */
export type Viewer =
  | { kind: 'anonymous' }
  | { kind: 'refused'; reason: AccessTokenFailure | RevocationReason | 'bad_scheme' }
  | { kind: 'user'; claims: AccessClaims };

/** Long-lived pieces the per-request context is built from. */
export interface AppServices {
  db: Database;
  clock: Clock;
  logger: Logger;
  auth: AuthService;
  accessTokens: AccessTokenCodec;
  revocations: RevocationList;
  trustProxy: boolean;
}

export interface Context {
  services: AppServices;
  request: RequestInfo;
  /** Resolves the bearer token once per request; never throws for a bad token. */
  viewer(): Promise<Viewer>;
  /** The viewer once `viewer()` has resolved (scope checks read it synchronously). */
  resolvedViewer: Viewer | undefined;
}

async function authenticate(header: string | null, services: AppServices): Promise<Viewer> {
  if (!header) return { kind: 'anonymous' };
  const match = /^Bearer +(\S+)\s*$/i.exec(header);
  if (!match) return { kind: 'refused', reason: 'bad_scheme' };
  const now = services.clock.now();
  const check = await services.accessTokens.verify(match[1]!, now);
  if (!check.ok) return { kind: 'refused', reason: check.reason };
  const revoked = await services.revocations.isRevoked(check.claims, now);
  if (revoked) return { kind: 'refused', reason: revoked };
  return { kind: 'user', claims: check.claims };
}

/** Builds the per-request context; authentication is lazy, so fields that need none never pay for it. */
export function createContextFactory(services: AppServices) {
  return (initial: YogaInitialContext & ServerContext): Context => {
    let pending: Promise<Viewer> | undefined;
    const authorization = initial.request.headers.get('authorization');
    const context: Context = {
      services,
      request: readRequestInfo(initial.request, initial, services.trustProxy),
      resolvedViewer: undefined,
      viewer() {
        pending ??= authenticate(authorization, services).then((viewer) => {
          if (viewer.kind === 'refused') services.logger.debug({ reason: viewer.reason }, 'access token refused');
          context.resolvedViewer = viewer;
          return viewer;
        });
        return pending;
      },
    };
    return context;
  };
}
