import { expect, it } from 'vitest';
import { formatBytes, kindLabel, platformLabel, shortDigest, timeAgo } from '../src/format.js';

it('formats sizes in binary units', () => {
  expect(formatBytes(0)).toBe('0 B');
  expect(formatBytes(1023)).toBe('1023 B');
  expect(formatBytes(1536)).toBe('1.5 KiB');
  expect(formatBytes(4 * 1024 ** 3)).toBe('4.0 GiB');
  expect(formatBytes(20 * 1024 ** 3)).toBe('20 GiB');
  expect(formatBytes(undefined)).toBe('—');
});

it('formats relative times', () => {
  const now = Date.parse('2026-12-03T12:00:00Z');
  expect(timeAgo('2026-12-03T11:59:50Z', now)).toBe('just now');
  expect(timeAgo('2026-12-03T11:58:00Z', now)).toBe('2 minutes ago');
  expect(timeAgo('2026-12-03T09:00:00Z', now)).toBe('3 hours ago');
  expect(timeAgo('2026-12-02T12:00:00Z', now)).toBe('1 day ago');
  expect(timeAgo(undefined, now)).toBe('—');
});

it('shortens digests and names kinds and platforms', () => {
  expect(shortDigest(`sha256:${'ab'.repeat(32)}`)).toBe('sha256:abababababab');
  expect(kindLabel('cloud-image')).toBe('Cloud image');
  expect(platformLabel({ os: 'linux', architecture: 'arm64', variant: 'v8' })).toBe(
    'linux/arm64/v8',
  );
});
