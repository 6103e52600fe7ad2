import { useState } from 'react';
import { ApiError } from '../api/client.js';
import { useDeleteTag, useTag } from '../api/queries.js';
import type { TagDetail as Detail, IncrementalStats, Layer, SnapshotConfig } from '../api/types.js';
import { CopyButton } from '../components/CopyButton.js';
import { DataTable } from '../components/DataTable.js';
import { KindBadge } from '../components/KindBadge.js';
import { PullCommands } from '../components/PullCommands.js';
import { Empty, ErrorState, Loading } from '../components/states.js';
import { formatBytes, formatTime, platformLabel, shortDigest, timeAgo } from '../format.js';
import { href, Link, navigate } from '../router.js';

export function TagPage({
  name,
  tag,
  canDelete,
}: {
  name: string;
  tag: string;
  canDelete: boolean;
}) {
  const detail = useTag(name, tag);
  const crumbs = (
    <nav className="crumbs" aria-label="Breadcrumb">
      <Link href="/repositories">Repositories</Link> /{' '}
      <Link href={href.repository(name)}>{name}</Link> /
    </nav>
  );
  if (detail.isPending)
    return (
      <main id="main">
        {crumbs}
        <Loading what="the tag" />
      </main>
    );
  if (detail.error) {
    const gone = detail.error instanceof ApiError && detail.error.status === 404;
    return (
      <main id="main">
        {crumbs}
        <h1 className="name">{`${name}:${tag}`}</h1>
        {gone ? (
          <Empty>This tag does not exist (or was deleted).</Empty>
        ) : (
          <ErrorState error={detail.error} what="the tag" />
        )}
      </main>
    );
  }
  const d = detail.data;
  return (
    <main id="main">
      {crumbs}
      <h1 className="name">{`${name}:${tag}`}</h1>
      <p className="facts">
        <KindBadge kind={d.kind} /> {formatBytes(d.totalSize)} · {d.layerCount}{' '}
        {`${d.kind === 'image-index' ? 'platform' : 'layer'}${d.layerCount === 1 ? '' : 's'}`} ·
        pushed{' '}
        <time dateTime={d.pushedAt} title={formatTime(d.pushedAt)}>
          {timeAgo(d.pushedAt)}
        </time>
      </p>
      <p className="digest-line">
        <code>{d.digest}</code> <CopyButton text={d.digest} label="Copy digest" />
      </p>
      <section className="card">
        <h2>Pull</h2>
        <PullCommands name={name} tag={tag} kind={d.kind} />
      </section>
      {d.snapshotConfig ? (
        <SnapshotFacts
          config={d.snapshotConfig}
          layers={d.kind === 'chunked-snapshot' ? [] : d.layers}
        />
      ) : null}
      {d.incremental ? <IncrementalFacts stats={d.incremental} name={name} /> : null}
      {d.kind === 'cloud-image' ? <CloudParts layers={d.layers} /> : null}
      {d.children ? <Platforms detail={d} /> : null}
      {d.layers.length > 0 ? <Layers layers={d.layers} /> : null}
      <Referrers detail={d} />
      <section className="card">
        <h2>
          Manifest <CopyButton text={JSON.stringify(d.manifest, null, 2)} label="Copy manifest" />
        </h2>
        <p className="hint">
          {d.mediaType} · {formatBytes(d.size)}
        </p>
        <pre className="manifest">{JSON.stringify(d.manifest, null, 2)}</pre>
      </section>
      {canDelete ? <DeleteTag name={name} tag={tag} /> : null}
    </main>
  );
}

function Fact({ label, value }: { label: string; value: string | undefined }) {
  if (value === undefined || value === '') return null;
  return (
    <div>
      <dt>{label}</dt>
      <dd>{value}</dd>
    </div>
  );
}

