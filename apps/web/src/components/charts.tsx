import { formatBytes } from '../format.js';

/** Horizontal bars, one per item, widths proportional to the largest value. SVG, no library. */
export function BarChart({
  items,
  title,
  format = formatBytes,
}: {
  items: { label: string; value: number }[];
  title: string;
  format?: (n: number) => string;
}) {
  const max = Math.max(1, ...items.map((i) => i.value));
  const row = 26;
  const height = items.length * row;
  return (
    <svg
      className="chart bars"
      viewBox={`0 0 400 ${height}`}
      role="img"
      aria-label={title}
      preserveAspectRatio="none"
    >
      <title>{title}</title>
      {items.map((item, i) => {
        const w = Math.max(1, (item.value / max) * 170);
        return (
          <g key={item.label} transform={`translate(0 ${i * row})`}>
            <text x="0" y="17" className="label">
              {item.label.length > 22 ? `${item.label.slice(0, 21)}…` : item.label}
            </text>
            <rect x="150" y="5" width={w} height="16" rx="3" className="bar" />
            <text x={156 + w} y="17" className="value">
              {format(item.value)}
            </text>
          </g>
        );
      })}
    </svg>
  );
}

/** Columns per day (oldest left), for pushes over time. */
export function ColumnChart({
  days,
  title,
}: {
  days: { day: string; count: number }[];
  title: string;
}) {
  const max = Math.max(1, ...days.map((d) => d.count));
  const width = 400;
  const height = 120;
  const col = width / Math.max(1, days.length);
  return (
    <svg
      className="chart columns"
      viewBox={`0 0 ${width} ${height + 16}`}
      role="img"
      aria-label={title}
    >
      <title>{title}</title>
      {days.map((d, i) => {
        const h = (d.count / max) * height;
        return (
          <rect
            key={d.day}
            x={i * col + 1}
            y={height - h}
            width={Math.max(1, col - 2)}
            height={h}
            className="bar"
          >
            <title>{`${d.day}: ${d.count} push${d.count === 1 ? '' : 'es'}`}</title>
          </rect>
        );
      })}
      <line x1="0" x2={width} y1={height} y2={height} className="axis" />
      <text x="0" y={height + 13} className="label">
        {days[0]?.day ?? ''}
      </text>
      <text x={width} y={height + 13} className="label end">
        {days[days.length - 1]?.day ?? ''}
      </text>
    </svg>
  );
}
