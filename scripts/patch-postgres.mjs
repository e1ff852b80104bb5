// postinstall: patches postgres.js 3.4.9 so that a lost connection can't end the process.
//
// Upstream bug (porsager/postgres #1154, #1208; open PRs #1168, #1209; no release has a fix):
// a query sent on a connection whose socket has just closed (a transaction's own ROLLBACK
// after its backend was terminated, say) schedules a write that runs after `closed()` has set
// `socket = null`: "Cannot read properties of null (reading 'write')" from a setImmediate
// callback, an uncaught exception nothing can catch. `closed()` also cancels a scheduled write
// without forgetting it, so its bytes go out in front of the next connection's startup message
// and the scheduled-flag stays set: the reconnected connection never sends its startup and
// times out, again and again. The patch rejects what was written to the gone socket
// (CONNECTION_CLOSED) and drops its bytes.
//
// Two more, found under connection cuts (test/http/database-faults.test.ts failed about 1 run
// in 10 before them, 0 in 30 after): a query handed to a pooled connection between its socket's
// 'error' and 'close' events was rejected by neither, and the reconnect's startup ReadyForQuery
// then resolved it with an empty result, so a row that exists read as missing (close to #1130 /
// PR #1142, which would leave the query hanging instead); and the row counter survived a query
// that failed between rows, so the next query's rows landed after holes (#1119, #1181).
//
// Idempotent; stops the install if the installed version is not the one this patch was
// written for, so a version bump makes us look again (a release may fix it).
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const VERSION = '3.4.9';
const MARK = '/* authgraph patch: porsager/postgres#1208 */';
const MARK2 = '/* authgraph patch: in-flight queries of a closed connection */';

const REPLACEMENTS = [
  [
    `  function nextWrite(fn) {
    const x = socket.write(chunk, fn)`,
    `  function nextWrite(fn) {
    if (!socket) { ${MARK}
      nextWriteTimer !== null && clearImmediate(nextWriteTimer)
      chunk = nextWriteTimer = null
      const err = Errors.connection('CONNECTION_CLOSED', options)
      query && (queryError(query, err), query = null)
      while (sent.length)
        queryError(sent.shift(), err)
      return true
    }
    const x = socket.write(chunk, fn)`,
  ],
  [
    `    incomings = null
    clearImmediate(nextWriteTimer)
    socket.removeListener('data', data)`,
    `    incomings = null
    clearImmediate(nextWriteTimer)
    chunk = nextWriteTimer = null ${MARK}
    socket.removeListener('data', data)`,
  ],
  // A query handed to a pooled connection after its socket emitted 'error' but before 'close'
  // (the pool still counts it as open for that turn of the event loop) was rejected by neither:
  // `error()` had run and `closed(hadError)` leaves the rejecting to it. It stayed the
  // connection's `query`, and the startup ReadyForQuery of the reconnect resolved it with an
  // empty result (no rows, no command): a row that exists read as missing.
  [
    `    socket.removeAllListeners()
    socket = null

    if (initial)
      return reconnect()`,
    `    socket.removeAllListeners()
    socket = null

    if (query || sent.length) { ${MARK2}
      const err = Errors.connection('CONNECTION_CLOSED', options)
      stream && (stream.destroy(err), stream = null)
      query && queryError(query, err)
      while (sent.length)
        queryError(sent.shift(), err)
      query = null
    }

    if (initial)
      return reconnect()`,
  ],
  // The row counter was reset only by CommandComplete: after a query that failed (or lost its
  // connection) between DataRows, the next query's rows landed after that many holes
  // (porsager/postgres #1119, #1181).
  [
    `    query = results = errorResponse = null
    result = new Result()`,
    `    query = results = errorResponse = null
    rows = 0 ${MARK2}
    result = new Result()`,
  ],
];

const root = fileURLToPath(new URL('../node_modules/postgres/', import.meta.url));
const { version } = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
if (version !== VERSION) {
  console.error(`scripts/patch-postgres.mjs: written for postgres ${VERSION}, found ${version}. ` +
    'Check whether this release fixes porsager/postgres#1208, then update or remove the patch.');
  process.exit(1);
}

for (const file of ['src/connection.js', 'cjs/src/connection.js']) {
  const target = path.join(root, file);
  let text = readFileSync(target, 'utf8');
  for (const [before, after] of REPLACEMENTS) {
    if (text.includes(after)) continue;
    if (!text.includes(before)) {
      console.error(`scripts/patch-postgres.mjs: ${file} does not contain the code to patch.`);
      process.exit(1);
    }
    text = text.replace(before, after);
  }
  writeFileSync(target, text);
}
