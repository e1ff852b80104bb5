/**
 * The access policy of each field is written once (guarded() in policy.ts) and both enforced
 * (scope-auth scopes) and documented (the "Access:" sentence of its description), so the
 * committed schema.graphql shows consumers what is enforced.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { buildSchema, type GraphQLField, type GraphQLObjectType } from 'graphql';
import { describe, expect, it } from 'vitest';
import type { Permission } from '../../src/authz/permissions.js';
import { describePolicy, guarded, type Policy } from '../../src/graphql/policy.js';
import { schema } from '../../src/graphql/schema.js';

const committed = buildSchema(readFileSync(fileURLToPath(new URL('../../schema.graphql', import.meta.url)), 'utf8'));

const SELF_OR_USERS_READ = 'Access: the user themself, or permission `users:read`.';
const SIGNED_IN = 'Access: any signed-in user.';
const SIGNED_IN_RECENTLY = 'Access: any signed-in user, signed in within the last 5 minutes (REAUTH_MAX_AGE).';
const SIGNED_IN_RECENTLY_ONCE_ENROLLED =
  'Access: any signed-in user, signed in with a second factor (once they have one) within the last 5 minutes (REAUTH_MAX_AGE).';
const SIGNED_IN_RECENTLY_TWO_FACTORS = 'Access: any signed-in user, signed in with a second factor within the last 5 minutes (REAUTH_MAX_AGE).';

/** Every protected field of the contract and the exact policy sentence its description ends with. */
const EXPECTED: [type: string, field: string, sentence: string][] = [
  ['Query', 'user', SELF_OR_USERS_READ],
  ['Query', 'users', 'Access: permission `users:read`.'],
  ['Query', 'adminStats', 'Access: permission `users:read`.'],
  ['Query', 'roles', SIGNED_IN],
  ['Query', 'me', SIGNED_IN],
  ['Mutation', 'changePassword', SIGNED_IN_RECENTLY],
  ['Mutation', 'reauthenticate', SIGNED_IN],
  ['Mutation', 'enrollTotp', SIGNED_IN_RECENTLY_ONCE_ENROLLED],
  ['Mutation', 'confirmTotp', 'Access: any signed-in user, signed in with a second factor (once they have one).'],
  ['Mutation', 'startPasskeyRegistration', SIGNED_IN_RECENTLY_ONCE_ENROLLED],
  ['Mutation', 'finishPasskeyRegistration', 'Access: any signed-in user, signed in with a second factor (once they have one).'],
  ['Mutation', 'disableTotp', SIGNED_IN_RECENTLY_TWO_FACTORS],
  ['Mutation', 'regenerateRecoveryCodes', SIGNED_IN_RECENTLY_TWO_FACTORS],
  ['User', 'secondFactors', 'Access: the user themself.'],
  ['Mutation', 'grantRole', 'Access: permission `roles:grant`.'],
  ['Mutation', 'revokeRole', 'Access: permission `roles:grant`.'],
  ['Mutation', 'setUserActive', 'Access: permission `users:write`.'],
  ['User', 'email', SELF_OR_USERS_READ],
  ['User', 'lastLoginAt', SELF_OR_USERS_READ],
];

const kindOf = (type: unknown) => Object.prototype.toString.call(type).slice(8, -1);

function fieldOf(s: { getType(name: string): unknown }, type: string, field: string): GraphQLField<unknown, unknown> {
  const t = s.getType(type) as GraphQLObjectType | undefined;
  const f = t?.getFields()[field];
  if (!f) throw new Error(`${type}.${field} does not exist`);
  return f;
}

/** Every field of every object type of a schema, as [type, field]. */
function allFields(s: { getTypeMap(): Record<string, unknown> }) {
  return Object.values(s.getTypeMap())
    .filter((t) => kindOf(t) === 'GraphQLObjectType' && !(t as GraphQLObjectType).name.startsWith('__'))
    .flatMap((t) => Object.values((t as GraphQLObjectType).getFields()).map((f) => [(t as GraphQLObjectType).name, f] as const));
}

type Who = { authenticated?: boolean; self?: string; role?: string; permission?: Permission };
type Scopes = { $any: Who } | { $all: { $any: Who; recentAuth?: true; secondFactor?: true; secondFactorOnceEnrolled?: true } };

const PARENT_ID = '00000000-0000-4000-8000-00000000000a';
const ARG_ID = '00000000-0000-4000-8000-00000000000b';
const OWNER_ID = '00000000-0000-4000-8000-00000000000c';
/** Just enough context for policies that look something up (the owner of a session). */
const fakeContext = { services: { sessionAdmin: { ownerOf: async () => OWNER_ID } } };

