/**
 * Codes of errors that mean "the database could not be reached or did not answer", as opposed
 * to a query that the database refused:
 * - postgres.js's own connection errors, and our reply deadline (db/reply-deadline.ts);
 * - socket errors of the connection to it;
 * - SQLSTATEs of a server that is going away or cancelled the statement: 57P01-57P03
 *   (terminated, crashed, starting up), 57014 (statement_timeout), 53300 (too many
 *   connections), and class 08 (connection exception).
 */
const DRIVER_CODES = new Set(['CONNECTION_CLOSED', 'CONNECTION_DESTROYED', 'CONNECTION_ENDED', 'CONNECT_TIMEOUT', 'DATABASE_NO_REPLY']);
const SOCKET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);
const SQLSTATES = new Set(['57P01', '57P02', '57P03', '57014', '53300']);

/**
 * Whether `err` (or an error it wraps: drizzle's DrizzleQueryError keeps the driver's error as
 * `cause`, GraphQL errors as `originalError`) says the database is unreachable or not answering.
 */
export function isDatabaseOutage(err: unknown): boolean {
  for (let e = err, depth = 0; e instanceof Error && depth < 5; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') {
      if (DRIVER_CODES.has(code) || SOCKET_CODES.has(code)) return true;
      if (e.name === 'PostgresError' && (SQLSTATES.has(code) || code.startsWith('08'))) return true;
    }
    e = (e as { originalError?: unknown }).originalError ?? e.cause;
  }
  return false;
}
