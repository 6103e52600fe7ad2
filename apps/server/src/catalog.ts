import type { CatalogEntry, Registry } from '@epoch/registry';
import type { Store } from '@epoch/store';
import type { Logger } from './log.js';

/**
 * Keeps upstream's `catalog.json` in the bucket current for upstream tools, rewritten from the
 * index a short while after writes (debounced: a burst of pushes costs one rewrite) and after
 * each reconcile. Epoch never reads it back.
 */
export class CatalogWriter {
  #timer: NodeJS.Timeout | undefined;
  #writing: Promise<void> | undefined;
  #again = false;

  constructor(
    private readonly registry: Registry,
    private readonly index: Store,
    private readonly log: Logger,
    private readonly delayMs = 2000,
  ) {}

  /** Asks for a rewrite soon. */
  schedule(): void {
    if (this.#timer) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.write();
    }, this.delayMs);
    this.#timer.unref();
  }

  /** Rewrites now (one rewrite at a time; a request during one runs once more after it). */
  write(): Promise<void> {
    if (this.#writing) {
      this.#again = true;
      return this.#writing;
    }
    this.#writing = this.registry
      .writeCatalog(this.#entries())
      .catch((err: unknown) => this.log.warn({ err }, 'catalog.json rewrite failed'))
      .finally(() => {
        this.#writing = undefined;
        if (this.#again) {
          this.#again = false;
          void this.write();
        }
      });
    return this.#writing;
  }

  /** Runs a pending rewrite now and waits for it: for shutdown. */
  async flush(): Promise<void> {
    if (this.#timer) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
      await this.write();
    }
    await this.#writing;
  }

  async *#entries(): AsyncGenerator<CatalogEntry> {
    let cursor: string | undefined;
    do {
      const page = await this.index.reads.listRepositories({
        sort: 'name',
        limit: 1000,
        ...(cursor ? { cursor } : {}),
      });
      for (const repo of page.items) {
        const tags: string[] = [];
        let last: string | undefined;
        do {
          const names = await this.index.reads.listTagNames(repo.name, {
            limit: 10_000,
            ...(last ? { last } : {}),
          });
          tags.push(...names.items);
          last = names.next;
        } while (last);
        yield { repository: repo.name, tags, updatedAt: repo.updatedAt };
      }
      cursor = page.nextCursor;
    } while (cursor);
  }
}