/** The policy a field enforces, read back from the scopes its authScopes produce. */
async function enforcedPolicy(field: GraphQLField<unknown, unknown>): Promise<Policy<never, never> | null> {
  const options = (field.extensions as { pothosOptions?: { authScopes?: unknown } }).pothosOptions;
  if (!options?.authScopes) return null;
  expect(typeof options.authScopes).toBe('function');
  const authScopes = options.authScopes as (parent: unknown, args: unknown, context: unknown) => Promise<Scopes>;
  const scopes = await authScopes({ id: PARENT_ID }, { id: ARG_ID }, fakeContext);
  // Who may (any one of), alone or, with step-up, in $all beside the step-up scopes.
  const stepUp = '$all' in scopes ? scopes.$all : {};
  if ('$all' in scopes) {
    expect(Object.keys(scopes.$all).filter((k) => !['$any', 'recentAuth', 'secondFactor', 'secondFactorOnceEnrolled'].includes(k))).toEqual([]);
  }
  else expect(Object.keys(scopes)).toEqual(['$any']);
  const any = '$all' in scopes ? scopes.$all.$any : scopes.$any;
  return {
    ...(any.authenticated ? { authenticated: true as const } : {}),
    ...(any.self !== undefined ? { self: () => any.self! } : {}),
    ...(any.role ? { role: any.role } : {}),
    ...(any.permission ? { permission: any.permission } : {}),
    ...('recentAuth' in stepUp && stepUp.recentAuth ? { recentAuth: true as const } : {}),
    ...('secondFactor' in stepUp && stepUp.secondFactor ? { secondFactor: true as const } : {}),
    ...('secondFactorOnceEnrolled' in stepUp && stepUp.secondFactorOnceEnrolled ? { secondFactor: 'once-enrolled' as const } : {}),
  };
}

describe('committed schema.graphql', () => {
  for (const [type, field, sentence] of EXPECTED) {
    it(`documents the policy of ${type}.${field}: "${sentence}"`, () => {
      const description = fieldOf(committed, type, field).description ?? '';
      expect(description).toContain('Access:');
      expect(description.endsWith(sentence), description).toBe(true);
    });
  }

  it('names the permission each admin field requires', () => {
    const permissionOf = (type: string, field: string) =>
      /Access: .*permission `([a-z:]+)`/.exec(fieldOf(committed, type, field).description ?? '')?.[1];
    expect(permissionOf('Query', 'users')).toBe('users:read');
    expect(permissionOf('Query', 'adminStats')).toBe('users:read');
    expect(permissionOf('Query', 'user')).toBe('users:read');
    expect(permissionOf('Mutation', 'grantRole')).toBe('roles:grant');
    expect(permissionOf('Mutation', 'revokeRole')).toBe('roles:grant');
    expect(permissionOf('Mutation', 'setUserActive')).toBe('users:write');
    expect(permissionOf('User', 'email')).toBe('users:read');
    expect(permissionOf('User', 'lastLoginAt')).toBe('users:read');
  });

  it('documents in it only policies the running schema enforces, with the sentence describePolicy gives', async () => {
    // (A guarded field missing from the file is drift, which test/schema.test.ts reports.)
    const documented = allFields(committed).filter(([, f]) => (f.description ?? '').includes('Access:'));
    expect(documented.map(([t, f]) => `${t}.${f.name}`)).toEqual(expect.arrayContaining(EXPECTED.map(([t, f]) => `${t}.${f}`)));
    for (const [type, field] of documented) {
      const running = fieldOf(schema, type, field.name);
      const policy = await enforcedPolicy(running);
      expect(policy, `${type}.${field.name} is documented as guarded but enforces nothing`).not.toBeNull();
      expect(field.description!.endsWith(`\n\n${describePolicy(policy!)}`), `${type}.${field.name}`).toBe(true);
    }
  });
});

