import { hash } from 'node:crypto';

/**
 * SHA-256 of a text, in the encoding its column stores: hex for token secrets, base64url for
 * lookup keys (emails, IPs). The encoding is part of what is stored, so each caller keeps its
 * own: rows written before a change of encoding would no longer be found.
 */
export function sha256Digest(text: string, encoding: 'hex' | 'base64url'): string {
  return hash('sha256', text, encoding);
}
