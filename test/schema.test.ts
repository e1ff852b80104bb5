import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type {
  GraphQLEnumType,
  GraphQLField,
  GraphQLInputObjectType,
  GraphQLInterfaceType,
  GraphQLNamedType,
  GraphQLObjectType,
  GraphQLScalarType,
  GraphQLUnionType,
} from 'graphql';
import { describe, expect, it } from 'vitest';
import { printPossibleTypes, printSchemaSdl, schema } from '../src/graphql/schema.js';

const committedSchemaPath = fileURLToPath(new URL('../schema.graphql', import.meta.url));
const committedPossibleTypesPath = fileURLToPath(new URL('../possible-types.json', import.meta.url));

// The kind of a schema type, read from its Symbol.toStringTag rather than with graphql's
// isObjectType() & co., whose instanceof checks would tie these assertions to one copy of
// the graphql module (the schema is built by Pothos, loaded outside the test transform).
const kindOf = (type: unknown) => Object.prototype.toString.call(type).slice(8, -1);
const isObjectType = (t: unknown): t is GraphQLObjectType => kindOf(t) === 'GraphQLObjectType';
const isInterfaceType = (t: unknown): t is GraphQLInterfaceType => kindOf(t) === 'GraphQLInterfaceType';
const isUnionType = (t: unknown): t is GraphQLUnionType => kindOf(t) === 'GraphQLUnionType';
const isEnumType = (t: unknown): t is GraphQLEnumType => kindOf(t) === 'GraphQLEnumType';
const isScalarType = (t: unknown): t is GraphQLScalarType => kindOf(t) === 'GraphQLScalarType';
const isInputObjectType = (t: unknown): t is GraphQLInputObjectType => kindOf(t) === 'GraphQLInputObjectType';

function typeNamed(name: string): GraphQLNamedType {
  const type = schema.getType(name);
  if (!type) throw new Error(`the schema has no type ${name}`);
  return type;
}

/** `{ fieldName: 'Type!' }` for an object or interface type. */
function fieldTypes(name: string): Record<string, string> {
  const type = typeNamed(name);
  if (!isObjectType(type) && !isInterfaceType(type)) throw new Error(`${name} is not an object or interface type`);
  return Object.fromEntries(Object.values(type.getFields()).map((f) => [f.name, String(f.type)]));
}

/** `{ argName: 'Type' }`, with ` = default` when an argument has a default value. */
function argsOf(field: GraphQLField<unknown, unknown>): Record<string, string> {
  return Object.fromEntries(
    field.args.map((a) => [a.name, a.defaultValue === undefined ? String(a.type) : `${String(a.type)} = ${JSON.stringify(a.defaultValue)}`]),
  );
}

function rootField(root: 'Query' | 'Mutation', name: string): GraphQLField<unknown, unknown> {
  const type = root === 'Query' ? schema.getQueryType() : schema.getMutationType();
  const field = type?.getFields()[name];
  if (!field) throw new Error(`${root}.${name} does not exist`);
  return field;
}

/** The members of the (non-null) union a mutation returns. */
function unionMembers(field: GraphQLField<unknown, unknown>): string[] {
  const typeName = String(field.type);
  expect(typeName.endsWith('!'), `${field.name} must return a non-null union`).toBe(true);
  const union = typeNamed(typeName.slice(0, -1));
  if (!isUnionType(union)) throw new Error(`${field.name} does not return a union`);
  return union.getTypes().map((t) => t.name);
}

const ERROR_TYPES = [
  'InputError',
  'EmailTakenError',
  'InvalidCredentialsError',
  'AccountDisabledError',
  'InvalidRefreshTokenError',
  'RateLimitedError',
];

describe('schema.graphql', () => {
  it('equals the printed schema byte for byte', () => {
    const committed = readFileSync(committedSchemaPath, 'utf8');
    expect(
      printSchemaSdl() === committed,
      'schema.graphql has drifted from the code: run `npm run schema` to regenerate it and commit the result',
    ).toBe(true);
  });

  it('lists its types lexicographically sorted', () => {
    const typeNames = [...readFileSync(committedSchemaPath, 'utf8').matchAll(/^(?:type|interface|union|enum|input|scalar) (\w+)/gm)].map((m) => m[1]!);
    expect(typeNames.length).toBeGreaterThan(10);
    expect(typeNames).toEqual([...typeNames].sort((a, b) => a.localeCompare(b)));
  });
});

