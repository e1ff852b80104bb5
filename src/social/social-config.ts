/**
 * Social sign-in's configuration: SOCIAL_PROVIDERS names the providers, and each one's
 * variables are SOCIAL_<ID>_… (config.ts calls this with the environment, blanks dropped).
 */

/** One configured provider: `github` (OAuth 2.0 and GitHub's API) or any OpenID Connect issuer. */
export type SocialProviderConfig = {
  id: string;
  name: string;
  clientId: string;
  clientSecret: string;
  /** Space-separated, as sent in the authorization request. */
  scopes: string;
  /** True for an `http://` loopback URL outside production (openid-client refuses http otherwise). */
  allowInsecureRequests: boolean;
} & ({ kind: 'oidc'; issuer: URL } | { kind: 'github'; webUrl: URL; apiUrl: URL });

export interface SocialConfig {
  providers: SocialProviderConfig[];
  /** The exact redirect URIs a frontend may ask for, in their canonical form (URL.href). */
  redirectUris: string[];
  /** Seconds a started sign-in may take before its state expires. */
  stateTtl: number;
}

const ID = /^[a-z][a-z0-9]*$/;
const LOOPBACK_HOSTS = new Set(['localhost', '[::1]']);

function isLoopback(url: URL): boolean {
  return LOOPBACK_HOSTS.has(url.hostname) || /^127(\.\d{1,3}){3}$/.test(url.hostname);
}

/** A comma-separated list, trimmed, without empty entries. */
export function listOf(value: string | undefined): string[] {
  return (value ?? '')
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean);
}

/**
 * An `https://` URL, or `http://` on a loopback address outside production (a local IdP, tests):
 * the URL and whether openid-client must be told to allow http, or a problem naming `variable`.
 */
function secureUrl(variable: string, value: string, production: boolean): { url: URL; insecure: boolean } | string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return `${variable}: expected a URL`;
  }
  if (url.protocol === 'https:') return { url, insecure: false };
  if (url.protocol === 'http:' && !production && isLoopback(url)) return { url, insecure: true };
  return `${variable}: must be https:// (http:// only on a loopback address outside production)`;
}

/** Parses the social sign-in variables; problems name the variable, as config.ts reports them. */
export function parseSocialConfig(
  env: Record<string, string>,
  options: { production: boolean; stateTtl: number },
): { social: SocialConfig; problems: string[] } {
  const { production } = options;
  const problems: string[] = [];
  const providers: SocialProviderConfig[] = [];
  const ids = listOf(env.SOCIAL_PROVIDERS).map((id) => id.toLowerCase());
  for (const id of ids) {
    if (!ID.test(id)) {
      problems.push(`SOCIAL_PROVIDERS: "${id}" is not a provider id (a letter, then letters and digits)`);
      continue;
    }
    if (providers.some((p) => p.id === id)) {
      problems.push(`SOCIAL_PROVIDERS: "${id}" is listed twice`);
      continue;
    }
    const prefix = `SOCIAL_${id.toUpperCase()}_`;
    const read = (name: string) => env[`${prefix}${name}`]?.trim();
    const clientId = read('CLIENT_ID');
    const clientSecret = read('CLIENT_SECRET');
    if (!clientId) problems.push(`${prefix}CLIENT_ID: required for provider "${id}"`);
    if (!clientSecret) problems.push(`${prefix}CLIENT_SECRET: required for provider "${id}"`);
    const common = { id, clientId: clientId ?? '', clientSecret: clientSecret ?? '' };
    if (id === 'github') {
      if (read('ISSUER')) problems.push(`${prefix}ISSUER: not used for github (it is not OpenID Connect); set SOCIAL_GITHUB_WEB_URL`);
      const web = secureUrl(`${prefix}WEB_URL`, read('WEB_URL') ?? 'https://github.com', production);
      const api = secureUrl(`${prefix}API_URL`, read('API_URL') ?? 'https://api.github.com', production);
      if (typeof web === 'string') problems.push(web);
      if (typeof api === 'string') problems.push(api);
      if (typeof web === 'string' || typeof api === 'string') continue;
      providers.push({
        ...common,
        kind: 'github',
        name: read('NAME') ?? 'GitHub',
        scopes: listOf(read('SCOPES') ?? 'read:user,user:email').join(' '),
        webUrl: web.url,
        apiUrl: api.url,
        allowInsecureRequests: web.insecure || api.insecure,
      });
      continue;
    }
    const issuerValue = read('ISSUER');
    if (!issuerValue) {
      problems.push(`${prefix}ISSUER: required for provider "${id}" (the OpenID Connect issuer URL)`);
      continue;
    }
    const issuer = secureUrl(`${prefix}ISSUER`, issuerValue, production);
    if (typeof issuer === 'string') {
      problems.push(issuer);
      continue;
    }
    const scopes = listOf(read('SCOPES') ?? 'openid,email,profile');
    if (!scopes.includes('openid')) problems.push(`${prefix}SCOPES: must include openid`);
    providers.push({
      ...common,
      kind: 'oidc',
      name: read('NAME') ?? id,
      scopes: scopes.join(' '),
      issuer: issuer.url,
      allowInsecureRequests: issuer.insecure,
    });
  }
  const redirectUris: string[] = [];
  for (const value of listOf(env.SOCIAL_REDIRECT_URIS)) {
    const parsed = secureUrl('SOCIAL_REDIRECT_URIS', value, production);
    if (typeof parsed === 'string') problems.push(`${parsed} ("${value}")`);
    // openid-client sends the redirect URI without query or fragment, and compares exactly.
    else if (parsed.url.search || parsed.url.hash) problems.push(`SOCIAL_REDIRECT_URIS: "${value}" must have no query or fragment`);
    else if (parsed.url.href !== value) problems.push(`SOCIAL_REDIRECT_URIS: write "${value}" as ${parsed.url.href}`);
    else redirectUris.push(value);
  }
  if (providers.length > 0 && redirectUris.length === 0 && problems.length === 0) {
    problems.push('SOCIAL_REDIRECT_URIS: required when SOCIAL_PROVIDERS is set (the frontend pages providers redirect back to)');
  }
  return { social: { providers, redirectUris, stateTtl: options.stateTtl }, problems };
}
