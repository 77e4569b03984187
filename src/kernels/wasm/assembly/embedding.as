// Embedding lookup: ids (N, i32), table (V,C) -> out (N,C) = table[ids]; backward adds dout's rows
// into dtable's rows (ids may repeat).

export function embeddingForward(out: usize, ids: usize, table: usize, N: i32, C: i32): void {
  const rb = <usize>C << 2;
  for (let n = 0; n < N; n++) {
    const id = load<i32>(ids + (<usize>n << 2));
    memory.copy(out + <usize>n * rb, table + <usize>id * rb, rb);
  }
}

export function embeddingBackward(dtable: usize, dout: usize, ids: usize, N: i32, C: i32): void {
  const rb = <usize>C << 2;
  for (let n = 0; n < N; n++) {
    const id = load<i32>(ids + (<usize>n << 2));
    const d = dtable + <usize>id * rb;
    add(d, d, dout + <usize>n * rb, C);
  }
}

