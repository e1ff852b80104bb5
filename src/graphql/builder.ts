import SchemaBuilder from '@pothos/core';
import ErrorsPlugin from '@pothos/plugin-errors';
import ScopeAuthPlugin from '@pothos/plugin-scope-auth';
import type { Context } from '../context.js';
import { accessError } from './access-errors.js';

/** The scopes fields can require. */
export interface AuthScopes {
  authenticated: boolean;
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
  // ScopeAuthPlugin first, as its documentation asks.
  plugins: [ScopeAuthPlugin, ErrorsPlugin],
  defaultFieldNullability: false,
  scopeAuth: {
    authScopes: async (context) => {
      const viewer = await context.viewer();
      return { authenticated: viewer.kind === 'user' };
    },
    unauthorizedError: (_parent, context) =>
      accessError(context.resolvedViewer?.kind === 'user' ? 'FORBIDDEN' : 'UNAUTHENTICATED'),
  },
  errors: { directResult: true },
});
