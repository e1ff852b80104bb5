/**
 * The ceiling of this stack: graphql-yoga answering `{ hello }` on node:http, with yoga's
 * defaults and nothing of authgraph. The bench starts it as a child process, like the server.
 */
import { createServer } from 'node:http';
import { createSchema, createYoga } from 'graphql-yoga';

const yoga = createYoga({
  schema: createSchema({
    typeDefs: 'type Query { hello: String! }',
    resolvers: { Query: { hello: () => 'world' } },
  }),
  logging: false,
});

const server = createServer(yoga);
const port = Number(process.env.PORT ?? 4001);
const host = process.env.HOST ?? '127.0.0.1';
server.listen(port, host, () => console.log(`bare yoga is listening on http://${host}:${port}/graphql`));

// Nothing to drain: the bench has stopped sending when it signals.
for (const signal of ['SIGTERM', 'SIGINT'] as const) process.once(signal, () => process.exit(0));
