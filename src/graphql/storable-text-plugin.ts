import SchemaBuilder, { BasePlugin, type PothosOutputFieldConfig, type SchemaTypes } from '@pothos/core';
import type { StandardSchemaV1 } from '@pothos/plugin-validation';
import type { GraphQLFieldResolver } from 'graphql';
import { InputError } from '../errors.js';
import { isStorableText, UNSTORABLE_TEXT_MESSAGE } from '../storable-text.js';
import { withTypedErrors } from './access-errors.js';

type Path = (string | number)[];

/** Where the first string in `value` that PostgreSQL cannot store as sent sits, or null. */
function findUnstorable(value: unknown, path: Path): Path | null {
  if (typeof value === 'string') return isStorableText(value) ? null : path;
  if (value === null || typeof value !== 'object') return null;
  for (const [key, item] of Object.entries(value)) {
    const found = findUnstorable(item, [...path, Array.isArray(value) ? Number(key) : key]);
    if (found) return found;
  }
  return null;
}

/** The check, as a standard schema over a field's whole (coerced) arguments. */
const storableArguments: StandardSchemaV1 = {
  '~standard': {
    version: 1,
    vendor: 'authgraph',
    validate: (args) => {
      const path = findUnstorable(args, []);
      return path ? { issues: [{ message: UNSTORABLE_TEXT_MESSAGE, path }] } : { value: args };
    },
  },
};

type ErrorClass = abstract new (...args: never[]) => Error;

/** The error classes of the field's result union (read from its options: hooks run before the errors plugin's). */
const errorTypesOf = <Types extends SchemaTypes>(fieldConfig: PothosOutputFieldConfig<Types>) =>
  ((fieldConfig.pothosOptions as { errors?: { types?: ErrorClass[] } }).errors?.types ?? []) as ErrorClass[];

const isInputErrorType = (type: ErrorClass) => type === InputError || InputError.prototype instanceof type;

/**
 * Refuses, on every field with arguments, a string PostgreSQL cannot store, before the field's
 * authorization and resolver run: one check at the edge instead of one per resolver, through
 * @pothos/plugin-validation like any argument validation. The failure is an InputError
 * (INVALID_INPUT, the argument in `field`): the field's union member when its union has one,
 * otherwise a GraphQL error with extensions.code and extensions.field (withTypedErrors).
 * List it after ValidationPlugin: Pothos runs the last plugin's field hook first, and the
 * validation plugin must find the schema this one adds.
 */
export class StorableTextPlugin<Types extends SchemaTypes> extends BasePlugin<Types> {
  override onOutputFieldConfig(fieldConfig: PothosOutputFieldConfig<Types>): PothosOutputFieldConfig<Types> {
    const [first] = Object.keys(fieldConfig.args);
    if (first === undefined) return fieldConfig;
    // A result union without InputError (refresh, verifyEmail) takes opaque tokens only: their
    // strict parsers refuse anything but base64url before any query, as the union's own error
    // (InvalidRefreshTokenError, InvalidTokenError), which is the contract clients handle.
    const unionErrors = errorTypesOf(fieldConfig);
    if (unionErrors.length > 0 && !unionErrors.some(isInputErrorType)) return fieldConfig;
    const arg = fieldConfig.args[first]!;
    const validation = arg.extensions?.['@pothos/plugin-validation'];
    // The validation plugin runs the `parentSchemas` of any argument over all of the arguments.
    const extensions = {
      ...arg.extensions,
      '@pothos/plugin-validation': { ...validation, parentSchemas: [...(validation?.parentSchemas ?? []), storableArguments] },
    };
    return { ...fieldConfig, args: { ...fieldConfig.args, [first]: { ...arg, extensions } } };
  }

  override wrapArgMappers(
    resolver: GraphQLFieldResolver<unknown, Types['Context'], object> | undefined,
    fieldConfig: PothosOutputFieldConfig<Types>,
  ): GraphQLFieldResolver<unknown, Types['Context'], object> | undefined {
    if (!resolver || Object.keys(fieldConfig.args).length === 0) return resolver;
    // Where the field has a result union, the errors plugin (outside this wrapper) answers with it.
    if (errorTypesOf(fieldConfig).length > 0) return resolver;
    return (parent, args, context, info) => withTypedErrors(async () => resolver(parent, args, context, info));
  }
}

declare global {
  export namespace PothosSchemaTypes {
    export interface Plugins<Types extends SchemaTypes> {
      storableText: StorableTextPlugin<Types>;
    }
  }
}

const pluginName = 'storableText';
SchemaBuilder.registerPlugin(pluginName, StorableTextPlugin);

export default pluginName;
