import {
  GraphQLError,
  Kind,
  type GraphQLObjectType,
  type GraphQLSchema,
  type SelectionSetNode,
  type ValidationContext,
  type ValidationRule,
} from 'graphql';
import { RATE_LIMIT_EXTENSION } from './rate-limit-plugin.js';

/** The root fields that declare rate limits (the "sensitive" ones), per root type. */
export function sensitiveFieldsOf(schema: GraphQLSchema): string[] {
  return [schema.getQueryType(), schema.getMutationType()].flatMap((type) =>
    type ? Object.values(type.getFields()).filter((field) => field.extensions[RATE_LIMIT_EXTENSION]).map((field) => field.name) : [],
  );
}

function sensitiveFieldsIn(
  selectionSet: SelectionSetNode,
  root: GraphQLObjectType,
  context: ValidationContext,
  seen: Set<string>,
): string[] {
  const found: string[] = [];
  for (const selection of selectionSet.selections) {
    if (selection.kind === Kind.FIELD) {
      if (root.getFields()[selection.name.value]?.extensions[RATE_LIMIT_EXTENSION]) {
        found.push(selection.alias?.value ?? selection.name.value);
      }
    } else if (selection.kind === Kind.INLINE_FRAGMENT) {
      found.push(...sensitiveFieldsIn(selection.selectionSet, root, context, seen));
    } else if (!seen.has(selection.name.value)) {
      seen.add(selection.name.value);
      const fragment = context.getFragment(selection.name.value);
      if (fragment) found.push(...sensitiveFieldsIn(fragment.selectionSet, root, context, seen));
    }
  }
  return found;
}

/**
 * Rate limits count executions of sensitive fields (those declaring `rateLimit`), and one
 * request could otherwise carry a hundred aliased `login`s: an operation may hold at most one.
 */
export const SingleSensitiveFieldRule: ValidationRule = (context) => ({
  OperationDefinition(operation) {
    const root = context.getSchema().getRootType(operation.operation);
    if (!root) return;
    const found = sensitiveFieldsIn(operation.selectionSet, root, context, new Set());
    if (found.length > 1) {
      context.reportError(
        new GraphQLError(
          `An operation may contain at most one of ${sensitiveFieldsOf(context.getSchema()).join(', ')}; this one has ${found.length} (${found.join(', ')}).`,
          { nodes: [operation] },
        ),
      );
    }
  },
});
