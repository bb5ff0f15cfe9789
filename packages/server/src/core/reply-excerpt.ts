/** The most of a reply body or error text kept as a last error (bytes of UTF-8). */
export const REPLY_EXCERPT_BYTES = 1024;

/**
 * The first part of a reply body or error text that is stored as a last error: at most 1 KiB of UTF-8,
 * cut on a character boundary, with `…` when cut.
 */
export function replyExcerpt(text: string): string {
  // a string of at most 341 UTF-16 units is at most 1023 bytes (3 bytes per unit at most)
  if (text.length <= 341) return text;
  const buf = Buffer.from(text, 'utf8');
  if (buf.byteLength <= REPLY_EXCERPT_BYTES) return text;
  let end = REPLY_EXCERPT_BYTES - 3; // room for the ellipsis
  while (end > 0 && (buf[end]! & 0xc0) === 0x80) end--; // not in the middle of a character
  return `${buf.toString('utf8', 0, end)}…`;
}
