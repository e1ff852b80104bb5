import { ZxcvbnFactory } from '@zxcvbn-ts/core';
import * as common from '@zxcvbn-ts/language-common';
import * as en from '@zxcvbn-ts/language-en';
import { InputError } from '../errors.js';

export const MIN_PASSWORD_LENGTH = 8;
export const MAX_PASSWORD_LENGTH = 256;
/** zxcvbn scores 0..4; below 2 means guessable in under ~10^6 tries (common passwords). */
const MIN_SCORE = 2;
/**
 * zxcvbn's matching grows steeply with length (a 256-character repetitive password costs
 * over a second of CPU), so the estimate reads the first 64 characters only. A prefix that
 * strong makes the whole password at least that strong.
 */
const ESTIMATE_PREFIX = 64;

let estimator: ZxcvbnFactory | undefined;
function getEstimator(): ZxcvbnFactory {
  estimator ??= new ZxcvbnFactory({
    dictionary: { ...common.dictionary, ...en.dictionary },
    graphs: common.adjacencyGraphs,
    translations: en.translations,
  });
  return estimator;
}

/**
 * Throws InputError(code WEAK_PASSWORD) unless the password has 8 to 256 characters (code
 * points) and is not a common or easily guessed one. `related` are strings the password should
 * not be built from (the email, the name).
 */
export async function assertPasswordPolicy(
  password: string,
  related: readonly string[] = [],
  field = 'password',
): Promise<void> {
  const length = [...password].length;
  if (length < MIN_PASSWORD_LENGTH || length > MAX_PASSWORD_LENGTH) {
    throw new InputError(
      field,
      `Passwords must have ${MIN_PASSWORD_LENGTH} to ${MAX_PASSWORD_LENGTH} characters.`,
      'WEAK_PASSWORD',
    );
  }
  const result = await getEstimator().check([...password].slice(0, ESTIMATE_PREFIX).join(''), [...related]);
  if (result.score < MIN_SCORE) {
    const hint = result.feedback.warning ?? 'This password is too common or easy to guess.';
    throw new InputError(field, `${hint} Choose a longer or less common password.`.trim(), 'WEAK_PASSWORD');
  }
}

/**
 * What a password must not be built from: zxcvbn matches each entry as a whole word, so the
 * email's local part and the name's words are listed on their own too.
 */
export function relatedInputs(email: string, name: string | null): string[] {
  const local = email.split('@')[0] ?? '';
  return [email, local, ...local.split(/[._+-]+/), ...(name ? [name, ...name.split(/\s+/)] : [])].filter(
    (part) => part.length >= 3,
  );
}
