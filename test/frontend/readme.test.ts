/** The README shows the client set-ups the tests run, not a copy that drifted from them. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../support/cli.js';

const CLIENT_FILES = ['examples/clients/auth-session.ts', 'examples/clients/urql-client.ts', 'examples/clients/apollo-client.ts'];

const read = (path: string) => readFileSync(join(PROJECT_ROOT, path), 'utf8');

/** The README's code blocks that say which file they show (`<!-- file: path -->` above the fence). */
function includedFiles(readme: string): Map<string, string> {
  const blocks = new Map<string, string>();
  for (const match of readme.matchAll(/<!-- file: (\S+) -->\n```ts\n([\s\S]*?)```\n/g)) blocks.set(match[1]!, match[2]!);
  return blocks;
}

describe('README "Using authgraph from a frontend"', () => {
  const blocks = includedFiles(read('README.md'));

  it('shows every client file', () => {
    expect([...blocks.keys()].sort()).toEqual([...CLIENT_FILES].sort());
  });

  it.each(CLIENT_FILES)('shows %s exactly as it is', (path) => {
    expect(blocks.get(path)).toBe(read(path));
  });
});
