import SchemaBuilder, { BasePlugin, type PothosOutputFieldConfig, type SchemaTypes } from '@pothos/core';
import type { GraphQLFieldResolver } from 'graphql';
import type { Context } from '../context.js';

/**
 * Every mutation field, before its result's fields are read, waits until this instance has
 * received the changes committed so far through the change feed (`settle`): what it changed is
 * then what the rest of the request and the client's next request see (a User's roles right
 * after grantRole, a refusal right after logout), though they read from memory. Also when the
 * field fails: a failure can commit a revocation (a replayed refresh token). Other instances
 * receive the same changes from PostgreSQL at the same time; the bench measures how long it takes.
 */
export class SettledWritesPlugin<Types extends SchemaTypes> extends BasePlugin<Types> {
  override wrapResolve(
    resolver: GraphQLFieldResolver<unknown, Types['Context'], object>,
    fieldConfig: PothosOutputFieldConfig<Types>,
  ): GraphQLFieldResolver<unknown, Types['Context'], object> {
    if (fieldConfig.parentType !== 'Mutation') return resolver;
    return async (parent, args, context, info) => {
      try {
        return await resolver(parent, args, context, info);
      } finally {
        await (context as Context).services.changes.settle();
      }
    };
  }
}

declare global {
  export namespace PothosSchemaTypes {
    export interface Plugins<Types extends SchemaTypes> {
      settledWrites: SettledWritesPlugin<Types>;
    }
  }
}

const pluginName = 'settledWrites';
SchemaBuilder.registerPlugin(pluginName, SettledWritesPlugin);

export default pluginName;
