import type { Plugin } from 'graphql-yoga';
import { withoutStackTraces } from '../graphql/stack-traces.js';

/**
 * Yoga copies every error of an answer while serializing it, and each copy captures a stack
 * trace that the next copy then formats (through source maps, under tsx): for a refused
 * request that is most of its CPU, spent on traces nobody reads. The copies exist only to be
 * turned into JSON, so the serializing step runs without capturing traces. Errors are logged
 * (with their traces) before this step, when yoga masks them.
 */
export function useStacklessSerialization(): Plugin {
  return {
    instrumentation: {
      resultProcess: (_payload, serialize) => withoutStackTraces(serialize),
    },
  };
}
