import SchemaBuilder from '@pothos/core';
import ErrorsPlugin from '@pothos/plugin-errors';
import ScopeAuthPlugin from '@pothos/plugin-scope-auth';
import ValidationPlugin from '@pothos/plugin-validation';
import type { Permission } from '../authz/permissions.js';
import type { Context } from '../context.js';
import { authenticatedRecently, passedSecondFactor, usableRoles } from '../sessions/step-up.js';
import { refusalOf } from './access-errors.js';
import RateLimitPlugin from './rate-limit-plugin.js';
import SettledWritesPlugin from './settled-writes-plugin.js';
import StorableTextPlugin from './storable-text-plugin.js';
import { validationInputError } from './validation-error.js';

/**
 * The scopes fields can require. Every decision reads the database state of the current
 * request (Context.access), never the `roles` claim of the token.
 */
export interface AuthScopes {
  authenticated: boolean;
  role: string;
  permission: Permission;
  /** The viewer is the user with this id. */
  self: string;
  /** The session was authenticated or re-authenticated within REAUTH_MAX_AGE seconds. */
  recentAuth: boolean;
  /** The session passed a second factor. */
  secondFactor: boolean;
  /** The session passed a second factor, or the user has none yet (adding the first needs none). */
  secondFactorOnceEnrolled: boolean;
}

/** Configures the schema builder; types register themselves in graphql/types/*. */
export const builder = new SchemaBuilder<{
  Context: Context;
  AuthScopes: AuthScopes;
  DefaultFieldNullability: false;
  Scalars: {
    DateTime: { Input: Date; Output: Date };
    ID: { Input: string; Output: string };
    JSON: { Input: unknown; Output: unknown };
  };
}>({
  // ScopeAuthPlugin first, as its documentation asks; StorableTextPlugin after ValidationPlugin,
  // whose argument validation it feeds.
  plugins: [ScopeAuthPlugin, ErrorsPlugin, ValidationPlugin, StorableTextPlugin, RateLimitPlugin, SettledWritesPlugin],
  defaultFieldNullability: false,
  scopeAuth: {
    // A subscription is authorized once, when it starts (its events are the viewer's own).
    authorizeOnSubscribe: true,
    authScopes: async (context) => {
      const viewer = await context.viewer();
      const claims = viewer.kind === 'user' ? viewer.claims : null;
      const viewerId = claims?.sub ?? null;
      const { reauthMaxAge, secondFactorRoles } = context.services.stepUp;
      const twoFactors = claims !== null && passedSecondFactor(claims);
      // REQUIRE_SECOND_FACTOR_FOR_ROLES: without a second factor, the session holds only what its
      // other roles grant. What a second factor would open is noted, so the refusal can say so.
      let usable: Promise<{ roles: string[]; permissions: string[] } | null> | undefined;
      const usableAccess = () =>
        (usable ??= context.access().then(async (access) => {
          const roles = access && claims ? usableRoles(access.roles, claims, secondFactorRoles) : null;
          if (!access || !roles || roles.length === access.roles.length) return access;
          const permissions = new Set((await Promise.all(roles.map((role) => context.permissionsOfRole(role)))).flat());
          return { roles, permissions: [...permissions] };
        }));
      const holds = async (kind: 'roles' | 'permissions', name: string) => {
        const access = await context.access();
        if (!access?.[kind].includes(name)) return false;
        if ((await usableAccess())![kind].includes(name)) return true;
        context.openedBySecondFactor.add(name);
        return false;
      };
      return {
        authenticated: viewerId !== null,
        self: (userId) => viewerId === userId || context.signedInDuringRequest.has(userId),
        role: (role) => holds('roles', role),
        permission: (permission) => holds('permissions', permission),
        recentAuth: claims !== null && authenticatedRecently(claims, context.services.clock.now(), reauthMaxAge),
        secondFactor: twoFactors,
        // A loader: only the fields that declare it pay for the look-up.
        secondFactorOnceEnrolled: async () =>
          twoFactors || (viewerId !== null && (await context.services.secondFactors.methodsOf(viewerId)).length === 0),
      };
    },
    // authScopes has resolved the viewer before any scope can fail, so peekViewer() is set.
    unauthorizedError: (_parent, context, info, result) =>
      refusalOf(context.peekViewer() ?? { kind: 'anonymous' }, result.failure, context.openedBySecondFactor, info),
  },
  // Argument validation answers InputError, as the field's union member where there is one.
  // It runs before authorization ("unsafely", in the errors plugin's words), on purpose: a
  // validation failure tells only what the client sent, never what the server holds.
  errors: { directResult: true, unsafelyHandleInputErrors: true },
  validation: { validationError: validationInputError },
});
