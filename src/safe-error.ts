import { DrizzleQueryError } from 'drizzle-orm';
import { GraphQLError } from 'graphql';

/** An error as the log keeps it: what an operator needs to act, never a value the failed code was handed. */
export interface LoggedError {
  type: string;
  message: string;
  stack?: string;
  /** PostgreSQL SQLSTATE (23505 …) or Node's code (ECONNREFUSED …). */
  code?: string;
  /** The SQL text of a failed query: placeholders ($1 …) only, never the values bound to them. */
  query?: string;
  constraint?: string;
  table?: string;
  column?: string;
  schema?: string;
  severity?: string;
  routine?: string;
  /** Where in the GraphQL answer the failure happened. */
  path?: ReadonlyArray<string | number>;
  cause?: LoggedError;
}

// Copied from a database error under our name; each driver spells some differently (PGlite:
// `constraint`, postgres.js: `constraint_name`). Everything else is left behind on purpose:
// `detail` quotes row values ("Key (email)=(…)", "Failing row contains (…)"), `where` can quote
// a parameter, and `params` / `parameters` / `query` of the drivers carry the bound values.
const DATABASE_FIELDS = {
  constraint: ['constraint', 'constraint_name'],
  table: ['table', 'table_name'],
  column: ['column', 'column_name'],
  schema: ['schema', 'schema_name'],
  severity: ['severity'],
  routine: ['routine'],
} as const;

// A second line of defence for text no code path meant to log: addresses, argon2 hashes, JWTs.
const PATTERNS: [RegExp, string][] = [
  [/\$argon2(?:id|i|d)\$[A-Za-z0-9+/=$,.-]+/g, '[password hash]'],
  [/\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*/g, '[jwt]'],
  [/[A-Za-z0-9.!#$%&'*+=?^_`{|}~-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+/g, '[email]'],
];

// Bound values shorter than this are not looked for in messages: they are not secrets (a role
// name, a flag) and masking them would shred the message.
const MIN_MASKED_LENGTH = 4;
const MAX_CAUSES = 5;

/** `text` with the given values, then anything shaped like an email, password hash or JWT, masked. */
export function scrubSecrets(text: string, values: readonly string[] = []): string {
  let scrubbed = text;
  for (const value of values) scrubbed = scrubbed.split(value).join('[parameter]');
  for (const [pattern, mask] of PATTERNS) scrubbed = scrubbed.replace(pattern, mask);
  return scrubbed;
}

/** The string values bound to a failed query, longest first, from wherever the driver put them. */
function boundValues(err: object): string[] {
  const values: string[] = [];
  for (const key of ['params', 'parameters']) {
    const list: unknown = Reflect.get(err, key);
    if (!Array.isArray(list)) continue;
    for (const value of list) {
      const text = typeof value === 'string' ? value : value && typeof value === 'object' ? JSON.stringify(value) : null;
      if (text && text.length >= MIN_MASKED_LENGTH) values.push(text);
    }
  }
  return values.sort((a, b) => b.length - a.length);
}

/** A readable type: PGlite's error class is minified and named "error", drizzle's is named "Error". */
function typeOf(err: Error, isDatabaseError: boolean): string {
  const readable = (name: unknown) => typeof name === 'string' && name.length > 2 && name.toLowerCase() !== 'error';
  if (readable(err.name)) return err.name;
  if (readable(err.constructor?.name)) return err.constructor.name;
  return isDatabaseError ? 'DatabaseError' : 'Error';
}

function toLogged(err: unknown, inherited: readonly string[], depth: number): LoggedError {
  if (!(err instanceof Error)) return { type: typeof err, message: scrubSecrets(String(err), inherited) };
  // A GraphQL error wrapping a resolver's failure has the failure's message: describe the failure.
  if (err instanceof GraphQLError && err.originalError) {
    return { ...toLogged(err.originalError, inherited, depth), ...(err.path ? { path: err.path } : {}) };
  }
  const values = [...boundValues(err), ...inherited];
  const fields = err as unknown as Record<string, unknown>;
  const isQueryError = err instanceof DrizzleQueryError;
  const isDatabaseError = typeof fields.severity === 'string' && typeof fields.code === 'string';
  const type = typeOf(err, isDatabaseError);
  // drizzle's message is "Failed query: <sql>\nparams: <every bound value>": rebuilt without them.
  const message = isQueryError ? `Failed query: ${err.query}` : scrubSecrets(err.message, values);
  const described: LoggedError = { type, message };
  if (err.stack) {
    // The stack starts with the message again (every line of it): only the frames are kept.
    const frames = err.stack.split('\n').filter((line) => /^\s+at /.test(line));
    described.stack = scrubSecrets([`${type}: ${message}`, ...frames].join('\n'), values);
  }
  if (typeof fields.code === 'string' || typeof fields.code === 'number') described.code = String(fields.code);
  if (isQueryError) described.query = err.query;
  if (isDatabaseError) {
    for (const [name, keys] of Object.entries(DATABASE_FIELDS) as [keyof typeof DATABASE_FIELDS, readonly string[]][]) {
      const value = keys.map((key) => fields[key]).find((v): v is string => typeof v === 'string');
      if (value !== undefined) described[name] = value;
    }
  }
  if (err.cause !== undefined && depth < MAX_CAUSES) described.cause = toLogged(err.cause, values, depth + 1);
  return described;
}

/**
 * Reduces any thrown value to what may be logged: type, message, stack frames, codes, the SQL
 * text of a failed query and its cause chain, with the values bound to the query dropped, and
 * masked wherever the database quoted them in a message.
 */
export function serializeError(err: unknown): LoggedError {
  return toLogged(err, [], 0);
}
