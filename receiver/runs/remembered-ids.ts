/**
 * The dedupe keys of accepted deliveries, each until its expiry, and never more than a fixed
 * count. Past the count the key that expires soonest is forgotten first, whatever its age: the
 * keys closest to being forgotten anyway (a seed-scheme key lives minutes, a Standard Webhooks key
 * a day). Bounded by count, the keys a flood of valid deliveries leaves behind cannot grow memory,
 * the journal's snapshot or the time replay takes without limit.
 */

export interface DedupeEntry {
  runId: string;
  /** Epoch ms. */
  until: number;
}

interface Expiry {
  key: string;
  until: number;
}

export class RememberedIds {
  private readonly entries = new Map<string, DedupeEntry>();
  /** Min-heap by expiry. An entry replaced or forgotten leaves its node behind until it reaches the top. */
  private heap: Expiry[] = [];
  /** Keys forgotten before their expiry, since the last takeForgottenEarly(). */
  private forgottenEarly = 0;

  constructor(readonly limit: number) {}

  get(key: string, now: number): DedupeEntry | undefined {
    const entry = this.entries.get(key);
    return entry && entry.until > now ? entry : undefined;
  }

  /** Remembers a key that has not expired; past the limit, forgets the soonest to expire. */
  remember(key: string, entry: DedupeEntry, now: number): void {
    if (entry.until <= now) return;
    this.entries.set(key, entry);
    this.push({ key, until: entry.until });
    while (this.entries.size > this.limit) {
      const soonest = this.popLive();
      if (!soonest) break;
      this.entries.delete(soonest.key);
      if (soonest.until > now) this.forgottenEarly += 1;
    }
    // Stale nodes pile up only when keys are remembered again; rebuild before they outweigh the live ones.
    if (this.heap.length > 2 * this.entries.size + 1024) this.rebuild();
  }

  forgetExpired(now: number): void {
    for (let top = this.heap[0]; top && top.until <= now; top = this.heap[0]) {
      this.pop();
      if (this.entries.get(top.key)?.until === top.until) this.entries.delete(top.key);
    }
  }

  /** How many keys were forgotten before their expiry since the last call. */
  takeForgottenEarly(): number {
    const count = this.forgottenEarly;
    this.forgottenEarly = 0;
    return count;
  }

  [Symbol.iterator](): IterableIterator<[string, DedupeEntry]> {
    return this.entries[Symbol.iterator]();
  }

  private popLive(): Expiry | undefined {
    for (let top = this.pop(); top; top = this.pop()) {
      if (this.entries.get(top.key)?.until === top.until) return top;
    }
    return undefined;
  }

  private rebuild(): void {
    this.heap = [];
    for (const [key, entry] of this.entries) this.push({ key, until: entry.until });
  }

  private push(node: Expiry): void {
    const heap = this.heap;
    heap.push(node);
    let index = heap.length - 1;
    while (index > 0) {
      const parent = (index - 1) >> 1;
      if ((heap[parent] as Expiry).until <= node.until) break;
      heap[index] = heap[parent] as Expiry;
      index = parent;
    }
    heap[index] = node;
  }

  private pop(): Expiry | undefined {
    const heap = this.heap;
    const top = heap[0];
    const last = heap.pop();
    if (top === undefined || last === undefined || heap.length === 0) return top;
    let index = 0;
    for (;;) {
      const left = 2 * index + 1;
      if (left >= heap.length) break;
      const right = left + 1;
      const child = right < heap.length && (heap[right] as Expiry).until < (heap[left] as Expiry).until ? right : left;
      if ((heap[child] as Expiry).until >= last.until) break;
      heap[index] = heap[child] as Expiry;
      index = child;
    }
    heap[index] = last;
    return top;
  }
}
