/**
 * A 4-ary min-heap of (time, item) pairs on typed arrays. Equal times pop in
 * item order, so the pop sequence is fully determined by the pairs and a run
 * is deterministic whatever the heap's shape. Four children per node halve
 * the depth of a binary heap, and a node's children share a cache line.
 *
 * The free functions work on the caller's own arrays: the engine's fast loop
 * calls heapPush for its rarer pushes and writes the hot push and pop out in
 * place (see engine.ts); `EventHeap` wraps them for everything else.
 */

/** Inserts (time, item) into a heap of `size` entries; the arrays must have room for one more. */
export function heapPush(
  times: Float64Array,
  items: Int32Array,
  size: number,
  time: number,
  item: number,
): void {
  let i = size;
  while (i > 0) {
    const parent = (i - 1) >> 2;
    const pt = times[parent] as number;
    if (pt < time || (pt === time && (items[parent] as number) <= item)) break;
    times[i] = pt;
    items[i] = items[parent] as number;
    i = parent;
  }
  times[i] = time;
  items[i] = item;
}

/** Removes the root of a heap of `size` entries (read it first); `size - 1` remain. */
export function heapPop(times: Float64Array, items: Int32Array, size: number): void {
  const n = size - 1;
  if (n <= 0) return;
  const time = times[n] as number;
  const item = items[n] as number;
  let i = 0;
  for (;;) {
    const first = 4 * i + 1;
    if (first >= n) break;
    // The least of up to four children.
    let child = first;
    let ct = times[first] as number;
    let ci = items[first] as number;
    const last = first + 3 < n ? first + 3 : n - 1;
    for (let c = first + 1; c <= last; c++) {
      const t = times[c] as number;
      if (t < ct || (t === ct && (items[c] as number) < ci)) {
        child = c;
        ct = t;
        ci = items[c] as number;
      }
    }
    if (time < ct || (time === ct && item <= ci)) break;
    times[i] = ct;
    items[i] = ci;
    i = child;
  }
  times[i] = time;
  items[i] = item;
}

/** The heap as an object, growing as needed (the arrays double when full). */
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
    heapPush(this.#times, this.#items, this.#size++, time, item);
  }

  /** Removes the earliest entry; read it with peekTime/peekItem first. */
  pop(): void {
    if (this.#size === 0) return;
    heapPop(this.#times, this.#items, this.#size--);
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
