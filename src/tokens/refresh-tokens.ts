import { createHmac } from 'node:crypto';
import { splitTokenFromBytes, type SplitToken } from '../crypto/split-token.js';

/**
 * The successor of a token is derived from it with a server-side HMAC key, so a retry of the
 * same refresh can be answered with the same successor without storing successors in clear.
 * It depends on the parent's secret, which only the client holds: a stolen database cannot
 * compute it, and without the key neither can a thief of an old token. (A refresh token is
 * otherwise a plain split token: crypto/split-token.ts.)
 */
export function deriveSuccessor(key: Buffer, parent: { id: string; secret: string }): SplitToken {
  const material = (label: string) =>
    createHmac('sha256', key).update(`${label}\0${parent.id}\0${parent.secret}`).digest();
  return splitTokenFromBytes(material('id'), material('secret'));
}
