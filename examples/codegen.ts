import type { CodegenConfig } from '@graphql-codegen/cli';

/**
 * GraphQL Code Generator's client-preset over the committed schema and the example operations:
 * `npm run codegen:examples` (from the repository root) writes typed documents to examples/gql/
 * (not committed). A frontend copies this file and points `documents` at its own operations.
 */
const config: CodegenConfig = {
  schema: 'schema.graphql',
  documents: ['examples/operations/*.graphql'],
  ignoreNoDocuments: false,
  generates: {
    'examples/gql/': {
      preset: 'client',
      presetConfig: { fragmentMasking: false },
      config: {
        // authgraph's DateTime is an ISO 8601 string on the wire.
        scalars: { DateTime: 'string' },
        // Unions of string literals, not TypeScript enums: they survive isolatedModules and
        // erasable-syntax-only builds (Vite, esbuild, Node's type stripping).
        enumsAsTypes: true,
        useTypeImports: true,
      },
    },
  },
};

export default config;
