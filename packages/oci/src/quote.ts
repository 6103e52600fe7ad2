/**
 * Quotes client input for an error message: JSON-escaped, so control characters and lookalikes
 * stay visible, and cut at 80 characters, so a hostile 10k-character name stays a short line.
 */
export function quote(value: string): string {
  return JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value);
}
