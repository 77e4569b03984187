/**
 * A binary min-heap of entries (key, tie, value), ordered by key, then tie: the queues of BPE's
 * merges. Encoding takes the lowest rank, then the leftmost position (value: that position's
 * version); training takes the highest count (pushed as -count), then the smallest pair. Entries are
 * never updated in place: a caller pushes a fresh one and skips the stale ones as they come to the
 * top (lazy deletion), which is cheaper than finding an entry to change it.
 */
export class MinHeap {
  private readonly keys: number[] = [];
  private readonly ties: number[] = [];
  private readonly values: number[] = [];

  get size(): number {
    return this.keys.length;
  }

  /** the top entry's key (the heap must not be empty) */
  get key(): number {
    return this.keys[0] as number;
  }

  get tie(): number {
    return this.ties[0] as number;
  }

  get value(): number {
    return this.values[0] as number;
  }

  push(key: number, tie: number, value = 0): void {
    let i = this.keys.length;
    this.keys.push(key);
    this.ties.push(tie);
    this.values.push(value);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.less(i, parent)) break;
      this.swap(i, parent);
      i = parent;
    }
  }

  /** removes the top entry */
  pop(): void {
    const last = this.keys.length - 1;
    this.swap(0, last);
    this.keys.pop();
    this.ties.pop();
    this.values.pop();
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < last && this.less(l, m)) m = l;
      if (r < last && this.less(r, m)) m = r;
      if (m === i) return;
      this.swap(i, m);
      i = m;
    }
  }

  private less(i: number, j: number): boolean {
    const ki = this.keys[i] as number;
    const kj = this.keys[j] as number;
    return ki < kj || (ki === kj && (this.ties[i] as number) < (this.ties[j] as number));
  }

  private swap(i: number, j: number): void {
    swapIn(this.keys, i, j);
    swapIn(this.ties, i, j);
    swapIn(this.values, i, j);
  }
}

function swapIn(a: number[], i: number, j: number): void {
  const t = a[i] as number;
  a[i] = a[j] as number;
  a[j] = t;
}
