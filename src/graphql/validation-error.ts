import type { StandardSchemaV1 } from '@pothos/plugin-validation';
import { InputError } from '../errors.js';

/**
 * An argument validation failure (@pothos/plugin-validation) as the InputError clients already
 * handle. `field` is named the way the resolvers' own InputErrors name it: the argument
 * (`newPassword`, `userId`) or, inside an input object argument, the path below it (`email`,
 * `name` of register's `input`; `tags.2` for an item of a list). The first issue is reported.
 */
export function validationInputError(failure: StandardSchemaV1.FailureResult, args: Record<string, unknown>): InputError {
  const [issue] = failure.issues;
  const path = (issue?.path ?? []).map((segment) => String(typeof segment === 'object' ? segment.key : segment));
  const [argument, ...inside] = path;
  const value = argument === undefined ? undefined : args[argument];
  const isInputObject = inside.length > 0 && value !== null && typeof value === 'object' && !Array.isArray(value);
  return new InputError((isInputObject ? inside : path).join('.'), issue?.message ?? 'This input is not valid.');
}
