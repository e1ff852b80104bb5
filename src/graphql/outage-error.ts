import { GraphQLError } from 'graphql';
import { createGraphQLError, maskError } from 'graphql-yoga';
import { isDatabaseOutage } from '../db/outage.js';

/**
 * The GraphQL error of a request the database could not serve in time: `extensions.code`
 * SERVICE_UNAVAILABLE and HTTP 503, so clients and proxies know to retry later, unlike
 * "Unexpected error." (INTERNAL_SERVER_ERROR), which means a bug. `at`: the field error it replaces.
 */
export function serviceUnavailableError(at?: GraphQLError): GraphQLError {
  return createGraphQLError('The service is temporarily unavailable. Try again shortly.', {
    nodes: at?.nodes,
    path: at?.path,
    extensions: { code: 'SERVICE_UNAVAILABLE', http: { status: 503 } },
  });
}

/**
 * yoga's `maskError`: a database outage becomes serviceUnavailableError(), anything else is
 * masked as yoga masks it. Either way yoga logs the original error.
 */
export function maskOutages(error: unknown, message: string, isDev?: boolean): Error {
  if (isDatabaseOutage(error)) return serviceUnavailableError(error instanceof GraphQLError ? error : undefined);
  return maskError(error, message, isDev);
}
