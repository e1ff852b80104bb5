/**
 * Runs `work` with stack-trace capture off, for errors that are answers, not faults (a refused
 * token, a copy made for serialization): capturing a trace is most of what such an error
 * costs, and formatting it (through source maps under tsx) more still. Synchronous work only:
 * the limit is restored as soon as `work` returns, before anything it started asynchronously runs.
 */
export function withoutStackTraces<T>(work: () => T): T {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return work();
  } finally {
    Error.stackTraceLimit = limit;
  }
}
