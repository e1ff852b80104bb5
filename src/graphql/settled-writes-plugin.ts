import SchemaBuilder, {
  BasePlugin,
  type FieldNullability,
  type InputFieldMap,
  type PothosOutputFieldConfig,
  type SchemaTypes,
  type TypeParam,
} from '@pothos/core';
import type { GraphQLFieldResolver } from 'graphql';
import type { Context } from '../context.js';

/**
 * Every mutation field, before its result's fields are read, waits until this instance has
 * received the changes committed so far through the change feed (`settle`): what it changed is
 * then what the rest of the request and the client's next request see (a User's roles right
 * after grantRole, a refusal right after logout), though they read from memory. Also when the
 * field fails: a failure can commit a revocation (a replayed refresh token). Other instances
 * receive the same changes from PostgreSQL at the same time; the bench measures how long it takes.
 *
 * A field declared `settles: 'onFailure'` commits nothing the feed carries when it succeeds (the
 * rotating refresh: a new token and the session's last use, which no instance holds), so its
 * successful answers skip the wait: one statement and one round trip of the listener fewer on
 * the most frequent mutation. test/graphql/settled-writes.test.ts listens on the channel to hold
 * each declaration to that.
 */
export class SettledWritesPlugin<Types extends SchemaTypes> extends BasePlugin<Types> {
  override wrapResolve(
    resolver: GraphQLFieldResolver<unknown, Types['Context'], object>,
    fieldConfig: PothosOutputFieldConfig<Types>,
  ): GraphQLFieldResolver<unknown, Types['Context'], object> {
    if (fieldConfig.parentType !== 'Mutation') return resolver;
    const onFailureOnly = fieldConfig.pothosOptions.settles === 'onFailure';
    return async (parent, args, context, info) => {
      let succeeded = false;
      try {
        const result: unknown = await resolver(parent, args, context, info);
        // The errors plugin wraps this one (thrown errors arrive here thrown); an error a
        // resolver returns is a failure too.
        succeeded = !(result instanceof Error);
        return result;
      } finally {
        if (!(onFailureOnly && succeeded)) await (context as Context).services.changes.settle();
      }
    };
  }
}

declare global {
  export namespace PothosSchemaTypes {
    export interface Plugins<Types extends SchemaTypes> {
      settledWrites: SettledWritesPlugin<Types>;
    }
    export interface FieldOptions<
      Types extends SchemaTypes,
      ParentShape,
      Type extends TypeParam<Types>,
      Nullable extends FieldNullability<Type>,
      Args extends InputFieldMap,
      ResolveShape,
      ResolveReturnShape,
    > {
      /**
       * Mutations only. 'always' (the default): every answer waits until this instance has heard
       * what was committed. 'onFailure': a successful answer commits nothing the change feed
       * carries, so only failures wait.
       */
      settles?: 'always' | 'onFailure';
    }
  }
}

const pluginName = 'settledWrites';
SchemaBuilder.registerPlugin(pluginName, SettledWritesPlugin);

export default pluginName;
