import { kindLabel } from '../format.js';

export function KindBadge({ kind }: { kind: string | undefined }) {
  return <span className={`badge kind-${kind ?? 'unknown'}`}>{kindLabel(kind)}</span>;
}
