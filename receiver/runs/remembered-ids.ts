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

export class RememberedIds {
  /** Each remembered key's slot. */
  private readonly slots = new Map<string, number>();
  /**
   * Per slot, in parallel arrays rather than an object per key (a flood leaves `limit` of them, each
   * held for as long as it is remembered): its key (undefined once the key was remembered again,
   * forgotten, or the slot is free), its run id and its expiry (a plain array of numbers, which V8
   * keeps unboxed).
   */
  private readonly keys: (string | undefined)[] = [];
  private readonly runIds: string[] = [];
  private readonly untils: number[] = [];
  /** Slots no longer in the heap, to be used again. */
  private free: number[] = [];
  /** Min-heap of slots by expiry. A slot whose key was remembered again or forgotten stays until it reaches the top. */
  private heap: number[] = [];
  /** Keys forgotten before their expiry, since the last takeForgottenEarly(). */
  private forgottenEarly = 0;

  constructor(readonly limit: number) {}

  get(key: string, now: number): DedupeEntry | undefined {
    const slot = this.slots.get(key);
    if (slot === undefined || this.untils[slot]! <= now) return undefined;
    return { runId: this.runIds[slot]!, until: this.untils[slot]! };
  }

  /** Remembers a key that has not expired; past the limit, forgets the soonest to expire. */
  remember(key: string, entry: DedupeEntry, now: number): void {
    if (entry.until <= now) return;
    const previous = this.slots.get(key);
    if (previous !== undefined) this.keys[previous] = undefined;
    const slot = this.take(key, entry);
    this.slots.set(key, slot);
    this.push(slot);
    while (this.slots.size > this.limit) {
      const soonest = this.popLive();
      if (soonest === undefined) break;
      this.forget(soonest);
      if (this.untils[soonest]! > now) this.forgottenEarly += 1;
    }
    // Stale slots pile up only when keys are remembered again; rebuild before they outweigh the live ones.
    if (this.heap.length > 2 * this.slots.size + 1024) this.rebuild();
  }

  forgetExpired(now: number): void {
    for (let top = this.heap[0]; top !== undefined && this.untils[top]! <= now; top = this.heap[0]) {
      this.pop();
      if (this.keys[top] !== undefined) this.forget(top);
      this.free.push(top);
    }
  }

  /** How many keys were forgotten before their expiry since the last call. */
  takeForgottenEarly(): number {
    const count = this.forgottenEarly;
    this.forgottenEarly = 0;
    return count;
  }

  *[Symbol.iterator](): IterableIterator<[string, DedupeEntry]> {
    for (const [key, slot] of this.slots) yield [key, { runId: this.runIds[slot]!, until: this.untils[slot]! }];
  }

  /** A free slot (or a new one) holding the entry. */
  private take(key: string, entry: DedupeEntry): number {
    const slot = this.free.pop() ?? this.keys.length;
    this.keys[slot] = key;
    this.runIds[slot] = entry.runId;
    this.untils[slot] = entry.until;
    return slot;
  }

  /** The slot's key is forgotten; the slot itself is free once it has left the heap. */
  private forget(slot: number): void {
    this.slots.delete(this.keys[slot]!);
    this.keys[slot] = undefined;
  }

  /** The soonest-expiring slot whose key is still remembered, out of the heap; stale slots popped on the way are freed. */
  private popLive(): number | undefined {
    for (let top = this.pop(); top !== undefined; top = this.pop()) {
      this.free.push(top);
      if (this.keys[top] !== undefined) return top;
    }
    return undefined;
  }

  private rebuild(): void {
    this.heap = [];
    this.free = [];
    for (let slot = 0; slot < this.keys.length; slot++) if (this.keys[slot] === undefined) this.free.push(slot);
    for (const slot of this.slots.values()) this.push(slot);
  }

  private push(slot: number): void {
    const { heap, untils } = this;
    const until = untils[slot]!;
    heap.push(slot);
    let index = heap.length - 1;
    while (index > 0) {
      const parent = (index - 1) >> 1;
      if (untils[heap[parent]!]! <= until) break;
      heap[index] = heap[parent]!;
      index = parent;
    }
    heap[index] = slot;
  }

  private pop(): number | undefined {
    const { heap, untils } = this;
    const top = heap[0];
    const last = heap.pop();
    if (top === undefined || last === undefined || heap.length === 0) return top;
    const lastUntil = untils[last]!;
    let index = 0;
    for (;;) {
      const left = 2 * index + 1;
      if (left >= heap.length) break;
      const right = left + 1;
      const child = right < heap.length && untils[heap[right]!]! < untils[heap[left]!]! ? right : left;
      if (untils[heap[child]!]! >= lastUntil) break;
      heap[index] = heap[child]!;
      index = child;
    }
    heap[index] = last;
    return top;
  }
}
