import { isAbstractType, lexicographicSortSchema, printSchema, type GraphQLSchema } from 'graphql';
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
import './types/reauthentication.js';
import './types/second-factor.js';
import './types/passkey.js';
import './types/viewer-event.js';
import './types/social.js';

builder.queryType({});
builder.mutationType({});
builder.subscriptionType({});

/** The executable schema. */
export const schema = builder.toSchema({ sortSchema: true });

/** The SDL committed as schema.graphql: printed, lexicographically sorted. */
export function printSchemaSdl(): string {
  return `${printSchema(lexicographicSortSchema(schema))}\n`;
}

/**
 * The JSON committed as possible-types.json: each union and interface with the object types it
 * may resolve to, sorted. Apollo Client's InMemoryCache needs it (`possibleTypes`) to match
 * `... on Error` fragments; without it, it silently drops their fields. Takes a schema so that
 * tests can derive it from the committed SDL too.
 */
export function printPossibleTypes(from: GraphQLSchema = schema): string {
  const abstract = Object.values(from.getTypeMap())
    .filter(isAbstractType)
    .filter((type) => !type.name.startsWith('__'))
    .sort((a, b) => a.name.localeCompare(b.name));
  const map = Object.fromEntries(abstract.map((type) => [type.name, from.getPossibleTypes(type).map((t) => t.name).sort()]));
  return `${JSON.stringify(map, null, 2)}\n`;
}
