import type { AuditEvent } from '../api/types.js';
import { describeEvent, type Part } from '../events.js';
import { formatTime, shortDigest, timeAgo } from '../format.js';
import { href, Link } from '../router.js';

/**
 * One line of the activity feed: when, and what happened as a sentence with links to the
 * repository and tag, digests in short form (in full on hover) and token names linking to the
 * tokens page for administrators.
 */
export function EventRow({
  event: e,
  admin,
  tokenNames,
}: {
  event: AuditEvent;
  admin: boolean;
  tokenNames?: ReadonlyMap<number, string> | undefined;
}) {
  const parts = describeEvent(e, tokenNames);
  return (
    <li className="event" data-action={e.action}>
      <time dateTime={e.at} title={formatTime(e.at)}>
        {timeAgo(e.at)}
      </time>
      <span className="sentence">
        {parts.map((p, i) => (
          // biome-ignore lint/suspicious/noArrayIndexKey: a sentence's parts never reorder
          <PartView key={i} part={p} admin={admin} />
        ))}
      </span>
    </li>
  );
}

function PartView({ part: p, admin }: { part: Part; admin: boolean }) {
  if ('text' in p) return <>{p.text}</>;
  if ('tag' in p) {
    return (
      <Link href={href.tag(p.repository, p.tag)} className="name">
        {`${p.repository}:${p.tag}`}
      </Link>
    );
  }
  if ('repository' in p) {
    return (
      <Link href={href.repository(p.repository)} className="name">
        {p.repository}
      </Link>
    );
  }
  if ('digest' in p) return <code title={p.digest}>{shortDigest(p.digest)}</code>;
  if ('token' in p) {
    return admin ? (
      <Link href="/tokens" className="name token">
        {p.token}
      </Link>
    ) : (
      <strong className="name">{p.token}</strong>
    );
  }
  return <code className="name">{p.code}</code>;
}
