import { GraphQLError, Kind, type SelectionSetNode, type ValidationContext, type ValidationRule } from 'graphql';
import { SENSITIVE_FIELDS } from '../abuse/guard.js';

const SENSITIVE = new Set<string>(SENSITIVE_FIELDS);

function sensitiveFieldsIn(selectionSet: SelectionSetNode, context: ValidationContext, seen: Set<string>): string[] {
  const found: string[] = [];
  for (const selection of selectionSet.selections) {
    if (selection.kind === Kind.FIELD) {
      if (SENSITIVE.has(selection.name.value)) found.push(selection.alias?.value ?? selection.name.value);
    } else if (selection.kind === Kind.INLINE_FRAGMENT) {
      found.push(...sensitiveFieldsIn(selection.selectionSet, context, seen));
    } else if (!seen.has(selection.name.value)) {
      seen.add(selection.name.value);
      const fragment = context.getFragment(selection.name.value);
      if (fragment) found.push(...sensitiveFieldsIn(fragment.selectionSet, context, seen));
    }
  }
  return found;
}

/**
 * Rate limits count executions of sensitive fields, and one request could otherwise carry a
 * hundred aliased `login`s: an operation may hold at most one sensitive root field.
 */
export const SingleSensitiveFieldRule: ValidationRule = (context) => ({
  OperationDefinition(operation) {
    const found = sensitiveFieldsIn(operation.selectionSet, context, new Set());
    if (found.length > 1) {
      context.reportError(
        new GraphQLError(
          `An operation may contain at most one of ${SENSITIVE_FIELDS.join(', ')}; this one has ${found.length} (${found.join(', ')}).`,
          { nodes: [operation] },
        ),
      );
    }
  },
});
