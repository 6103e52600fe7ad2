import { useTag } from '../api/queries.js';
import type { Tag } from '../api/types.js';
import { formatBytes, shortDigest, signedBytes } from '../format.js';
import { type Basis, type Change, diffVersions, type VersionDiff } from '../version-diff.js';
import { DataTable } from './DataTable.js';
import { ErrorState, Loading } from './states.js';

const NOUN: Record<Basis, [string, string]> = {
  file: ['file', 'files'],
  layer: ['layer', 'layers'],
  platform: ['platform', 'platforms'],
};

const count = (n: number, basis: Basis) => `${n} ${NOUN[basis][n === 1 ? 0 : 1]}`;

/** Two versions to compare, chosen from `versions`, and what changed between them. */
export function VersionCompare({
  name,
  versions,
  from,
  to,
  onChange,
}: {
  name: string;
  versions: Tag[];
  from: string;
  to: string;
  onChange: (from: string, to: string) => void;
}) {
  const before = useTag(name, from);
  const after = useTag(name, to);
  const options = versions.map((v) => (
    <option key={v.id} value={v.name}>
      {v.name}
    </option>
  ));
  return (
    <div className="compare">
      <h3>What changed</h3>
      <div className="toolbar">
        <label>
          From
          <select value={from} onChange={(e) => onChange(e.target.value, to)}>
            {options}
          </select>
        </label>
        <label>
          To
          <select value={to} onChange={(e) => onChange(from, e.target.value)}>
            {options}
          </select>
        </label>
      </div>
      {before.error ? (
        <ErrorState error={before.error} what={from} />
      ) : after.error ? (
        <ErrorState error={after.error} what={to} />
      ) : !before.data || !after.data ? (
        <Loading what="both versions" />
      ) : (
        <DiffView diff={diffVersions(before.data, after.data)} from={from} to={to} />
      )}
    </div>
  );
}

function DiffView({ diff, from, to }: { diff: VersionDiff; from: string; to: string }) {
  if (diff.identical) {
    return (
      <p className="state" data-testid="diff-summary">
        {from} and {to} are the same content: nothing changed.
      </p>
    );
  }
  const { counts, basis } = diff;
  const parts = [
    counts.added ? `${count(counts.added, basis)} added` : '',
    counts.removed ? `${counts.removed} removed` : '',
    counts.resized ? `${counts.resized} resized` : '',
    counts.changed ? `${counts.changed} changed (same size)` : '',
  ].filter(Boolean);
  const shown = diff.changes.filter((c) => c.kind !== 'unchanged');
  return (
    <>
      <p data-testid="diff-summary">
        {parts.length > 0 ? parts.join(', ') : `No ${NOUN[basis][1]} changed`}
        {counts.unchanged ? `; ${count(counts.unchanged, basis)} unchanged` : ''}. Size{' '}
        {formatBytes(diff.sizeBefore)} → {formatBytes(diff.sizeAfter)} (
        {signedBytes(diff.sizeAfter - diff.sizeBefore)}).
      </p>
      {diff.kindChanged ? (
        <p className="hint">
          {from} and {to} are different kinds of artifact: their {NOUN[basis][1]} hardly compare.
        </p>
      ) : null}
      {diff.settings.length > 0 ? (
        <ul className="settings-changed" aria-label="VM settings changed">
          {diff.settings.map((s) => (
            <li key={s.setting}>
              {s.setting}: {s.before} → {s.after}
            </li>
          ))}
        </ul>
      ) : null}
      {shown.length > 0 ? (
        <DataTable
          className="reflow diff"
          columns={[
            'Change',
            NOUN[basis][0].replace(/^./, (c) => c.toUpperCase()),
            'Size',
            'Digest',
          ]}
        >
          {shown.map((c) => (
            <ChangeRow key={`${c.kind}:${c.key}`} change={c} />
          ))}
        </DataTable>
      ) : null}
    </>
  );
}

function ChangeRow({ change: c }: { change: Change }) {
  const size =
    c.before && c.after
      ? c.before.size === c.after.size
        ? formatBytes(c.after.size)
        : `${formatBytes(c.before.size)} → ${formatBytes(c.after.size)}`
      : formatBytes((c.after ?? c.before)?.size);
  return (
    <tr className={`change-${c.kind}`}>
      <td data-label="Change">
        <span className={`badge change ${c.kind}`}>{c.kind}</span>
      </td>
      <td data-label="Name" className="title name">
        {c.key}
      </td>
      <td data-label="Size">{size}</td>
      <td data-label="Digest" className="digests">
        {c.before ? <code title={c.before.digest}>{shortDigest(c.before.digest)}</code> : null}
        {c.after ? (
          <span>
            {c.before ? ' → ' : null}
            <code title={c.after.digest}>{shortDigest(c.after.digest)}</code>
          </span>
        ) : null}
      </td>
    </tr>
  );
}
