/**
 * The operator changes the key TOTP secrets are sealed with (KEY_ENCRYPTION_KEY added or
 * changed; under HS* without it, JWT_SECRET changed): a second app on the same database with
 * another KEY_ENCRYPTION_KEY is that server after the change. App codes can no longer be checked;
 * the answer is a typed refusal that costs the user nothing, the operator gets one log line
 * without the secret, and recovery codes still work.
 */
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { signInChallenges } from '../../src/db/schema.js';
import { parseSplitToken } from '../../src/crypto/split-token.js';
import { GOOD_PASSWORD, registerUser } from '../support/operations.js';
import { serveTestApp, type ServedApp } from '../support/served.js';
import { COMPLETE_SIGN_IN, enableTotp, eventsOf, passwordStep, REAUTHENTICATE, totpCode } from './support.js';

let before: ServedApp;
let after: ServedApp;
beforeAll(async () => {
  before = await serveTestApp();
  after = await serveTestApp({ KEY_ENCRYPTION_KEY: Buffer.alloc(32, 9).toString('base64') }, before.t.database);
});
afterAll(async () => {
  await after?.close();
  await before?.close();
});

/** A user who turned TOTP on before the key changed; their secret and recovery codes. */
async function userFromBeforeTheChange() {
  const user = await registerUser(before);
  const { secret, codes } = await enableTotp(before, user.accessToken);
  after.t.clock.advance(90); // past the confirmation code's step, on the server after the change
  return { ...user, secret, codes };
}

const guessesOf = async (challenge: string) => {
  const [row] = await after.t.database.db.select().from(signInChallenges).where(eq(signInChallenges.id, parseSplitToken(challenge)!.id));
  return row!.guesses;
};

describe('after the key-encryption key changed', () => {
  it('answers a sign-in app code INVALID_SECOND_FACTOR, not counted against the challenge, and a recovery code still finishes it', async () => {
    const user = await userFromBeforeTheChange();
    const logged = vi.spyOn(after.t.services.logger, 'error');
    const challenge = await passwordStep(after, user.email, GOOD_PASSWORD);

    const code = totpCode(user.secret, after.t.clock.now());
    for (let i = 0; i < 6; i += 1) {
      const res = await after.gql(COMPLETE_SIGN_IN, { challenge, code });
      expect(res.errors, JSON.stringify(res)).toBeUndefined();
      expect(res.data?.completeSignIn).toMatchObject({ __typename: 'InvalidSecondFactorError', code: 'INVALID_SECOND_FACTOR' });
    }
    expect(await guessesOf(challenge)).toBe(0);
    expect(logged).toHaveBeenCalled();
    const lines = JSON.stringify(logged.mock.calls);
    expect(lines).toContain(user.userId);
    expect(lines).not.toContain(user.secret);
    expect(lines).not.toContain(user.email);
    logged.mockRestore();
    const failures = await eventsOf(after, user.userId, ['second_factor_failure']);
    expect(failures.at(-1)?.detail).toMatchObject({ use: 'sign_in', method: 'TOTP', reason: 'unverifiable' });

    const done = await after.gql(COMPLETE_SIGN_IN, { challenge, code: user.codes[0] });
    expect(done.data?.completeSignIn.__typename, JSON.stringify(done)).toBe('AuthPayload');
  });

  it('answers a re-authentication with an app code INVALID_SECOND_FACTOR, and accepts a recovery code', async () => {
    const user = await userFromBeforeTheChange();
    const code = totpCode(user.secret, after.t.clock.now());
    const res = await after.gql(REAUTHENTICATE, { code }, { token: user.accessToken });
    expect(res.errors, JSON.stringify(res)).toBeUndefined();
    expect(res.data?.reauthenticate).toMatchObject({ __typename: 'InvalidSecondFactorError', code: 'INVALID_SECOND_FACTOR' });

    const recovered = await after.gql(REAUTHENTICATE, { code: user.codes[1] }, { token: user.accessToken });
    expect(recovered.data?.reauthenticate.__typename, JSON.stringify(recovered)).toBe('Reauthentication');
  });
});
