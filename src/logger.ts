import { pino, type Logger } from 'pino';
import { scrubSecrets, serializeError } from './safe-error.js';

export type { Logger };

/**
 * A log call's arguments with every Error reduced to its safe form (serializeError) before pino
 * sees it: pino's own serializer keeps drizzle's message, which lists every bound value (emails,
 * password hashes), copies the drivers' `params`, and makes the raw message the line's `msg`
 * when the call gives none.
 */
function withSafeErrors(args: unknown[]): unknown[] {
  const scrub = (arg: unknown) => (typeof arg === 'string' ? scrubSecrets(arg) : arg);
  const [first, ...rest] = args;
  const fields: unknown = first instanceof Error ? { err: first } : first;
  if (fields === null || typeof fields !== 'object' || Array.isArray(fields)) return args.map(scrub);
  const safe = Object.fromEntries(
    Object.entries(fields).map(([key, value]) => [key, value instanceof Error ? serializeError(value) : value]),
  );
  return [safe, ...rest.map(scrub)];
}

/**
 * Structured JSON logs. Credentials are redacted by path as a second line of defence:
 * no code path is meant to log them in the first place. Errors are logged in a safe form
 * wherever they come from (a failed query never brings its parameters into the log).
 */
export function createLogger(level: string): Logger {
  return pino({
    level,
    hooks: {
      logMethod(args, method) {
        method.apply(this, withSafeErrors(args) as Parameters<typeof method>);
      },
    },
    serializers: {
      // Errors reach here already reduced by the hook (or, as child bindings, not): never pino's default.
      err: (value: unknown) => (value instanceof Error ? serializeError(value) : value),
    },
    redact: {
      paths: [
        'password',
        '*.password',
        'passwordHash',
        '*.passwordHash',
        'token',
        '*.token',
        'accessToken',
        '*.accessToken',
        'refreshToken',
        '*.refreshToken',
        'authorization',
        '*.authorization',
        '*.headers.authorization',
        'email',
        '*.email',
      ],
      censor: '[redacted]',
    },
  });
}
