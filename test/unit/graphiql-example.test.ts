import { Kind, parse, specifiedRules, validate, type OperationDefinitionNode } from 'graphql';
import { describe, expect, it } from 'vitest';
import { GRAPHIQL_EXAMPLE_DOCUMENT, GRAPHIQL_EXAMPLE_HEADERS, GRAPHIQL_OPTIONS } from '../../src/graphql/graphiql-example.js';
import { schema } from '../../src/graphql/schema.js';
import { SingleSensitiveFieldRule } from '../../src/graphql/single-sensitive-field.js';

const document = parse(GRAPHIQL_EXAMPLE_DOCUMENT);
const operations = document.definitions.filter((d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION);

describe('the GraphiQL example document', () => {
  it('validates against the schema, with the rules the server adds', () => {
    expect(validate(schema, document, [...specifiedRules, SingleSensitiveFieldRule]).map((e) => e.message)).toEqual([]);
  });

  it('validates operation by operation, as GraphiQL sends them (each with every fragment)', () => {
    const fragments = document.definitions.filter((d) => d.kind === Kind.FRAGMENT_DEFINITION);
    for (const operation of operations) {
      const sent = { ...document, definitions: [operation, ...fragments] };
      expect(validate(schema, sent, [...specifiedRules, SingleSensitiveFieldRule]).map((e) => e.message), operation.name?.value).toEqual([]);
    }
  });

  it('holds the operations Register, Login and Me', () => {
    expect(operations.map((o) => o.name?.value)).toEqual(['Register', 'Login', 'Me']);
  });

  it('selects __typename and `... on Error { code message }` on every union result', () => {
    for (const name of ['Register', 'Login']) {
      const operation = operations.find((o) => o.name?.value === name)!;
      const root = operation.selectionSet.selections[0]!;
      if (root.kind !== Kind.FIELD || !root.selectionSet) throw new Error(`${name} has no selection`);
      const selections = root.selectionSet.selections;
      expect(selections.some((s) => s.kind === Kind.FIELD && s.name.value === '__typename'), name).toBe(true);
      const onError = selections.find((s) => s.kind === Kind.INLINE_FRAGMENT && s.typeCondition?.name.value === 'Error');
      expect(onError?.kind === Kind.INLINE_FRAGMENT && onError.selectionSet.selections.map((s) => s.kind === Kind.FIELD && s.name.value), name).toEqual([
        'code',
        'message',
      ]);
    }
  });

  it('says where the access token goes, in the document and in the Headers tab', () => {
    expect(GRAPHIQL_EXAMPLE_DOCUMENT).toMatch(/Authorization/);
    expect(JSON.parse(GRAPHIQL_EXAMPLE_HEADERS)).toEqual({ Authorization: expect.stringMatching(/^Bearer /) });
    expect(GRAPHIQL_OPTIONS).toMatchObject({ defaultQuery: GRAPHIQL_EXAMPLE_DOCUMENT, defaultHeaders: GRAPHIQL_EXAMPLE_HEADERS });
  });
});