/** What an incremental version stores, and how much of it the version before already had. */
function IncrementalFacts({ stats: s, name }: { stats: IncrementalStats; name: string }) {
  const percent = (n: number) =>
    s.storedBytes > 0 ? ` (${Math.round((100 * n) / s.storedBytes)}%)` : '';
  return (
    <section className="card">
      <h2>Incremental storage</h2>
      <dl className="facts-grid">
        <Fact label="Logical size" value={formatBytes(s.logicalBytes)} />
        <Fact label="Stored (packs and indexes)" value={formatBytes(s.storedBytes)} />
        <Fact
          label="Shared with the previous version"
          value={`${formatBytes(s.sharedBytes)}${percent(s.sharedBytes)}`}
        />
        <Fact
          label="New in this version"
          value={`${formatBytes(s.newBytes)}${percent(s.newBytes)}`}
        />
      </dl>
      {s.previous ? (
        <p className="hint">
          Compared with <Link href={href.tag(name, s.previous.tag)}>{s.previous.tag}</Link>, the
          version pushed before it. Files are stored as chunks in shared packs, so a file has no
          stored size of its own.
        </p>
      ) : (
        <p className="hint">The first incremental version of this repository: every pack is new.</p>
      )}
    </section>
  );
}

function SnapshotFacts({ config: c, layers }: { config: SnapshotConfig; layers: Layer[] }) {
  const stored = new Map(layers.map((l) => [l.title, l.size]));
  const files = Object.entries(c.files ?? {});
  return (
    <section className="card">
      <h2>Virtual machine</h2>
      <dl className="facts-grid">
        <Fact label="Hypervisor" value={c.hypervisor} />
        <Fact label="CPUs" value={c.cpu?.toString()} />
        <Fact label="Memory" value={c.memory === undefined ? undefined : formatBytes(c.memory)} />
        <Fact label="Disk" value={c.storage === undefined ? undefined : formatBytes(c.storage)} />
        <Fact label="NICs" value={c.nics?.toString()} />
        <Fact label="Network" value={c.network} />
        <Fact label="Base image" value={c.image} />
        <Fact label="Image type" value={c.imageType} />
        <Fact
          label="Windows"
          value={c.windows === undefined ? undefined : c.windows ? 'yes' : 'no'}
        />
        <Fact label="Snapshot id" value={c.snapshotId} />
        <Fact label="Description" value={c.description} />
        <Fact label="Created" value={c.createdAt ? formatTime(c.createdAt) : undefined} />
      </dl>
      {files.length > 0 ? (
        <DataTable
          caption="Files"
          columns={[
            'File',
            { label: 'Logical size', num: true },
            { label: 'Stored', num: true },
            'Mode',
          ]}
        >
          {files.map(([file, f]) => {
            const st = stored.get(file);
            const logical = f.sparseSize ?? f.size ?? st;
            return (
              <tr key={file}>
                <td className="name">
                  {file}
                  {f.sparseSize !== undefined ? <span className="badge">sparse</span> : null}
                </td>
                <td className="num">{formatBytes(logical)}</td>
                <td className="num">{formatBytes(st)}</td>
                <td>{typeof f.mode === 'number' ? f.mode.toString(8).padStart(4, '0') : '—'}</td>
              </tr>
            );
          })}
        </DataTable>
      ) : null}
    </section>
  );
}

function CloudParts({ layers }: { layers: Layer[] }) {
  const parts = layers
    .filter((l) => l.mediaType.includes('disk') || /\.part$/.test(l.title ?? ''))
    .sort((a, b) => (a.title ?? '').localeCompare(b.title ?? ''));
  if (parts.length === 0) return null;
  const total = parts.reduce((n, p) => n + p.size, 0);
  return (
    <section className="card">
      <h2>Disk parts</h2>
      <p className="hint">
        {parts.length} part{parts.length === 1 ? '' : 's'}, {formatBytes(total)} in all; downloads
        join them in this order.
      </p>
      <ol className="parts">
        {parts.map((p) => (
          <li key={p.digest + (p.title ?? '')}>
            <span className="name">{p.title ?? shortDigest(p.digest)}</span>{' '}
            <span>{formatBytes(p.size)}</span>
          </li>
        ))}
      </ol>
    </section>
  );
}

