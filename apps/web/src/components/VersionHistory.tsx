import { useState } from 'react';
import { useTags } from '../api/queries.js';
import type { Tag } from '../api/types.js';
import { formatBytes, formatTime, shortDigest, signedBytes, timeAgo } from '../format.js';
import { href, Link, navigate, useLocation } from '../router.js';
import { Empty, ErrorState, Loading } from './states.js';
import { VersionCompare } from './VersionCompare.js';

/** Versions shown before "Show all". */
const SHOWN = 8;

/**
 * A repository's versions (its tags, newest push first) as a timeline with each one's size and
 * how it grew, and below it what changed between two of them: the newest and the one before
 * unless the visitor chose others (kept in the URL as `?from=&to=`, so a comparison can be
 * linked). Uses the first page of tags, which the tags table shares.
 */
export function VersionHistory({ name }: { name: string }) {
  const tags = useTags(name, undefined);
  const url = useLocation();
  const [all, setAll] = useState(false);
  if (tags.isPending) return <Loading what="versions" />;
  if (tags.error) return <ErrorState error={tags.error} what="versions" />;
  const versions = tags.data.items;
  if (versions.length === 0) return <Empty>No versions.</Empty>;
  const names = new Set(versions.map((v) => v.name));
  const pick = (key: string, fallback: string | undefined) => {
    const chosen = url.searchParams.get(key);
    return chosen && names.has(chosen) ? chosen : fallback;
  };
  const from = pick('from', versions[1]?.name);
  const to = pick('to', versions[0]?.name);
  const choose = (older: string, newer: string) => {
    const next = new URLSearchParams(url.search);
    next.set('from', older);
    next.set('to', newer);
    navigate(`${url.pathname}?${next}`, { replace: true });
  };
  const shown = all ? versions : versions.slice(0, SHOWN);
  return (
    <>
      <ol className="timeline" aria-label="Versions, newest first">
        {shown.map((v, i) => (
          <Version
            key={v.id}
            name={name}
            version={v}
            older={versions[i + 1]}
            compared={v.name === to && versions[i + 1]?.name === from}
            onCompare={choose}
          />
        ))}
      </ol>
      {versions.length > shown.length ? (
        <button type="button" onClick={() => setAll(true)}>
          {`Show all ${versions.length} versions`}
        </button>
      ) : null}
      {from && to ? (
        <VersionCompare name={name} versions={versions} from={from} to={to} onChange={choose} />
      ) : (
        <p className="hint">Only one version so far: push another to see what changes.</p>
      )}
    </>
  );
}

function Version({
  name,
  version: v,
  older,
  compared,
  onCompare,
}: {
  name: string;
  version: Tag;
  older: Tag | undefined;
  compared: boolean;
  onCompare: (older: string, newer: string) => void;
}) {
  const delta = older ? v.totalSize - older.totalSize : undefined;
  return (
    <li className={compared ? 'compared' : undefined}>
      <div className="version-head">
        <Link href={href.tag(name, v.name)} className="tag-name">
          {v.name}
        </Link>
        <time dateTime={v.pushedAt} title={formatTime(v.pushedAt)}>
          {timeAgo(v.pushedAt)}
        </time>
      </div>
      <div className="hint">
        {formatBytes(v.totalSize)}
        {delta === undefined ? ' · first version' : ` · ${signedBytes(delta)} since ${older?.name}`}
        {older && older.digest === v.digest ? ' (same content)' : ''} ·{' '}
        <code title={v.digest}>{shortDigest(v.digest)}</code>
        {older && !compared ? (
          <>
            {' '}
            ·{' '}
            <button
              type="button"
              className="link"
              onClick={() => onCompare(older.name, v.name)}
            >{`Compare with ${older.name}`}</button>
          </>
        ) : null}
      </div>
    </li>
  );
}
