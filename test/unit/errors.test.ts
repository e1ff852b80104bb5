/**
 * One catalogue (ERRORS in src/errors.ts) is the source of every error's code, class, GraphQL
 * type and channel. These tests fail when the published schema, the classes, the source or the
 * README disagree with it.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  buildSchema,
  getNamedType,
  isInterfaceType,
  isObjectType,
  isUnionType,
  type GraphQLEnumType,
  type GraphQLNamedType,
  type GraphQLObjectType,
  type GraphQLUnionType,
} from 'graphql';
import { describe, expect, it } from 'vitest';
import {
  AuthError,
  ERRORS,
  errorCodesOf,
  InputError,
  RateLimitedError,
  UNAUTHENTICATED_REASONS,
  UserNotFoundError,
  type ErrorCode,
  type ErrorEntry,
} from '../../src/errors.js';
import { withTypedErrors } from '../../src/graphql/access-errors.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const committed = buildSchema(readFileSync(join(root, 'schema.graphql'), 'utf8'));

const entries = Object.entries(ERRORS) as [ErrorCode, ErrorEntry][];
const resultEntries = entries.flatMap(([code, entry]) => (entry.channel === 'result' ? [{ code, ...entry }] : []));
const classEntries = entries.flatMap(([code, entry]) => ('class' in entry ? [{ code, ...entry }] : []));

/** An instance of an error class, built with placeholder arguments (each constructor takes at most strings and a number). */
const instanceOf = (cls: new (...args: any[]) => AuthError) => new cls('field', 'message');

/** The `Error` members of every union some field returns: the failures a client meets as union members. */
function unionErrorMembers(): Set<string> {
  const members = new Set<string>();
  for (const type of Object.values(committed.getTypeMap())) {
    if (!isObjectType(type) || type.name.startsWith('__')) continue;
    for (const field of Object.values(type.getFields())) {
      const returned: GraphQLNamedType = getNamedType(field.type);
      if (!isUnionType(returned)) continue;
      for (const member of returned.getTypes()) {
        if (member.getInterfaces().some((i) => i.name === 'Error')) members.add(member.name);
      }
    }
  }
  return members;
}

describe('the error catalogue and the published schema', () => {
  it('lists in ErrorCode exactly the codes of union members that some field returns', () => {
    const enumType = committed.getType('ErrorCode') as GraphQLEnumType;
    const enumCodes = enumType.getValues().map((v) => v.name);
    const reachable = resultEntries.filter((e) => unionErrorMembers().has(e.type)).map((e) => e.code);
    expect(enumCodes.sort()).toEqual([...reachable].sort());
    expect(enumCodes.sort()).toEqual(errorCodesOf('result').sort());
  });

  it('has every type implementing Error in the catalogue, and every catalogued type in the schema', () => {
    const error = committed.getType('Error');
    if (!isInterfaceType(error)) throw new Error('Error is not an interface');
    const implementing = committed.getPossibleTypes(error).map((t) => t.name);
    expect(implementing.sort()).toEqual([...new Set(resultEntries.map((e) => e.type))].sort());
    expect([...unionErrorMembers()].sort()).toEqual(implementing.sort());
  });

  it('gives each union-member type the extra fields its entry names, as properties of its class', () => {
    for (const entry of resultEntries) {
      const type = committed.getType(entry.type);
      if (!isObjectType(type)) throw new Error(`${entry.type} is not an object type`);
      const extra = Object.fromEntries(
        Object.entries(type.getFields())
          .filter(([name]) => name !== 'code' && name !== 'message')
          .map(([name, field]) => [name, String(field.type)]),
      );
      const declared = Object.fromEntries(Object.entries(entry.fields ?? {}).map(([name, f]) => [name, `${f.type}!`]));
      expect(extra, entry.code).toEqual(declared);
      for (const name of Object.keys(declared)) expect(Object.hasOwn(instanceOf(entry.class), name), `${entry.type}.${name}`).toBe(true);
    }
  });

  // Union names a contract fixed otherwise: issue 15 names one union for both starts, and
  // LinkIdentityResult for completeIdentityLink.
  const FIXED_UNION_NAMES: Record<string, string> = {
    startIdentityLink: 'StartSocialSignInResult',
    completeIdentityLink: 'LinkIdentityResult',
    // Issue 14 names finishPasskeySignIn's union PasskeySignInResult.
    finishPasskeySignIn: 'PasskeySignInResult',
  };

  /** The sign-ins whose first step may stop halfway at the second factor (password, reset by email, provider). */
  const FIRST_STEPS = ['login', 'resetPassword', 'completeSocialSignIn'];

  it('gives every field that returns a union a <Field>Result (or the name its contract fixes) of one payload and Error members (and SecondFactorRequired for the first steps of a sign-in)', () => {
    const fields = Object.values(committed.getTypeMap())
      .filter((type) => isObjectType(type) && !type.name.startsWith('__'))
      .flatMap((type) => Object.values((type as GraphQLObjectType).getFields()));
    const unions = fields.filter((field) => isUnionType(getNamedType(field.type)));
    expect(unions.length).toBeGreaterThan(0);
    for (const field of unions) {
      const union = getNamedType(field.type) as GraphQLUnionType;
      expect(union.name).toBe(FIXED_UNION_NAMES[field.name] ?? `${field.name[0]!.toUpperCase()}${field.name.slice(1)}Result`);
      // A sign-in may also stop halfway, at the second factor: SecondFactorRequired is no failure.
      const halfway = FIRST_STEPS.includes(field.name) ? 'SecondFactorRequired' : null;
      const payloads = union
        .getTypes()
        .filter((member) => !member.getInterfaces().some((i) => i.name === 'Error') && member.name !== halfway);
      expect(payloads, union.name).toHaveLength(1);
    }
  });

  it('lets every first step of a sign-in stop at SecondFactorRequired, and no other field', () => {
    const mutation = committed.getMutationType()!;
    const answering = Object.values(mutation.getFields())
      .filter((field) => {
        const named = getNamedType(field.type);
        return isUnionType(named) && named.getTypes().some((member) => member.name === 'SecondFactorRequired');
      })
      .map((field) => field.name);
    expect(answering.sort()).toEqual([...FIRST_STEPS].sort());
  });

  it('documents each ErrorCode value with its catalogue description', () => {
    const enumType = committed.getType('ErrorCode') as GraphQLEnumType;
    for (const value of enumType.getValues()) expect(value.description, value.name).toBe(ERRORS[value.name as ErrorCode].description);
  });
});

