/** A progress line on stderr (rate and ETA), drawn only when stderr is a terminal. */
export class Progress {
  readonly #label: string;
  readonly #total: number | undefined;
  readonly #started = Date.now();
  readonly #enabled: boolean;
  #last = 0;

  constructor(label: string, total?: number, stream: NodeJS.WriteStream = process.stderr) {
    this.#label = label;
    this.#total = total;
    this.#enabled = stream.isTTY === true;
  }

  /** Reports `done` bytes; redraws at most ten times a second. */
  update(done: number): void {
    if (!this.#enabled) return;
    const now = Date.now();
    if (now - this.#last < 100 && done !== this.#total) return;
    this.#last = now;
    const seconds = Math.max((now - this.#started) / 1000, 0.001);
    const rate = done / seconds;
    let line = `${this.#label} ${formatBytes(done)}`;
    if (this.#total) {
      const pct = Math.floor((done / this.#total) * 100);
      const eta = rate > 0 ? Math.ceil((this.#total - done) / rate) : 0;
      line += ` / ${formatBytes(this.#total)} ${pct}% ETA ${eta}s`;
    }
    line += ` ${formatBytes(rate)}/s`;
    process.stderr.write(`\r\u001b[2K${line}`);
  }

  /** Ends the line. */
  done(): void {
    if (this.#enabled) process.stderr.write('\n');
  }
}

/** `1.5 GiB`-style sizes. */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}
