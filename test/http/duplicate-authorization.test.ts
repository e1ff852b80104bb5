import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DatabaseHandle } from '../../src/db/client.js';
import { rawFetch } from '../support/abuse.js';
import { createTestApp, type TestApp } from '../support/app.js';
import { openTestDatabase } from '../support/database.js';
import { listen, type Listening } from '../support/listen.js';
import { ME_ID, registerUser, type Session } from '../support/operations.js';

let database: DatabaseHandle;
let t: TestApp;
let server: Listening;
let alice: Session;
let bob: Session;
beforeAll(async () => {
  database = await openTestDatabase();
  t = await createTestApp({}, database);
  server = await listen(t.app);
  alice = await registerUser(t);
  bob = await registerUser(t);
});
afterAll(async () => {
  await server?.close();
  await database?.close();
});

/**
 * POSTs `me` over a raw socket with these header lines written as given (a client library
 * would merge or refuse duplicates); returns the status and the parsed body.
 */
function postRaw(headerLines: string[]): Promise<{ status: number; body: any }> {
  const body = JSON.stringify({ query: ME_ID });
  const request = [
    'POST /graphql HTTP/1.1',
    `Host: 127.0.0.1:${server.port}`,
    'Content-Type: application/json',
    `Content-Length: ${Buffer.byteLength(body)}`,
    'Connection: close',
    ...headerLines,
    '',
    body,
  ].join('\r\n');
  return new Promise((resolve, reject) => {
    const socket = connect(server.port, '127.0.0.1', () => socket.write(request));
    const chunks: Buffer[] = [];
    socket.on('data', (chunk) => chunks.push(chunk));
    socket.on('error', reject);
    socket.on('close', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const [head, ...rest] = text.split('\r\n\r\n');
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head ?? '')?.[1]);
      resolve({ status, body: JSON.parse(rest.join('\r\n\r\n')) });
    });
  });
}

const bearer = (session: Session) => `Bearer ${session.accessToken}`;

describe('more than one Authorization header', () => {
  it('is refused with 400 over a real socket, whichever token comes first (RFC 6750 §3.1)', async () => {
    // One header: the raw client works, and the token is honoured.
    const single = await postRaw([`Authorization: ${bearer(alice)}`]);
    expect(single).toMatchObject({ status: 200, body: { data: { me: { id: alice.userId } } } });

    for (const lines of [
      [`Authorization: ${bearer(alice)}`, `Authorization: ${bearer(bob)}`],
      [`Authorization: ${bearer(bob)}`, `authorization: ${bearer(alice)}`],
      [`Authorization: ${bearer(alice)}`, `Authorization: ${bearer(alice)}`],
    ]) {
      const res = await postRaw(lines);
      expect(res.status, lines.join(' | ')).toBe(400);
      expect(res.body).toEqual({
        errors: [{ message: 'Send at most one Authorization header, with one Bearer token.', extensions: { code: 'BAD_REQUEST' } }],
      });
    }
  });

  it('is refused with 400 when joined into one comma-separated value (as fetch and proxies join duplicates)', async () => {
    for (const authorization of [`${bearer(alice)}, ${bearer(bob)}`, `${bearer(alice)},${bearer(alice)}`]) {
      const res = await rawFetch(t, '/graphql', {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization },
        body: JSON.stringify({ query: ME_ID }),
      });
      expect(res.status).toBe(400);
      expect(res.headers.get('www-authenticate')).toBe('Bearer error="invalid_request"');
      expect(JSON.parse(res.text)).toEqual({
        errors: [{ message: 'Send at most one Authorization header, with one Bearer token.', extensions: { code: 'BAD_REQUEST' } }],
      });
    }
  });
});
