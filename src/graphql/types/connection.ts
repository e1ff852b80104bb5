import type { ObjectRef } from '@pothos/core';
import { encodeCursor, type CursorPosition, type Page } from '../../db/cursor.js';
import { builder } from '../builder.js';

type Types = typeof builder extends PothosSchemaTypes.SchemaBuilder<infer T> ? T : never;

const PageInfo = builder.objectRef<{ hasNextPage: boolean; endCursor: string | null }>('PageInfo').implement({
  fields: (t) => ({
    hasNextPage: t.exposeBoolean('hasNextPage'),
    endCursor: t.exposeString('endCursor', { nullable: true, description: 'Pass as `after` to get the next page.' }),
  }),
});

/** Registers `<Name>Connection` and `<Name>Edge` for a node type (cursor pagination). */
export function connectionOf<T extends CursorPosition>(name: string, node: ObjectRef<Types, T>, description: string) {
  const Edge = builder.objectRef<{ node: T }>(`${name}Edge`).implement({
    fields: (t) => ({
      cursor: t.string({ resolve: (edge) => encodeCursor(edge.node) }),
      node: t.expose('node', { type: node }),
    }),
  });
  return builder.objectRef<Page<T>>(`${name}Connection`).implement({
    description,
    fields: (t) => ({
      edges: t.field({ type: [Edge], resolve: (page) => page.items.map((item) => ({ node: item })) }),
      pageInfo: t.field({
        type: PageInfo,
        resolve: (page) => {
          const last = page.items.at(-1);
          return { hasNextPage: page.hasNextPage, endCursor: last ? encodeCursor(last) : null };
        },
      }),
    }),
  });
}