function Platforms({ detail }: { detail: Detail }) {
  const sizes = new Map((detail.platformSizes ?? []).map((p) => [p.digest, p]));
  return (
    <section className="card">
      <h2>Platforms</h2>
      <DataTable
        columns={[
          'Platform',
          { label: 'Size', num: true },
          { label: 'Layers', num: true },
          'Digest',
        ]}
      >
        {(detail.children ?? []).map((c) => {
          const s = sizes.get(c.digest);
          return (
            <tr key={c.digest}>
              <td>{platformLabel(c.platform)}</td>
              <td className="num">{formatBytes(s?.size)}</td>
              <td className="num">{s?.layerCount ?? '—'}</td>
              <td className="digest">
                <code title={c.digest}>{shortDigest(c.digest)}</code>{' '}
                <CopyButton text={c.digest} label="Copy digest" />
              </td>
            </tr>
          );
        })}
      </DataTable>
    </section>
  );
}

/** Layers with bars proportional to the largest one. */
export function Layers({ layers }: { layers: Layer[] }) {
  const max = Math.max(1, ...layers.map((l) => l.size));
  return (
    <section className="card">
      <h2>Layers</h2>
      <ol className="layers">
        {layers.map((l, i) => (
          // biome-ignore lint/suspicious/noArrayIndexKey: a manifest may list one blob twice; the order never changes
          <li key={`${l.digest}-${i}`}>
            <div className="layer-head">
              <span className="name">{l.title ?? shortDigest(l.digest)}</span>
              <span className="size">{formatBytes(l.size)}</span>
            </div>
            <div className="bar-track" aria-hidden="true">
              <div
                className="bar-fill"
                style={{ width: `${Math.max(0.5, (l.size / max) * 100)}%` }}
              />
            </div>
            <div className="hint">
              {l.mediaType} · <code title={l.digest}>{shortDigest(l.digest)}</code>
            </div>
          </li>
        ))}
      </ol>
    </section>
  );
}

function Referrers({ detail }: { detail: Detail }) {
  return (
    <section className="card">
      <h2>Referrers</h2>
      {detail.referrers.length === 0 ? (
        <Empty>No signatures, SBOMs or other referrers.</Empty>
      ) : (
        <ul className="referrers">
          {detail.referrers.map((r) => (
            <li key={r.digest}>
              <span className="badge">{r.artifactType ?? r.mediaType}</span>{' '}
              <code title={r.digest}>{shortDigest(r.digest)}</code> {formatBytes(r.size)}
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

function DeleteTag({ name, tag }: { name: string; tag: string }) {
  const [confirming, setConfirming] = useState(false);
  const del = useDeleteTag();
  const confirm = () =>
    del.mutate(
      { name, tag },
      {
        onSuccess: () => navigate(href.repository(name)),
      },
    );
  return (
    <section className="card danger">
      <h2>Delete</h2>
      {confirming ? (
        <div role="alertdialog" aria-labelledby="delete-question" className="confirm">
          <p id="delete-question">
            Delete tag <strong className="name">{`${name}:${tag}`}</strong>? Clients can no longer
            pull it; blobs are freed by garbage collection.
          </p>
          <button type="button" className="danger" onClick={confirm} disabled={del.isPending}>
            {`Delete ${tag}`}
          </button>{' '}
          <button type="button" onClick={() => setConfirming(false)}>
            Cancel
          </button>
          {del.error ? (
            <p className="error" role="alert">
              {del.error.message}
            </p>
          ) : null}
        </div>
      ) : (
        <button type="button" className="danger" onClick={() => setConfirming(true)}>
          Delete this tag…
        </button>
      )}
    </section>
  );
}
