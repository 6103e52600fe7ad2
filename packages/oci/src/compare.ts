/**
 * Orders strings by their UTF-8 bytes: the order of S3 listings, of Go's string sort (upstream)
 * and of the spec's "lexical" tag lists. JS `<` compares UTF-16 units, which orders some non-BMP
 * characters differently, so it is used only when both strings are ASCII (the common case).
 */
export function compareBytes(a: string, b: string): number {
  if (isAscii(a) && isAscii(b)) return a < b ? -1 : a > b ? 1 : 0;
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

function isAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7f) return false;
  return true;
}
