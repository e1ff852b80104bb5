/**
 * Every mutation either declares its rate limits on the field or is listed here with the
 * reason it needs none: a new mutation that forgets its limits fails this test. No mutation
 * that takes a credential or a mailed token, or signs someone in, may be listed.
 */
import { getNamedType, isInputObjectType, isUnionType, type GraphQLArgument, type GraphQLInputType } from 'graphql';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { sensitiveFieldsOf } from '../../src/graphql/single-sensitive-field.js';
import { schema } from '../../src/graphql/schema.js';
import { RATE_LIMIT_EXTENSION } from '../../src/graphql/rate-limit-plugin.js';

const UNLIMITED: Record<string, string> = {
  logout: 'only revokes; proving a session takes a valid access token or a 256-bit refresh token',
  revokeSession: 'needs a signed-in user; only revokes',
  revokeOtherSessions: 'needs a signed-in user; only revokes their own sessions',
  revokeUserSessions: 'needs sessions:revoke',
  grantRole: 'needs roles:grant',
  revokeRole: 'needs roles:grant',
  setUserActive: 'needs users:write',
  unlinkIdentity: 'needs a signed-in user who signed in recently; only removes one of their own identities',
};

const CREDENTIAL = /password|token|secret|code/i;

/** Every argument name reachable from a field's arguments, through input objects. */
function argumentNames(args: readonly GraphQLArgument[]): string[] {
  const seen = new Set<string>();
  const walk = (name: string, type: GraphQLInputType): string[] => {
    const named = getNamedType(type);
    if (!isInputObjectType(named) || seen.has(named.name)) return [name];
    seen.add(named.name);
    return [name, ...Object.values(named.getFields()).flatMap((field) => walk(field.name, field.type))];
  };
  return args.flatMap((arg) => walk(arg.name, arg.type));
}

const mutations = Object.values(schema.getMutationType()!.getFields());

describe('rate limits are declared on the field', () => {
  it.each(mutations.map((field) => [field.name, field] as const))('%s declares its limits or says why it has none', (name, field) => {
    const limited = Boolean(field.extensions[RATE_LIMIT_EXTENSION]);
    if (limited) {
      expect(field.description).toMatch(/Rate limits: `RATE_LIMIT_\w+` per /);
      return;
    }
    expect(UNLIMITED[name], `${name} has no rate limit and no reason to go without`).toBeDefined();
    // Nothing that checks a credential or mailed token, or signs in, may go without.
    expect(argumentNames(field.args).filter((arg) => CREDENTIAL.test(arg) && arg !== 'refreshToken')).toEqual([]);
    const type = getNamedType(field.type);
    const members = isUnionType(type) ? type.getTypes().map((t) => t.name) : [type.name];
    expect(members).not.toContain('AuthPayload');
  });

  it('lists no field as exempt that does not exist or that is limited', () => {
    for (const name of Object.keys(UNLIMITED)) {
      const field = schema.getMutationType()!.getFields()[name];
      expect(field, name).toBeDefined();
      expect(field!.extensions[RATE_LIMIT_EXTENSION], name).toBeUndefined();
    }
  });
});

/** The limit names a field declares, whatever the shape of its declaration (`ip: [...]`, `email: { limits: [...] }`). */
function limitNames(declaration: unknown): string[] {
  if (typeof declaration === 'string') return [declaration];
  if (Array.isArray(declaration)) return declaration.flatMap(limitNames);
  if (declaration && typeof declaration === 'object') return Object.values(declaration).flatMap(limitNames);
  return [];
}

describe("the README's Rate limits section", () => {
  const readme = readFileSync(path.resolve(import.meta.dirname, '../../README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('\n## Rate limits'), readme.indexOf('\n## ', readme.indexOf('\n## Rate limits') + 1));
  const fields = [schema.getQueryType()!, schema.getMutationType()!].flatMap((type) => Object.values(type.getFields()));
  const ticked = (text: string) => [...new Set([...text.matchAll(/`(\w+)`/g)].map((m) => m[1]!))].filter((name) => fields.some((f) => f.name === name));

  it('names every sensitive field (at most one per operation), and nothing else, in its list', () => {
    const list = /at\s+most one sensitive field \(([^)]*)\)/.exec(section)?.[1] ?? '';
    expect(ticked(list).sort()).toEqual(sensitiveFieldsOf(schema).sort());
  });

  it('names, in each limit\'s row, exactly the fields that declare that limit', () => {
    const declaredBy = new Map<string, string[]>();
    for (const field of fields) {
      for (const limit of limitNames(field.extensions[RATE_LIMIT_EXTENSION])) declaredBy.set(limit, [...(declaredBy.get(limit) ?? []), field.name]);
    }
    const rows = [...section.matchAll(/^\| `RATE_LIMIT_(\w+)` \| [^|]+ \| ([^\n]+) \|$/gm)].map((m) => [m[1]!, m[2]!] as const);
    expect(rows.length).toBeGreaterThan(10);
    // LOGIN_ACCOUNT is the lockout, which the sign-in flows apply themselves, not a field's declaration.
    const documented = Object.fromEntries(rows.filter(([limit]) => limit !== 'LOGIN_ACCOUNT').map(([limit, counts]) => [limit, ticked(counts).sort()]));
    expect(documented).toEqual(Object.fromEntries([...declaredBy].map(([limit, names]) => [limit, [...names].sort()])));
  });
});
