import { EnvelopArmorPlugin } from '@escape.tech/graphql-armor';
import { renderGraphiQL } from '@graphql-yoga/render-graphiql';
import { NoSchemaIntrospectionCustomRule, type ValidationRule } from 'graphql';
import { createYoga, type YogaLogger, type YogaServerOptions } from 'graphql-yoga';
import type { Config } from './config.js';
import { createContextFactory } from './context.js';
import type { AppServices } from './services.js';
import { GRAPHIQL_OPTIONS } from './graphql/graphiql-example.js';
import { maskOutages } from './graphql/outage-error.js';
import { schema } from './graphql/schema.js';
import type { Logger } from './logger.js';
import { SingleSensitiveFieldRule } from './graphql/single-sensitive-field.js';
import { useCsrfPrevention } from './plugins/use-csrf-prevention.js';
import { useJwks } from './plugins/use-jwks.js';
import { useMetrics } from './plugins/use-metrics.js';
import { useNoOriginalError } from './plugins/use-no-original-error.js';
import { useNoSuggestions } from './plugins/use-no-suggestions.js';
import { useQueryParamCheck } from './plugins/use-query-param-check.js';
import { useReadiness } from './plugins/use-readiness.js';
import { useRefreshCookie } from './plugins/use-refresh-cookie.js';
import { useRequestDeadline } from './plugins/use-request-deadline.js';
import { useRequestLimits } from './plugins/use-request-limits.js';
import { useSecurityHeaders } from './plugins/use-security-headers.js';
import { useSingleAuthorization } from './plugins/use-single-authorization.js';
import { useStacklessSerialization } from './plugins/use-stackless-serialization.js';
import { useValidationRules } from './plugins/use-validation-rules.js';
import { useVaryOrigin } from './plugins/use-vary-origin.js';
import type { ServerContext } from './request-info.js';

/** The parts of the configuration the HTTP/GraphQL layer reads. */
export type AppConfig = Pick<
  Config,
  'production' | 'introspection' | 'graphiql' | 'corsOrigins' | 'corsMaxAge' | 'refreshTokenTransport' | 'bodyLimit' | 'publicUrl' | 'graphqlLimits' | 'keys' | 'metrics'
>;

export interface AppOptions {
  config: AppConfig;
  /** Answers /ready: resolves when the database answers a query. */
  ping: () => Promise<void>;
  /** Milliseconds after which an operation answers SERVICE_UNAVAILABLE; unset: no limit. */
  requestDeadlineMs?: number | undefined;
}

/**
 * CORS from CORS_ORIGINS. A listed origin is echoed back alone; any other gets no CORS headers
 * at all (never "null", which sandboxed pages send). `true` (the development default) allows any
 * origin, never with credentials. `credentials` (a refresh cookie is in use) lets listed origins
 * send and read it (Access-Control-Allow-Credentials: true); with bearer tokens alone no origin
 * gets it. A preflight's answer may be cached for `maxAge` seconds, sparing a browser app one
 * round trip per request.
 */
function corsPolicy(origins: string[] | true, maxAge: number, credentials: boolean): YogaServerOptions<ServerContext, object>['cors'] {
  if (origins === true) return { origin: '*', credentials: false, maxAge };
  const allowed = new Set(origins);
  return (request) => {
    const origin = request.headers.get('origin');
    return origin && allowed.has(origin) ? { origin: [origin], credentials, maxAge } : false;
  };
}

/**
 * yoga's logger on pino. An Error argument goes to pino as `err`, where the logger keeps only
 * its safe form: yoga logs the GraphQL error of a failed resolver, whose message is the
 * original one (for a failed query, drizzle's, with every bound value in it).
 */
