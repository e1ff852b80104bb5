import SchemaBuilder, {
  BasePlugin,
  type FieldNullability,
  type InputFieldMap,
  type InputShapeFromFields,
  type PothosOutputFieldConfig,
  type SchemaTypes,
  type TypeParam,
} from '@pothos/core';
import type { GraphQLFieldResolver } from 'graphql';
import type { RateLimitName } from '../config.js';
import type { Context } from '../context.js';
import { withTypedErrors } from './access-errors.js';

/**
 * A field's rate limits, declared next to its access policy: which limits count one execution,
 * and by which key. A field that declares any is "sensitive": an operation may hold one.
 */
export interface RateLimitDeclaration<Args = Record<string, unknown>> {
  /** Counted per client IP (an IPv6 client per /64). */
  ip?: RateLimitName[];
  /** Counted per signed-in account (the field must require a signed-in user). */
  account?: RateLimitName[];
  /** Counted per email taken from the (parsed, so normalized) arguments, whether or not an account has it. */
  email?: { limits: RateLimitName[]; of: (args: Args) => string };
}

/** The declaration as stored in the GraphQL field's extensions (read by the validation rule and tests). */
export const RATE_LIMIT_EXTENSION = 'authgraphRateLimit';

const hasResultUnion = <Types extends SchemaTypes>(fieldConfig: PothosOutputFieldConfig<Types>) =>
  Boolean((fieldConfig.pothosOptions as { errors?: unknown }).errors);

const KEY_WORDS = { ip: 'client IP', account: 'account', email: 'email address' } as const;

/** The declaration as a sentence for the schema description; `union`: the field answers RateLimitedError as a member. */
export function describeRateLimits(declaration: RateLimitDeclaration<never>, union: boolean): string {
  const parts = [
    ...(declaration.ip ?? []).map((name) => `\`RATE_LIMIT_${name}\` per ${KEY_WORDS.ip}`),
    ...(declaration.account ?? []).map((name) => `\`RATE_LIMIT_${name}\` per ${KEY_WORDS.account}`),
    ...(declaration.email?.limits ?? []).map((name) => `\`RATE_LIMIT_${name}\` per ${KEY_WORDS.email}`),
  ];
  const refusal = union
    ? 'RateLimitedError with retryAfter'
    : 'a GraphQL error with extensions.code RATE_LIMITED and extensions.retryAfter';
  return `Rate limits: ${parts.join(', ')}. Over a limit: ${refusal}.`;
}

/**
 * Counts every execution of a field that declares `rateLimit`, before its resolver runs and
 * after its access check (scope-auth wraps outside this plugin), and documents the limits in the
 * field's description. Over a limit the field answers RateLimitedError: its union member where
 * its union has one (the errors plugin wraps outside), else a GraphQL error with
 * extensions.code RATE_LIMITED and retryAfter.
 */
export class RateLimitPlugin<Types extends SchemaTypes> extends BasePlugin<Types> {
  override onOutputFieldConfig(fieldConfig: PothosOutputFieldConfig<Types>): PothosOutputFieldConfig<Types> {
    const declaration = fieldConfig.pothosOptions.rateLimit as RateLimitDeclaration<never> | undefined;
    if (!declaration) return fieldConfig;
    // Before the access rule, which stays the description's last paragraph (policy.ts).
    const paragraphs = fieldConfig.description ? fieldConfig.description.split('\n\n') : [];
    const at = paragraphs.at(-1)?.startsWith('Access: ') ? paragraphs.length - 1 : paragraphs.length;
    paragraphs.splice(at, 0, describeRateLimits(declaration, hasResultUnion(fieldConfig)));
    const description = paragraphs.join('\n\n');
    return { ...fieldConfig, description, extensions: { ...fieldConfig.extensions, [RATE_LIMIT_EXTENSION]: declaration } };
  }

  override wrapResolve(
    resolver: GraphQLFieldResolver<unknown, Types['Context'], object>,
    fieldConfig: PothosOutputFieldConfig<Types>,
  ): GraphQLFieldResolver<unknown, Types['Context'], object> {
    const declaration = fieldConfig.pothosOptions.rateLimit as RateLimitDeclaration | undefined;
    if (!declaration) return resolver;
    const hasUnion = hasResultUnion(fieldConfig);
    return async (parent, args, context, info) => {
      const ctx = context as Context;
      const count = async () => {
        const viewer = declaration.account ? await ctx.viewer() : null;
        await ctx.services.guard.attempt(info.fieldName, {
          request: ctx.request,
          limits: declaration,
          userId: viewer?.kind === 'user' ? viewer.claims.sub : undefined,
          email: declaration.email?.of(args as Record<string, unknown>),
        });
      };
      if (hasUnion) await count();
      else await withTypedErrors(count);
      return resolver(parent, args, context, info);
    };
  }
}

declare global {
  export namespace PothosSchemaTypes {
    export interface Plugins<Types extends SchemaTypes> {
      rateLimit: RateLimitPlugin<Types>;
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
      rateLimit?: RateLimitDeclaration<InputShapeFromFields<Args>>;
    }
  }
}

const pluginName = 'rateLimit';
SchemaBuilder.registerPlugin(pluginName, RateLimitPlugin);

export default pluginName;
