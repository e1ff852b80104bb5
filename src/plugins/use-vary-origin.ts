import type { Plugin } from 'graphql-yoga';

/**
 * Every answer says it depends on the Origin header (`Vary: Origin`): with CORS_ORIGINS, a listed
 * origin gets CORS headers naming it and any other gets none, and yoga's CORS marks that only
 * when it echoes one of several origins. Without it, a shared cache could hand one origin's
 * answer (the public key set is cacheable) to another.
 */
export function useVaryOrigin(): Plugin {
  return {
    onResponse({ response }) {
      const vary = response.headers.get('vary');
      const named = vary?.split(',').some((name) => ['origin', '*'].includes(name.trim().toLowerCase())) ?? false;
      if (!named) response.headers.set('Vary', vary ? `${vary}, Origin` : 'Origin');
    },
  };
}
