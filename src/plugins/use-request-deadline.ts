import type { ExecutionResult } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { serviceUnavailableError } from '../graphql/outage-error.js';

/**
 * Answers every operation within `ms` (unset: no limit): one still running then gets
 * SERVICE_UNAVAILABLE (503).
 * The database timeouts end most waits before this; it bounds what they can't see (waiting for
 * a pooled connection, many statements in a row, each just under its limit). The work itself
 * is not stopped: a mutation may still complete after its client got the error.
 */
export function useRequestDeadline({ ms }: { ms?: number | undefined }): Plugin {
  if (ms === undefined) return {};
  return {
    onExecute({ executeFn, setExecuteFn }) {
      setExecuteFn(async (args) => {
        let timer: NodeJS.Timeout | undefined;
        const expired = new Promise<ExecutionResult>((resolve) => {
          timer = setTimeout(() => resolve({ data: null, errors: [serviceUnavailableError()] }), ms);
        });
        try {
          return await Promise.race([executeFn(args) as Promise<ExecutionResult>, expired]);
        } finally {
          clearTimeout(timer);
        }
      });
    },
  };
}
