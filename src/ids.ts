const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * A client-supplied id as the database's uuid, or null when it is not one. Checked before any
 * query: PostgreSQL fails (an internal error) on a malformed uuid instead of finding nothing.
 */
export function parseUuid(raw: string): string | null {
  return UUID.test(raw) ? raw.toLowerCase() : null;
}
