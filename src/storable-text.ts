// A NUL cannot be stored in PostgreSQL text at all (the query fails: 22021). An unpaired UTF-16
// surrogate is not Unicode: both drivers encode it as U+FFFD, so what would be stored (or
// hashed, for a password) is not what was sent, and distinct inputs would become one.
const UNSTORABLE = /\u0000|\p{Cs}/u;

/** Whether PostgreSQL stores this text exactly as sent. */
export const isStorableText = (text: string) => !UNSTORABLE.test(text);

export const UNSTORABLE_TEXT_MESSAGE = 'This text contains a character that cannot be stored (a NUL character or an unpaired surrogate).';
