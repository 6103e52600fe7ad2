import { useState } from 'react';

/**
 * Keyset paging state: the cursors of the pages seen so far. `cursor` is the current page's,
 * `reset()` goes back to the first page (e.g. when a filter changes), and `pager(next)` renders
 * the buttons for a page whose next cursor is `next`.
 */
export function useCursorPages() {
  const [cursors, setCursors] = useState<(string | undefined)[]>([undefined]);
  return {
    cursor: cursors[cursors.length - 1],
    reset: () => setCursors([undefined]),
    pager: (next: string | undefined) => (
      <Pager
        onFirst={cursors.length > 1 ? () => setCursors([undefined]) : undefined}
        onNext={next ? () => setCursors([...cursors, next]) : undefined}
      />
    ),
  };
}

/** "First page" and "Next page" buttons for keyset pages. */
export function Pager({
  onFirst,
  onNext,
}: {
  onFirst: (() => void) | undefined;
  onNext: (() => void) | undefined;
}) {
  if (!onFirst && !onNext) return null;
  return (
    <nav className="pager" aria-label="Pages">
      <button type="button" onClick={onFirst} disabled={!onFirst}>
        First page
      </button>
      <button type="button" onClick={onNext} disabled={!onNext}>
        Next page
      </button>
    </nav>
  );
}
