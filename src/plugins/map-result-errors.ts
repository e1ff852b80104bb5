import type { ExecutionResult, GraphQLError } from 'graphql';
import { isAsyncIterable, mapAsyncIterator, type Plugin } from 'graphql-yoga';

/** What yoga is about to serialize: one result, a batch, or a stream of results. */
export type ResultProcessorInput = Parameters<NonNullable<Plugin['onResultProcess']>>[0]['result'];

/**
 * Applies `rewrite` to every error of an answer, whatever produced it (request parsing,
 * validation, variable coercion, execution). Meant for `onResultProcess`, the last hook
 * before serialization.
 */
export function mapResultErrors(result: ResultProcessorInput, rewrite: (error: GraphQLError) => GraphQLError): ResultProcessorInput {
  const one = <T extends ExecutionResult>(single: T): T =>
    single.errors?.length ? { ...single, errors: single.errors.map(rewrite) } : single;
  if (isAsyncIterable(result)) return mapAsyncIterator(result, one);
  return Array.isArray(result) ? result.map(one) : one(result);
}
