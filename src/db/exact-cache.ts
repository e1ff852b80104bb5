import { LRUCache } from 'lru-cache';
import type { FeedState } from './change-feed.js';

/** Where an answer came from: memory, or the database (a miss, or memory not trusted). */
export type Source = 'memory' | 'database';

/**
 * A bounded cache of database reads that is never staler than the change feed: an entry lives
 * until a change names it, and nothing is kept while the feed is not live. A read that a change
 * (or a lost listener) overtook is answered but not kept: it may have been read before the change
 * committed.
 */
export class ExactCache<V extends object> {
  readonly #entries: LRUCache<string, V>;
  /** Keys with loads in flight, and how many changes named each since those began. */
  readonly #inFlight = new Map<string, { loads: number; version: number }>();

  constructor(
    private readonly feed: FeedState,
    max: number,
  ) {
    this.#entries = new LRUCache({ max });
  }

  get size(): number {
    return this.#entries.size;
  }

  /** The cached values of `keys` and those loaded (in one call) for the rest; a key `load` omits is absent. */
  async getMany(
    keys: readonly string[],
    load: (missing: string[]) => Promise<Map<string, V>>,
    onSource?: (source: Source) => void,
  ): Promise<Map<string, V>> {
    const found = new Map<string, V>();
    if (!this.feed.live()) {
      onSource?.('database');
      return load([...new Set(keys)]);
    }
    const missing: string[] = [];
    for (const key of new Set(keys)) {
      const value = this.#entries.get(key);
      if (value) found.set(key, value);
      else missing.push(key);
    }
    onSource?.(missing.length ? 'database' : 'memory');
    if (!missing.length) return found;
    const generation = this.feed.generation();
    const versions = missing.map((key) => this.#begin(key));
    try {
      const loaded = await load(missing);
      const keep = this.feed.live() && this.feed.generation() === generation;
      missing.forEach((key, i) => {
        const value = loaded.get(key);
        if (!value) return;
        found.set(key, value);
        if (keep && this.#inFlight.get(key)!.version === versions[i]) this.#entries.set(key, value);
      });
      return found;
    } finally {
      for (const key of missing) this.#end(key);
    }
  }

  /** One key's value (null when `load` finds none; nothing is cached for it then). */
  async get(key: string, load: () => Promise<V | null>, onSource?: (source: Source) => void): Promise<V | null> {
    const found = await this.getMany(
      [key],
      async () => {
        const value = await load();
        return new Map(value ? [[key, value]] : []);
      },
      onSource,
    );
    return found.get(key) ?? null;
  }

  /** A change named this key: forget it, and keep no read of it that began before. */
  invalidate(key: string): void {
    this.#entries.delete(key);
    const flight = this.#inFlight.get(key);
    if (flight) flight.version += 1;
  }

  clear(): void {
    this.#entries.clear();
    for (const flight of this.#inFlight.values()) flight.version += 1;
  }

  #begin(key: string): number {
    const flight = this.#inFlight.get(key) ?? { loads: 0, version: 0 };
    flight.loads += 1;
    this.#inFlight.set(key, flight);
    return flight.version;
  }

  #end(key: string): void {
    const flight = this.#inFlight.get(key)!;
    flight.loads -= 1;
    if (flight.loads === 0) this.#inFlight.delete(key);
  }
}
