import { AuthError, ERRORS, errorCodesOf, type ResultErrorCode, type ResultErrorEntry } from '../../errors.js';
import { builder } from '../builder.js';

export const ErrorCodeEnum = builder.enumType('ErrorCode', {
  description:
    'Codes of the failures answered as members of a result union (types implementing `Error`). Fields without ' +
    'a result union answer the same failures as GraphQL errors with the code in `extensions.code`; the README ' +
    '("Errors") lists the codes met only there.',
  values: Object.fromEntries(errorCodesOf('result').map((code) => [code, { description: ERRORS[code].description }])),
});

export const ErrorInterface = builder.interfaceRef<AuthError>('Error').implement({
  description: 'An expected failure of a mutation. Ask for `... on Error { code message }`.',
  fields: (t) => ({
    code: t.field({ type: ErrorCodeEnum, resolve: (error) => error.code }),
    message: t.exposeString('message', { description: 'Safe to show to the user.' }),
  }),
});

/** The union-member types of the catalogue, each with the codes it carries, in catalogue order. */
function errorTypes(): Map<string, ResultErrorCode[]> {
  const types = new Map<string, ResultErrorCode[]>();
  for (const code of errorCodesOf('result')) {
    const codes = types.get(ERRORS[code].type) ?? [];
    types.set(ERRORS[code].type, [...codes, code]);
  }
  return types;
}

/** A type's description: its code's, or each code's after the code when it carries several. */
const describeType = (codes: ResultErrorCode[]) =>
  codes.length === 1
    ? ERRORS[codes[0]!].description
    : ['`code` is one of:', ...codes.map((code) => `- \`${code}\`: ${ERRORS[code].description}`)].join('\n');

for (const [name, codes] of errorTypes()) {
  const entry: ResultErrorEntry = ERRORS[codes[0]!];
  // Codes that share a type share its class and fields: the type is registered once, from the first.
  for (const code of codes) {
    const other: ResultErrorEntry = ERRORS[code];
    if (other.class !== entry.class || other.fields !== entry.fields) {
      throw new Error(`the catalogue gives ${name} two classes or two sets of fields (${codes.join(', ')})`);
    }
  }
  builder.objectType(entry.class, {
    name,
    description: describeType(codes),
    interfaces: [ErrorInterface],
    isTypeOf: (value) => value instanceof entry.class,
    fields: (t) =>
      Object.fromEntries(
        Object.entries(entry.fields ?? {}).map(([field, { type, description }]) => [
          field,
          // The catalogue names a property of the class (test/unit/errors.test.ts checks it).
          type === 'Int'
            ? t.int({ description, resolve: (error) => Reflect.get(error, field) as number })
            : t.string({ description, resolve: (error) => Reflect.get(error, field) as string }),
        ]),
      ),
  });
}