describe('possible-types.json', () => {
  const committed = () => readFileSync(committedPossibleTypesPath, 'utf8');

  it('equals the printed map byte for byte', () => {
    expect(
      printPossibleTypes() === committed(),
      'possible-types.json has drifted from the code: run `npm run schema` to regenerate it and commit the result',
    ).toBe(true);
  });

  it('maps every union and interface of schema.graphql to exactly its object types', () => {
    const sdl = readFileSync(committedSchemaPath, 'utf8');
    const unions = Object.fromEntries(
      [...sdl.matchAll(/^union (\w+) = (.+)$/gm)].map((m) => [m[1]!, m[2]!.split('|').map((name) => name.trim()).sort()]),
    );
    const implementing = (iface: string) =>
      [...sdl.matchAll(/^type (\w+) implements ([\w &]+) \{/gm)]
        .filter((m) => m[2]!.split('&').map((name) => name.trim()).includes(iface))
        .map((m) => m[1]!)
        .sort();
    const interfaces = [...sdl.matchAll(/^interface (\w+)/gm)].map((m) => m[1]!);
    const expected = { ...unions, ...Object.fromEntries(interfaces.map((name) => [name, implementing(name)])) };
    expect(Object.keys(expected).length).toBeGreaterThan(5);
    expect(JSON.parse(committed())).toEqual(expected);
  });

  it('lists login\'s error members under both LoginResult and Error (what Apollo matches `... on Error` with)', () => {
    const map = JSON.parse(committed()) as Record<string, string[]>;
    expect(map.LoginResult).toContain('InvalidCredentialsError');
    expect(map.Error).toContain('InvalidCredentialsError');
  });
});

describe('the fixed GraphQL contract', () => {
  it('has a DateTime scalar', () => {
    expect(isScalarType(typeNamed('DateTime'))).toBe(true);
  });

  it('has every contract ErrorCode value', () => {
    const errorCode = typeNamed('ErrorCode');
    if (!isEnumType(errorCode)) throw new Error('ErrorCode is not an enum');
    expect(errorCode.getValues().map((v) => v.name)).toEqual(
      expect.arrayContaining([
        'INVALID_INPUT',
        'WEAK_PASSWORD',
        'EMAIL_TAKEN',
        'INVALID_CREDENTIALS',
        'ACCOUNT_DISABLED',
        'INVALID_REFRESH_TOKEN',
        'RATE_LIMITED',
      ]),
    );
  });

  it('has an Error interface with code: ErrorCode! and message: String!', () => {
    expect(isInterfaceType(typeNamed('Error'))).toBe(true);
    expect(fieldTypes('Error')).toMatchObject({ code: 'ErrorCode!', message: 'String!' });
  });

  it('has every error type implementing Error with code and message', () => {
    for (const name of ERROR_TYPES) {
      const type = typeNamed(name);
      if (!isObjectType(type)) throw new Error(`${name} is not an object type`);
      expect(type.getInterfaces().map((i) => i.name), name).toContain('Error');
      expect(fieldTypes(name), name).toMatchObject({ code: 'ErrorCode!', message: 'String!' });
    }
  });

  it('has InputError.field: String!', () => {
    expect(fieldTypes('InputError').field).toBe('String!');
  });

  it('has RateLimitedError.retryAfter: Int!', () => {
    expect(fieldTypes('RateLimitedError').retryAfter).toBe('Int!');
  });

  it('has the contract User fields', () => {
    expect(fieldTypes('User')).toMatchObject({
      id: 'ID!',
      email: 'String!',
      name: 'String',
      roles: '[String!]!',
      emailVerified: 'Boolean!',
      active: 'Boolean!',
      createdAt: 'DateTime!',
    });
  });

  it('does not expose a password hash on User', () => {
    expect(Object.keys(fieldTypes('User')).filter((f) => /password|hash/i.test(f))).toEqual([]);
  });

  it('has the contract AuthPayload fields', () => {
    expect(fieldTypes('AuthPayload')).toMatchObject({
      accessToken: 'String!',
      // Null in cookie mode (REFRESH_TOKEN_TRANSPORT=cookie): the token is only in the cookie.
      refreshToken: 'String',
      tokenType: 'String!',
      expiresIn: 'Int!',
      refreshExpiresIn: 'Int!',
      user: 'User!',
    });
  });

  it('has RegisterInput { email: String!, password: String!, name: String } and nothing else', () => {
    const input = typeNamed('RegisterInput');
    if (!isInputObjectType(input)) throw new Error('RegisterInput is not an input type');
    expect(Object.fromEntries(Object.values(input.getFields()).map((f) => [f.name, String(f.type)]))).toEqual({
      email: 'String!',
      password: 'String!',
      name: 'String',
    });
  });

  it('has LoginInput { email: String!, password: String! }', () => {
    const input = typeNamed('LoginInput');
    if (!isInputObjectType(input)) throw new Error('LoginInput is not an input type');
    expect(Object.fromEntries(Object.values(input.getFields()).map((f) => [f.name, String(f.type)]))).toEqual({
      email: 'String!',
      password: 'String!',
    });
  });

  it('has Query.me: User without arguments', () => {
    const me = rootField('Query', 'me');
    expect(String(me.type)).toBe('User');
    expect(me.args).toEqual([]);
  });

  it('has register(input: RegisterInput!) returning AuthPayload | InputError | EmailTakenError | RateLimitedError', () => {
    const field = rootField('Mutation', 'register');
    expect(argsOf(field)).toEqual({ input: 'RegisterInput!' });
    expect(unionMembers(field)).toEqual(
      expect.arrayContaining(['AuthPayload', 'InputError', 'EmailTakenError', 'RateLimitedError']),
    );
  });

  it('has login(input: LoginInput!) returning AuthPayload | InvalidCredentialsError | AccountDisabledError | InputError | RateLimitedError', () => {
    const field = rootField('Mutation', 'login');
    expect(argsOf(field)).toEqual({ input: 'LoginInput!' });
    expect(unionMembers(field)).toEqual(
      expect.arrayContaining(['AuthPayload', 'InvalidCredentialsError', 'AccountDisabledError', 'InputError', 'RateLimitedError']),
    );
  });

  it('has refresh(refreshToken: String) returning AuthPayload | InvalidRefreshTokenError | RateLimitedError', () => {
    const field = rootField('Mutation', 'refresh');
    expect(argsOf(field)).toEqual({ refreshToken: 'String' });
    expect(unionMembers(field)).toEqual(
      expect.arrayContaining(['AuthPayload', 'InvalidRefreshTokenError', 'RateLimitedError']),
    );
  });

  it('has logout(refreshToken: String, everywhere: Boolean = false): Boolean!', () => {
    const field = rootField('Mutation', 'logout');
    expect(argsOf(field)).toEqual({ refreshToken: 'String', everywhere: 'Boolean = false' });
    expect(String(field.type)).toBe('Boolean!');
  });
});
