/**
 * A binary min-heap of (time, item) pairs on typed arrays: no object per
 * entry, so pushing and popping events allocates nothing (the arrays double
 * when full, which a run does a handful of times). Equal times pop in item
 * order, so a run is deterministic.
 */
export class EventHeap {
  #times: Float64Array;
  #items: Int32Array;
  #size = 0;

  constructor(capacity = 1024) {
    this.#times = new Float64Array(Math.max(2, capacity));
    this.#items = new Int32Array(Math.max(2, capacity));
  }

  get size(): number {
    return this.#size;
  }

  /** The earliest time, or +Infinity when empty. */
  peekTime(): number {
    return this.#size > 0 ? (this.#times[0] as number) : Number.POSITIVE_INFINITY;
  }

  peekItem(): number {
    return this.#items[0] as number;
  }

  push(time: number, item: number): void {
    if (this.#size === this.#times.length) this.#grow();
    const times = this.#times;
    const items = this.#items;
    let i = this.#size++;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const pt = times[parent] as number;
      if (pt < time || (pt === time && (items[parent] as number) <= item)) break;
      times[i] = pt;
      items[i] = items[parent] as number;
      i = parent;
    }
    times[i] = time;
    items[i] = item;
  }

  /** Removes the earliest entry; read it with peekTime/peekItem first. */
  pop(): void {
    const n = --this.#size;
    if (n <= 0) return;
    const times = this.#times;
    const items = this.#items;
    const time = times[n] as number;
    const item = items[n] as number;
    let i = 0;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= n) break;
      const right = child + 1;
      if (right < n) {
        const ct = times[child] as number;
        const rt = times[right] as number;
        if (rt < ct || (rt === ct && (items[right] as number) < (items[child] as number)))
          child = right;
      }
      const ct = times[child] as number;
      if (time < ct || (time === ct && item <= (items[child] as number))) break;
      times[i] = ct;
      items[i] = items[child] as number;
      i = child;
    }
    times[i] = time;
    items[i] = item;
  }

  #grow(): void {
    const times = new Float64Array(this.#times.length * 2);
    times.set(this.#times);
    const items = new Int32Array(this.#items.length * 2);
    items.set(this.#items);
    this.#times = times;
    this.#items = items;
  }
}
