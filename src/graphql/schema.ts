import { lexicographicSortSchema, printSchema } from 'graphql';
import { builder } from './builder.js';
import './types/scalars.js';
import './types/errors.js';
import './types/user.js';
import './types/user-connection.js';
import './types/user-admin.js';
import './types/role.js';
import './types/admin-stats.js';
import './types/audit-event.js';
import './types/auth.js';
import './types/session.js';
import './types/account.js';

builder.queryType({});
builder.mutationType({});

/** The executable schema. */
export const schema = builder.toSchema({ sortSchema: true });

/** The SDL committed as schema.graphql: printed, lexicographically sorted. */
export function printSchemaSdl(): string {
  return `${printSchema(lexicographicSortSchema(schema))}\n`;
}
