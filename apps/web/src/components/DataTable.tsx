import type { ReactNode } from 'react';

/**
 * A column heading: its text, or that with `num` (a right-aligned number column) or `hidden`
 * (read only by screen readers, e.g. a column of buttons).
 */
export type Column = string | { label: string; num?: boolean; hidden?: boolean };

/**
 * A table in its horizontal scroller: an optional caption, one row of column headings and
 * `children` as the body rows.
 */
export function DataTable({
  columns,
  className,
  caption,
  children,
}: {
  columns: readonly Column[];
  className?: string;
  caption?: string;
  children: ReactNode;
}) {
  return (
    <div className="table-wrap">
      <table className={className}>
        {caption ? <caption>{caption}</caption> : null}
        <thead>
          <tr>
            {columns.map((c) => {
              const col = typeof c === 'string' ? { label: c } : c;
              return (
                <th key={col.label} scope="col" className={col.num ? 'num' : undefined}>
                  {col.hidden ? <span className="visually-hidden">{col.label}</span> : col.label}
                </th>
              );
            })}
          </tr>
        </thead>
        <tbody>{children}</tbody>
      </table>
    </div>
  );
}
