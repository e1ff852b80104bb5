/**
 * GraphQL Code Generator's client-preset over schema.graphql and examples/operations, run as
 * examples/codegen.ts configures it but into a scratch directory: the generated code and
 * examples/login.ts type-check under `strict`, login's union discriminates on __typename (a
 * missing case does not compile), and the typed sign-in works against a real server.
 */
import { execFile } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { generate } from '@graphql-codegen/cli';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import codegenConfig from '../../examples/codegen.js';
import { createTestApp, type TestApp } from '../support/app.js';
import { listen, type Listening } from '../support/listen.js';
import { GOOD_PASSWORD, registerUser } from '../support/operations.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const EXAMPLES = path.join(ROOT, 'examples');
const TSC = path.join(ROOT, 'node_modules/typescript/bin/tsc');
// Code generation and tsc take seconds, more on a busy 2-core machine.
const SLOW = 180_000;

/** The example tsconfig, for the files of one scratch directory. */
function writeTsconfig(dir: string) {
  writeFileSync(
    path.join(dir, 'tsconfig.json'),
    JSON.stringify({ extends: path.join(EXAMPLES, 'tsconfig.json'), include: ['login.ts', 'gql'] }),
  );
}

/** `tsc --strict --noEmit` over a scratch directory: its exit code and what it printed. */
async function typeCheck(dir: string): Promise<{ code: number; output: string }> {
  try {
    const { stdout } = await promisify(execFile)(process.execPath, [TSC, '--strict', '--noEmit', '-p', dir], { cwd: dir });
    return { code: 0, output: stdout };
  } catch (err) {
    const failed = err as { code?: number; stdout?: string; stderr?: string };
    return { code: failed.code ?? -1, output: `${failed.stdout ?? ''}${failed.stderr ?? ''}` };
  }
}

describe('GraphQL Code Generator (client-preset) on the example operations', () => {
  // Inside examples/ so that the generated code resolves this repository's node_modules.
  let scratch: string;

  beforeAll(async () => {
    scratch = mkdtempSync(path.join(EXAMPLES, '.codegen-'));
    const [target, output] = Object.entries(codegenConfig.generates)[0]!;
    expect(target).toBe('examples/gql/');
    await generate(
      {
        ...codegenConfig,
        cwd: ROOT,
        silent: true,
        generates: { [path.join(scratch, 'gql') + path.sep]: output },
      },
      true,
    );
  }, SLOW);

  afterAll(() => {
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  it('generates code that, with examples/login.ts, type-checks under strict', async () => {
    copyFileSync(path.join(EXAMPLES, 'login.ts'), path.join(scratch, 'login.ts'));
    writeTsconfig(scratch);
    const { code, output } = await typeCheck(scratch);
    expect(output).toBe('');
    expect(code).toBe(0);
  }, SLOW);

  it('refuses to compile the switch over login when one member of its union has no case', async () => {
    const variant = mkdtempSync(path.join(scratch, 'variant-'));
    const source = readFileSync(path.join(EXAMPLES, 'login.ts'), 'utf8');
    const withoutCase = source.replace("    case 'EmailNotVerifiedError':\n", '');
    expect(withoutCase).not.toBe(source);
    // The same generated code, reached from the variant by its own relative import.
    writeFileSync(path.join(variant, 'login.ts'), withoutCase.replace("from './gql/graphql'", "from '../gql/graphql'"));
    writeTsconfig(variant);
    const { code, output } = await typeCheck(variant);
    expect(code).not.toBe(0);
    expect(output).toMatch(/__typename: "EmailNotVerifiedError".*is not assignable to type 'never'/);
  }, SLOW);

  describe('the typed sign-in of examples/login.ts against a server on a real port', () => {
    let t: TestApp;
    let server: Listening;
    // Loaded from the scratch copy, beside its generated code (the root tsconfig leaves it out).
    let login: { signIn(url: string, email: string, password: string): Promise<Record<string, unknown>> };

    beforeAll(async () => {
      t = await createTestApp();
      server = await listen(t.app);
      copyFileSync(path.join(EXAMPLES, 'login.ts'), path.join(scratch, 'login.ts'));
      login = await import(/* @vite-ignore */ path.join(scratch, 'login.ts'));
    }, SLOW);

    afterAll(async () => {
      await server?.close();
      await t?.close();
    });

    it('signs in, and answers a wrong password as refused with its code', async () => {
      const { email } = await registerUser(t);
      expect(await login.signIn(`${server.url}/graphql`, email, GOOD_PASSWORD)).toMatchObject({ kind: 'signed-in', email });
      expect(await login.signIn(`${server.url}/graphql`, email, `${GOOD_PASSWORD}-not`)).toMatchObject({
        kind: 'refused',
        code: 'INVALID_CREDENTIALS',
      });
    });
  });
});
