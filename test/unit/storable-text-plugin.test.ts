import SchemaBuilder from '@pothos/core';
import ErrorsPlugin from '@pothos/plugin-errors';
import ScopeAuthPlugin from '@pothos/plugin-scope-auth';
import ValidationPlugin from '@pothos/plugin-validation';
import { graphql } from 'graphql';
import { describe, expect, it } from 'vitest';
import { InputError } from '../../src/errors.js';
import StorableTextPlugin from '../../src/graphql/storable-text-plugin.js';
import { validationInputError } from '../../src/graphql/validation-error.js';

// A schema of its own, with the shapes authgraph's does not have yet: lists of strings, lists of
// input objects, input objects inside input objects. Configured as src/graphql/builder.ts is.
const builder = new SchemaBuilder<{ DefaultFieldNullability: false }>({
  plugins: [ScopeAuthPlugin, ErrorsPlugin, ValidationPlugin, StorableTextPlugin],
  defaultFieldNullability: false,
  scopeAuth: { authScopes: () => ({}) },
  errors: { directResult: true, unsafelyHandleInputErrors: true },
  validation: { validationError: validationInputError },
});
const Ok = builder.objectRef<{ ok: true }>('Ok').implement({ fields: (t) => ({ ok: t.exposeBoolean('ok') }) });
builder.objectType(InputError, { name: 'InputError', fields: (t) => ({ field: t.exposeString('field'), code: t.exposeString('code') }) });
const Address = builder.inputType('Address', { fields: (t) => ({ street: t.string(), lines: t.stringList() }) });
const Person = builder.inputType('Person', { fields: (t) => ({ name: t.string(), address: t.field({ type: Address }) }) });
let resolved = 0;
builder.queryType({
  fields: (t) => ({
    save: t.field({
      type: Ok,
      errors: { types: [InputError] },
      args: { tags: t.arg.stringList(), people: t.arg({ type: [Person] }), note: t.arg.string() },
      resolve: () => {
        resolved += 1;
        return { ok: true as const };
      },
    }),
    plain: t.boolean({ args: { people: t.arg({ type: [Person] }) }, resolve: () => true }),
  }),
});
const schema = builder.toSchema();

const SAVE = `query Save($tags: [String!], $people: [Person!], $note: String) {
  save(tags: $tags, people: $people, note: $note) { __typename ... on InputError { field code } }
}`;

describe('StorableTextPlugin', () => {
  it.each([
    ['a scalar argument', { note: '\u{1F98A}a\u0000' }, 'note'],
    ['an item of a list argument', { tags: ['ok', 'ok', 'b\u0000'] }, 'tags.2'],
    ['a field of an input object in a list', { people: [{ name: 'ok' }, { name: 'c\ud800' }] }, 'people.1.name'],
    ['a list inside an input object inside an input object', { people: [{ address: { lines: ['x', 'y\udfff'] } }] }, 'people.0.address.lines.1'],
  ])('refuses unstorable text in %s, naming %s as the field, without running the resolver', async (_label, variables, field) => {
    resolved = 0;
    const res = await graphql({ schema, source: SAVE, variableValues: variables });
    expect(res).toEqual({ data: { save: { __typename: 'InputError', field, code: 'INVALID_INPUT' } } });
    expect(resolved).toBe(0);
    // The same arguments without that one character run the resolver.
    const clean = JSON.parse(JSON.stringify(variables).replace(/\\u0000|\\ud[89a-f][0-9a-f]{2}/g, ''));
    expect(await graphql({ schema, source: SAVE, variableValues: clean })).toEqual({ data: { save: { __typename: 'Ok' } } });
    expect(resolved).toBe(1);
  });

  it('names the field inside a lone input object argument without the argument, as the resolvers do (register: `email`)', () => {
    const error = validationInputError({ issues: [{ message: 'm', path: ['input', 'email'] }] }, { input: { email: 'x' } });
    expect(error).toMatchObject({ field: 'email', code: 'INVALID_INPUT', message: 'm' });
  });

  it('answers a GraphQL error with extensions.code and extensions.field on a field without an InputError member', async () => {
    const res = await graphql({ schema, source: 'query { plain(people: [{ name: "d\\u0000" }]) }' });
    expect(res.errors?.map((e) => ({ path: e.path, extensions: e.extensions }))).toEqual([
      { path: ['plain'], extensions: { code: 'INVALID_INPUT', field: 'people.0.name' } },
    ]);
  });
});
