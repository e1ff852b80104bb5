import type { Permission } from '../authz/permissions.js';
import type { Context } from '../context.js';
import type { AuthScopes } from './builder.js';

/**
 * Who may use a field: anyone matching ANY of the listed conditions. One definition both
 * enforces the rule (as scope-auth scopes) and documents it (in the schema description),
 * so the published schema.graphql cannot drift from what is enforced.
 */
export interface Policy<Parent = unknown, Args = unknown> {
  /** Any signed-in user. */
  authenticated?: true;
  /** Holders of this permission (through any of their roles). */
  permission?: Permission;
  /** Holders of this role. */
  role?: string;
  /** The viewer is the user whose id this returns (null: nobody, e.g. an unknown id). */
  self?: (parent: Parent, args: Args, context: Context) => string | null | Promise<string | null>;
  /** Step-up, besides who may: the session was (re-)authenticated within REAUTH_MAX_AGE seconds. */
  recentAuth?: true;
  /**
   * Step-up, besides who may: the session passed a second factor; `once-enrolled`: only when the
   * user has one (fields that add a factor: the first needs none, the next needs the one there).
   */
  secondFactor?: true | 'once-enrolled';
}

/** Who may (any one of), and with step-up, the step-up scopes beside it (all of). */
type ScopeMap =
  | { $any: Partial<AuthScopes> }
  | { $all: { $any: Partial<AuthScopes>; recentAuth?: true; secondFactor?: true; secondFactorOnceEnrolled?: true } };

/** REAUTH_MAX_AGE's default, as the schema (printed once, not per deployment) states it. */
const REAUTH_WINDOW = '5 minutes (REAUTH_MAX_AGE)';

/** The policy as a sentence for the schema description. */
export function describePolicy(policy: Policy<never, never>): string {
  const who: string[] = [];
  if (policy.authenticated) who.push('any signed-in user');
  if (policy.self) who.push('the user themself');
  if (policy.role) who.push(`role \`${policy.role}\``);
  if (policy.permission) who.push(`permission \`${policy.permission}\``);
  const how: string[] = [];
  if (policy.secondFactor === true) how.push('with a second factor');
  if (policy.secondFactor === 'once-enrolled') how.push('with a second factor (once they have one)');
  if (policy.recentAuth) how.push(`within the last ${REAUTH_WINDOW}`);
  const stepUp = how.length > 0 ? `, signed in ${how.join(' ')}` : '';
  return `Access: ${who.join(', or ')}${stepUp}.`;
}

/** Field options enforcing and documenting a policy: spread into a Pothos field definition. */
export function guarded<Parent, Args>(
  policy: Policy<Parent, Args>,
  description: string,
): {
  description: string;
  authScopes: (parent: unknown, args: unknown, context: Context) => Promise<ScopeMap | false>;
} {
  return {
    description: `${description}\n\n${describePolicy(policy)}`,
    // Pothos calls this with the field's own parent and args, which the policy was typed for.
    authScopes: async (parent, args, context) => {
      const scopes: Partial<AuthScopes> = {};
      if (policy.authenticated) scopes.authenticated = true;
      if (policy.self) {
        const userId = await policy.self(parent as Parent, args as Args, context);
        if (userId !== null) scopes.self = userId;
      }
      if (policy.role) scopes.role = policy.role;
      if (policy.permission) scopes.permission = policy.permission;
      if (Object.keys(scopes).length === 0) return false;
      if (!policy.recentAuth && !policy.secondFactor) return { $any: scopes };
      return {
        $all: {
          $any: scopes,
          ...(policy.recentAuth ? { recentAuth: true as const } : {}),
          ...(policy.secondFactor === true ? { secondFactor: true as const } : {}),
          ...(policy.secondFactor === 'once-enrolled' ? { secondFactorOnceEnrolled: true as const } : {}),
        },
      };
    },
  };
}
