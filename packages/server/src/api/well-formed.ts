/**
 * Well-formed text: no lone UTF-16 surrogate. JSON's `\ud800` escapes and lenient UTF-8 decoders produce lone
 * surrogates; such a string cannot be encoded as UTF-8 (stores and wire formats would silently turn it into
 * U+FFFD, a different string), and `encodeURI` of it throws.
 *
 * @module
 */

/** String methods of ES2024, present in Node 20 (the project's `lib` is ES2023). */
interface Es2024String {
  isWellFormed(): boolean;
  toWellFormed(): string;
}

/** True when `text` has no lone surrogate. */
export function isWellFormed(text: string): boolean {
  return (text as unknown as Es2024String).isWellFormed();
}

/** `text` with every lone surrogate replaced by U+FFFD (the same string when there is none). */
export function wellFormed(text: string): string {
  return isWellFormed(text) ? text : (text as unknown as Es2024String).toWellFormed();
}
