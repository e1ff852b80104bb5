import DataLoader from 'dataloader';
import type { YogaInitialContext } from 'graphql-yoga';
import type { AccessClaims, AccessTokenFailure } from './tokens/access-tokens.js';
import type { RevocationReason } from './sessions/revocation.js';
import type { Access } from './authz/permissions.js';
import type { RefreshCookieJar } from './sessions/refresh-cookie.js';
import type { AppServices } from './services.js';
import { readRequestInfo, type RequestInfo, type ServerContext } from './request-info.js';

/**
 * Who is calling: nobody, somebody whose token was refused (and why), or a signed-in user. A
 * refused token that is ours but expired keeps its claims, for logout alone (see AccessTokenCheck).
 */
export type Viewer =
  | { kind: 'anonymous' }
  | { kind: 'refused'; reason: Exclude<AccessTokenFailure, 'expired'> | RevocationReason | 'bad_scheme' }
  | { kind: 'refused'; reason: 'expired'; claims: AccessClaims }
  | { kind: 'user'; claims: AccessClaims };

/** What resolvers may use: the services, never the database handle (they ask a service). */
export type ResolverServices = Omit<AppServices, 'db'>;

export interface Context {
  services: ResolverServices;
  request: RequestInfo;
  /** The request's refresh cookie (REFRESH_TOKEN_TRANSPORT cookie or both): read, set, cleared. */
  refreshCookie: RefreshCookieJar;
  /** Resolves the bearer token once per request; never throws for a bad token. */
  viewer(): Promise<Viewer>;
  /** The viewer if `viewer()` has resolved already (scope-auth's error callback is synchronous). */
  peekViewer(): Viewer | undefined;
  /**
   * Users this request has proven to be by signing in (register, login, refresh): the
   * AuthPayload's own user counts as "self" even though no token came with the request.
   */
  signedInDuringRequest: Set<string>;
  /**
   * Roles and permissions the viewer holds but may not use in this session until it passes a
   * second factor (REQUIRE_SECOND_FACTOR_FOR_ROLES); a refusal for them is SECOND_FACTOR_REQUIRED.
   */
  openedBySecondFactor: Set<string>;
  /**
   * A user's roles and permissions as stored now, loaded at most once per request; the users a
   * list asks for together are loaded in one query.
   */
  accessOf(userId: string): Promise<Access>;
  /** The permissions a role grants, the roles a list asks for together in one query. */
  permissionsOfRole(role: string): Promise<string[]>;
  /** Drops a user's cached access after this request changed it (grant, revoke). */
  forgetAccess(userId: string): void;
  /** The viewer's access, or null when nobody is signed in. */
  access(): Promise<Access | null>;
}

async function authenticate(header: string | null, services: ResolverServices): Promise<Viewer> {
  if (!header) return { kind: 'anonymous' };
  const match = /^Bearer +(\S+)\s*$/i.exec(header);
  if (!match) return { kind: 'refused', reason: 'bad_scheme' };
  const now = services.clock.now();
  const check = await services.accessTokens.verify(match[1]!, now);
  if (!check.ok) {
    return check.reason === 'expired' ? { kind: 'refused', reason: 'expired', claims: check.claims } : { kind: 'refused', reason: check.reason };
  }
  const revoked = await services.revocations.isRevoked(check.claims, now);
  if (revoked) return { kind: 'refused', reason: revoked };
  return { kind: 'user', claims: check.claims };
}

/** Builds the per-request context; authentication is lazy, so fields that need none never pay for it. */
export function createContextFactory(services: ResolverServices) {
  return (initial: YogaInitialContext & ServerContext): Context => {
    // Yoga copies this object's properties into its own context, so per-request state lives in
    // closures (and objects shared by reference), never in properties reassigned later.
    let pending: Promise<Viewer> | undefined;
    let resolved: Viewer | undefined;
    // Per request: batches the lookups of one list into one query, and caches them for the
    // request. Made on first use: most requests never look anyone's access up.
    let accessLoader: DataLoader<string, Access> | undefined;
    let rolePermissions: DataLoader<string, string[]> | undefined;
    const accessLoaderOf = () =>
      (accessLoader ??= new DataLoader<string, Access>(async (ids) => {
        const loaded = await services.directory.accessOf(ids);
        return ids.map((id) => loaded.get(id)!);
      }));
    const rolePermissionsOf = () =>
      (rolePermissions ??= new DataLoader<string, string[]>(async (names) => {
        const loaded = await services.directory.permissionsOf(names);
        return names.map((name) => loaded.get(name)!);
      }));
    const authorization = initial.request.headers.get('authorization');
    const context: Context = {
      services,
      request: readRequestInfo(initial.request, initial, services.trustProxy),
      refreshCookie: services.refreshCookies.jarFor(initial.request),
      peekViewer: () => resolved,
      signedInDuringRequest: new Set(),
      openedBySecondFactor: new Set(),
      viewer() {
        pending ??= authenticate(authorization, services).then((viewer) => {
          if (viewer.kind === 'refused') services.logger.debug({ reason: viewer.reason }, 'access token refused');
          resolved = viewer;
          return viewer;
        });
        return pending;
      },
      accessOf: (userId) => accessLoaderOf().load(userId),
      permissionsOfRole: (role) => rolePermissionsOf().load(role),
      forgetAccess(userId) {
        accessLoader?.clear(userId);
      },
      async access() {
        const viewer = await context.viewer();
        return viewer.kind === 'user' ? context.accessOf(viewer.claims.sub) : null;
      },
    };
    return context;
  };
}
