import SchemaBuilder from '@pothos/core';
import ErrorsPlugin from '@pothos/plugin-errors';
import ScopeAuthPlugin from '@pothos/plugin-scope-auth';
import ValidationPlugin from '@pothos/plugin-validation';
import type { Permission } from '../authz/permissions.js';
import type { Context } from '../context.js';
import { unauthenticatedError } from './access-errors.js';
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
}

/** Configures the schema builder; types register themselves in graphql/types/*. */
export const builder = new SchemaBuilder<{
  Context: Context;
  AuthScopes: AuthScopes;
  DefaultFieldNullability: false;
  Scalars: {
    DateTime: { Input: Date; Output: Date };
    ID: { Input: string; Output: string };
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
      const viewerId = viewer.kind === 'user' ? viewer.claims.sub : null;
      return {
        authenticated: viewerId !== null,
        self: (userId) => viewerId === userId || context.signedInDuringRequest.has(userId),
        role: async (role) => (await context.access())?.roles.includes(role) ?? false,
        permission: async (permission) => (await context.access())?.permissions.includes(permission) ?? false,
      };
    },
    // authScopes has resolved the viewer before any scope can fail, so peekViewer() is set.
    unauthorizedError: (_parent, context, info) => unauthenticatedError(context.peekViewer() ?? { kind: 'anonymous' }, info),
  },
  // Argument validation answers InputError, as the field's union member where there is one.
  // It runs before authorization ("unsafely", in the errors plugin's words), on purpose: a
  // validation failure tells only what the client sent, never what the server holds.
  errors: { directResult: true, unsafelyHandleInputErrors: true },
  validation: { validationError: validationInputError },
});
