/** Bytes in binary units, e.g. `1.5 GiB`. */
export function formatBytes(n: number | undefined): string {
  if (n === undefined || !Number.isFinite(n)) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${v} B` : `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[i]}`;
}

/** A change of size: `+2.9 KiB`, `−1.0 KiB` (a minus sign, not a hyphen), or `same size`. */
export function signedBytes(delta: number): string {
  if (delta === 0) return 'same size';
  return `${delta > 0 ? '+' : '−'}${formatBytes(Math.abs(delta))}`;
}

/** "3 minutes ago"-style relative time, against `now`. */
export function timeAgo(iso: string | undefined, now = Date.now()): string {
  if (!iso) return '—';
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return '—';
  const s = Math.round((now - t) / 1000);
  if (s < 0) return 'in the future';
  if (s < 45) return 'just now';
  const steps: [number, string][] = [
    [60, 'minute'],
    [3600, 'hour'],
    [86400, 'day'],
    [86400 * 30, 'month'],
    [86400 * 365, 'year'],
  ];
  let chosen: [number, string] = steps[0] as [number, string];
  for (const step of steps) if (s >= step[0]) chosen = step;
  const count = Math.max(1, Math.round(s / chosen[0]));
  return `${count} ${chosen[1]}${count === 1 ? '' : 's'} ago`;
}

/** A full timestamp for titles and tables. */
export function formatTime(iso: string | undefined): string {
  if (!iso) return '—';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? '—' : d.toLocaleString();
}

/** `sha256:0123456789ab` — enough of a digest to recognise it. */
export function shortDigest(digest: string): string {
  const [algo, hex] = digest.split(':');
  return hex ? `${algo}:${hex.slice(0, 12)}` : digest;
}

/** Human label of an artifact kind. */
export function kindLabel(kind: string | undefined): string {
  switch (kind) {
    case 'snapshot':
      return 'Snapshot';
    case 'chunked-snapshot':
      return 'Incremental snapshot';
    case 'cloud-image':
      return 'Cloud image';
    case 'container-image':
      return 'Container image';
    case 'image-index':
      return 'Image index';
    default:
      return kind ? kind : 'Unknown';
  }
}

/** `linux/amd64/v8`. */
export function platformLabel(
  p: { os?: string; architecture?: string; variant?: string } | undefined,
): string {
  if (!p) return 'unknown';
  return [p.os, p.architecture, p.variant].filter(Boolean).join('/') || 'unknown';
}
