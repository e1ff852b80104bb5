/**
 * The layers README's architecture section draws: every import in src/ points to its own
 * layer or a lower one, and no module imports itself back through others.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = path.resolve(import.meta.dirname, '../../src');

/** Lowest first. A module's layer is the first rule that matches its path below src/. */
const LAYERS: [name: string, matches: RegExp][] = [
  ['foundations', /^(crypto|db)\/|^(time|clock|errors|ids|request-info|logger|config|safe-error|storable-text|background-tasks|metrics)\.ts$|^social\/social-config\.ts$/],
  [
    'stores',
    /^accounts\/(accounts|email|one-time-tokens)\.ts$|^credentials\/(passwords|password-policy|totp|recovery-codes|sign-in-challenges|passkeys|webauthn|webauthn-challenges)\.ts$|^sessions\/(sessions|revocation|viewer-events|step-up)\.ts$|^tokens\/|^authz\/(permissions|authorization-memory)\.ts$|^abuse\/(rate-limiter|lockout|lockout-rule|work-gate)\.ts$|^audit\/|^mail\/|^social\/(identities|social-states|provider-clients)\.ts$/,
  ],
  [
    'flows',
    /^accounts\/(registration|account-recovery)\.ts$|^credentials\/(sign-in|sign-in-methods|password-change|reauthentication|second-factors|passkey-registration|passkey-sign-in)\.ts$|^sessions\/(session-service|session-admin|refresh-cookie)\.ts$|^authz\/(role-admin|user-directory)\.ts$|^abuse\/guard\.ts$|^social\/social-sign-in\.ts$/,
  ],
  ['wiring', /^(services|context|purge)\.ts$/],
  ['surface', /^(graphql|plugins)\/|^app\.ts$/],
  ['entry', /^(server|cli|bootstrap|shutdown|startup-signals|process-faults)\.ts$/],
];

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) return name === 'migrations' ? [] : sourceFiles(full);
    return name.endsWith('.ts') ? [full] : [];
  });
}

const modules = sourceFiles(SRC).map((file) => path.relative(SRC, file));
const layerOf = (module: string) => LAYERS.findIndex(([, matches]) => matches.test(module));

function importsOf(module: string): string[] {
  const text = readFileSync(path.join(SRC, module), 'utf8');
  return [...text.matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)].map((m) =>
    path.normalize(path.join(path.dirname(module), m[1]!)).replace(/\.js$/, '.ts'),
  );
}

describe('layers', () => {
  it('places every module of src/ in a layer', () => {
    expect(modules.filter((module) => layerOf(module) === -1)).toEqual([]);
  });

  it('has no import from a lower layer to a higher one', () => {
    const upward = modules.flatMap((module) =>
      importsOf(module)
        .filter((target) => layerOf(target) > layerOf(module))
        .map((target) => `${module} (${LAYERS[layerOf(module)]![0]}) -> ${target} (${LAYERS[layerOf(target)]![0]})`),
    );
    expect(upward).toEqual([]);
  });

  it('has no import cycle', () => {
    const graph = new Map(modules.map((module) => [module, importsOf(module).filter((t) => modules.includes(t))]));
    const state = new Map<string, 'open' | 'done'>();
    const cycles: string[] = [];
    const visit = (module: string, trail: string[]) => {
      state.set(module, 'open');
      for (const next of graph.get(module) ?? []) {
        if (state.get(next) === 'open') cycles.push([...trail.slice(trail.indexOf(next)), next].join(' -> '));
        else if (!state.has(next)) visit(next, [...trail, next]);
      }
      state.set(module, 'done');
    };
    for (const module of modules) if (!state.has(module)) visit(module, [module]);
    expect(cycles).toEqual([]);
  });
});