describe('the error classes', () => {
  it('name themselves after their class, which is their GraphQL type', () => {
    for (const entry of classEntries) {
      const error = instanceOf(entry.class);
      expect(error).toBeInstanceOf(AuthError);
      expect(error.name, entry.code).toBe(entry.class.name);
      if (entry.channel === 'result') expect(entry.class.name, entry.code).toBe(entry.type);
    }
  });

  it('carry a code whose entry names their class', () => {
    for (const entry of classEntries) {
      const { code } = instanceOf(entry.class);
      expect(ERRORS[code], `${entry.class.name} has code ${code}`).toHaveProperty('class', entry.class);
    }
    expect(new InputError('newPassword', 'Too common.', 'WEAK_PASSWORD').code).toBe('WEAK_PASSWORD');
  });
});

describe('GraphQL errors built from the catalogue', () => {
  const failWith = (error: Error) => withTypedErrors(() => Promise.reject(error));

  it('carries in extensions the code and what the union member would carry beside it', async () => {
    await expect(failWith(new RateLimitedError(42))).rejects.toMatchObject({
      message: 'Too many attempts. Try again in 42 seconds.',
      extensions: { code: 'RATE_LIMITED', retryAfter: 42 },
    });
    await expect(failWith(new InputError('email', 'Enter a valid email address.'))).rejects.toMatchObject({
      extensions: { code: 'INVALID_INPUT', field: 'email' },
    });
    await expect(failWith(new UserNotFoundError())).rejects.toMatchObject({ extensions: { code: 'NOT_FOUND' } });
  });

  it('passes an unexpected error through, for yoga to mask', async () => {
    const bug = new TypeError('x is undefined');
    await expect(failWith(bug)).rejects.toBe(bug);
  });
});

describe('codes outside the catalogue', () => {
  it('are never written in the source', () => {
    const files = readdirSync(join(root, 'src'), { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts'));
    const written = files.flatMap((file) =>
      [...readFileSync(join(root, 'src', file), 'utf8').matchAll(/\bcode: '([A-Z][A-Z_]+)'/g)].map((m) => `${m[1]} (${file})`),
    );
    expect(written.length).toBeGreaterThan(0);
    expect(written.filter((w) => !(w.split(' ')[0]! in ERRORS))).toEqual([]);
  });

  it('are not in the README either: its table lists exactly the codes met only in extensions.code', () => {
    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('\n### Errors\n'));
    const table = section.slice(0, section.indexOf('\n\n', section.indexOf('\n|')));
    const listed = [...table.matchAll(/^\| `([A-Z_]+)` \|/gm)].map((m) => m[1]);
    const extensionsOnly = entries.filter(([, entry]) => entry.channel !== 'result').map(([code]) => code);
    expect(listed.sort()).toEqual(extensionsOnly.sort());
  });

  it("has the README list exactly the reasons of UNAUTHENTICATED, in the catalogue's order", () => {
    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('**Why UNAUTHENTICATED.**'));
    const table = section.slice(0, section.indexOf('\n\n', section.indexOf('\n|')));
    const listed = [...table.matchAll(/^\| `([A-Z_]+)` \|/gm)].map((m) => m[1]);
    expect(listed).toEqual(Object.keys(UNAUTHENTICATED_REASONS));
  });
});
