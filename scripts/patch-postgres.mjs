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
// Idempotent; stops the install if the installed version is not the one this patch was
// written for, so a version bump makes us look again (a release may fix it).
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const VERSION = '3.4.9';
const MARK = '/* authgraph patch: porsager/postgres#1208 */';

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
  if (text.includes(MARK)) continue;
  for (const [before, after] of REPLACEMENTS) {
    if (!text.includes(before)) {
      console.error(`scripts/patch-postgres.mjs: ${file} does not contain the code to patch.`);
      process.exit(1);
    }
    text = text.replace(before, after);
  }
  writeFileSync(target, text);
}