function yogaLogging(logger: Logger): YogaLogger {
  const at =
    (level: 'debug' | 'info' | 'warn' | 'error', fallback = '') =>
    (...args: unknown[]) => {
      const err = args.find((a): a is Error => a instanceof Error);
      const message = args.filter((a) => !(a instanceof Error)).map(String).join(' ') || fallback;
      logger[level](err ? { err } : {}, message);
    };
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error', 'request failed') };
}

/** The yoga app; tests call `app.fetch()` directly, server.ts puts it on a port. */
export function createApp(services: AppServices, { config, ping, requestDeadlineMs }: AppOptions) {
  const { logger } = services;
  const limits = config.graphqlLimits;
  const rules: ValidationRule[] = [SingleSensitiveFieldRule];
  const { token: metricsToken } = config.metrics;
  if (!config.introspection) rules.push(NoSchemaIntrospectionCustomRule);

  return createYoga<ServerContext>({
    schema,
    context: createContextFactory(services),
    graphqlEndpoint: '/graphql',
    healthCheckEndpoint: '/health',
    // Opens on an example document (register, login, me) and shows where the token goes.
    graphiql: config.graphiql && GRAPHIQL_OPTIONS,
    // Served from the package itself, not from a CDN: works offline and under a strict CSP.
    renderGraphiQL,
    landingPage: false,
    // One operation per request: batching would let one request carry many sign-in attempts.
    batching: false,
    // useRequestLimits bounds every body by its Content-Length (and refuses a POST without one);
    // node's HTTP parser hands on no byte past that length. Yoga's own limit would pipe every
    // body through a counting stream: a tenth of an authenticated request's CPU, for nothing.
    maxRequestBodySize: false,
    // Unexpected errors reach the client as "Unexpected error."; the details go to the log only.
    // isDev off: yoga would otherwise attach the original error and its stack whenever
    // NODE_ENV=development is set in the environment. A database outage is not masked: it is
    // SERVICE_UNAVAILABLE (503), so that clients retry.
    maskedErrors: { isDev: false, maskError: maskOutages },
    cors: corsPolicy(config.corsOrigins, config.corsMaxAge, config.refreshTokenTransport !== 'body'),
    logging: yogaLogging(logger),
    plugins: [
      // First: its latency clock starts before any other plugin's work.
      useMetrics(
        config.metrics.enabled && metricsToken !== undefined
          ? { enabled: true, token: metricsToken, metrics: services.metrics }
          : { enabled: false },
      ),
      // Before every plugin that answers a request on its own (its onRequest notes the key set's).
      useSecurityHeaders({ hsts: config.publicUrl?.startsWith('https:') ?? false }),
      useJwks({ keySet: () => services.signingKeys.ring.published(), maxAge: config.keys.jwksMaxAge }),
      useRequestDeadline({ ms: requestDeadlineMs }),
      useRequestLimits({ bodyLimit: config.bodyLimit }),
      useSingleAuthorization(),
      useQueryParamCheck(),
      // A POST a cross-site page could send without a preflight (a form, text/plain) is refused
      // unless it carries Authorization or a CSRF header: CSRF_REQUIRED (403).
      useCsrfPrevention(),
      useRefreshCookie(services.refreshCookies),
      EnvelopArmorPlugin({
        maxDepth: { n: limits.maxDepth },
        maxAliases: { n: limits.maxAliases },
        maxTokens: { n: limits.maxTokens },
        maxDirectives: { n: limits.maxDirectives },
        costLimit: { maxCost: limits.maxCost },
        blockFieldSuggestion: { enabled: config.production },
      }),
      // armor hides suggestions in validation errors only; this also covers variable coercion.
      useNoSuggestions({ enabled: config.production }),
      useNoOriginalError(),
      useStacklessSerialization(),
      useValidationRules(rules),
      useVaryOrigin(),
      useReadiness(async () => {
        try {
          await ping();
          return true;
        } catch (err) {
          logger.warn({ err }, 'readiness check failed: database unreachable');
          return false;
        }
      }),
    ],
  });
}

export type App = ReturnType<typeof createApp>;