describe('describePolicy', () => {
  it('describes a permission', () => {
    expect(describePolicy({ permission: 'users:read' })).toBe('Access: permission `users:read`.');
  });

  it('describes any signed-in user', () => {
    expect(describePolicy({ authenticated: true })).toBe(SIGNED_IN);
  });

  it('describes self or a permission', () => {
    expect(describePolicy({ self: () => 'x', permission: 'users:read' })).toBe(SELF_OR_USERS_READ);
  });

  it('adds the step-up after who may: a recent sign-in, a second factor, or both', () => {
    expect(describePolicy({ authenticated: true, recentAuth: true })).toBe(SIGNED_IN_RECENTLY);
    expect(describePolicy({ self: () => 'x', secondFactor: true })).toBe('Access: the user themself, signed in with a second factor.');
    expect(describePolicy({ authenticated: true, secondFactor: true, recentAuth: true })).toBe(
      'Access: any signed-in user, signed in with a second factor within the last 5 minutes (REAUTH_MAX_AGE).',
    );
    expect(describePolicy({ authenticated: true, secondFactor: 'once-enrolled', recentAuth: true })).toBe(SIGNED_IN_RECENTLY_ONCE_ENROLLED);
  });

  it('describes a role, and every alternative in a fixed order joined by "or"', () => {
    expect(describePolicy({ role: 'admin' })).toBe('Access: role `admin`.');
    expect(describePolicy({ permission: 'audit:read', role: 'admin', self: () => 'x', authenticated: true })).toBe(
      'Access: any signed-in user, or the user themself, or role `admin`, or permission `audit:read`.',
    );
  });

  it('produces the sentence every guarded field of the running schema ends with, from the scopes it enforces', async () => {
    let checked = 0;
    for (const [type, field] of allFields(schema)) {
      const policy = await enforcedPolicy(field);
      if (!policy) continue;
      checked++;
      expect(field.description?.endsWith(`\n\n${describePolicy(policy)}`), `${type}.${field.name}: ${field.description}`).toBe(true);
    }
    expect(checked).toBeGreaterThanOrEqual(EXPECTED.length);
  });

  it('produces the sentences of the committed schema.graphql for the same policies', async () => {
    for (const [type, field, sentence] of EXPECTED) {
      const policy = (await enforcedPolicy(fieldOf(schema, type, field)))!;
      expect(describePolicy(policy), `${type}.${field}`).toBe(sentence);
    }
  });
});

describe('guarded', () => {
  const ctx = fakeContext as never;

  it('appends the policy sentence to the description', () => {
    const options = guarded({ permission: 'roles:grant' }, 'Gives a role.');
    expect(options.description).toBe('Gives a role.\n\nAccess: permission `roles:grant`.');
  });

  it('enforces the same policy as scopes, any one of which suffices', async () => {
    expect(await guarded({ permission: 'users:write' }, 'x').authScopes(null, {}, ctx)).toEqual({ $any: { permission: 'users:write' } });
    expect(await guarded({ authenticated: true }, 'x').authScopes(null, {}, ctx)).toEqual({ $any: { authenticated: true } });
    expect(await guarded({ role: 'admin', permission: 'audit:read' }, 'x').authScopes(null, {}, ctx)).toEqual({
      $any: { role: 'admin', permission: 'audit:read' },
    });
  });

  it('enforces step-up scopes beside who may, all of them required', async () => {
    expect(await guarded({ authenticated: true, recentAuth: true }, 'x').authScopes(null, {}, ctx)).toEqual({
      $all: { $any: { authenticated: true }, recentAuth: true },
    });
    expect(await guarded({ self: () => 's1', secondFactor: true, recentAuth: true }, 'x').authScopes(null, {}, ctx)).toEqual({
      $all: { $any: { self: 's1' }, recentAuth: true, secondFactor: true },
    });
  });

  it('computes self from the parent and arguments of each call', async () => {
    const onParent = guarded({ self: (user: { id: string }) => user.id, permission: 'users:read' }, 'x');
    expect(await onParent.authScopes({ id: 'u1' }, {}, ctx)).toEqual({ $any: { self: 'u1', permission: 'users:read' } });
    expect(await onParent.authScopes({ id: 'u2' }, {}, ctx)).toEqual({ $any: { self: 'u2', permission: 'users:read' } });
    const onArgs = guarded({ self: (_: unknown, args: { id: string }) => args.id }, 'x');
    expect(await onArgs.authScopes(null, { id: 'a1' }, ctx)).toEqual({ $any: { self: 'a1' } });
  });

  it('leaves self out when it resolves to nobody, and refuses outright when nothing else is allowed', async () => {
    const nobody = async () => null;
    expect(await guarded({ self: nobody, permission: 'sessions:revoke' }, 'x').authScopes(null, {}, ctx)).toEqual({
      $any: { permission: 'sessions:revoke' },
    });
    expect(await guarded({ self: nobody }, 'x').authScopes(null, {}, ctx)).toBe(false);
  });

  it('guards User.email by the id of the user it is read on and Query.user by its id argument', async () => {
    const email = (await enforcedPolicy(fieldOf(schema, 'User', 'email')))!;
    expect(email.self?.(undefined as never, undefined as never, ctx)).toBe(PARENT_ID);
    const user = (await enforcedPolicy(fieldOf(schema, 'Query', 'user')))!;
    expect(user.self?.(undefined as never, undefined as never, ctx)).toBe(ARG_ID);
  });

  it('guards revokeSession by the owner of the session it names', async () => {
    const revoke = (await enforcedPolicy(fieldOf(schema, 'Mutation', 'revokeSession')))!;
    expect(revoke.self?.(undefined as never, undefined as never, ctx)).toBe(OWNER_ID);
    expect(revoke.permission).toBe('sessions:revoke');
  });
});
