/**
 * A table of the distinct words of a text, looked up by where a word is in the text rather than
 * by a string of it: a byte-level BPE meets each of a corpus's few thousand distinct words millions
 * of times, and making a string of every occurrence to look it up in a Map (its allocation, its
 * hash, the garbage collection after) is most of the cost of counting words or of encoding them
 * once the merges of each word are cached. Only a word's first occurrence becomes a string.
 */
export class WordTable {
  /** the words, in order of first sight */
  readonly words: string[] = [];
  private hashes: number[] = [];
  /** entry index + 1 at each slot of the open-addressing table; 0 is a free slot */
  private slots = new Int32Array(1 << 12);

  get size(): number {
    return this.words.length;
  }

  /** The entry of text[start, end), added when the table has not seen that word. */
  find(text: string, start: number, end: number): number {
    // FNV-1a over the UTF-16 code units
    let h = 0x811c9dc5;
    for (let i = start; i < end; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
    const mask = this.slots.length - 1;
    for (let slot = h & mask; ; slot = (slot + 1) & mask) {
      const e = (this.slots[slot] as number) - 1;
      if (e < 0) {
        this.add(text.slice(start, end), h, slot);
        return this.words.length - 1;
      }
      if (this.hashes[e] === h && sameText(this.words[e] as string, text, start, end)) return e;
    }
  }

  clear(): void {
    this.words.length = 0;
    this.hashes.length = 0;
    this.slots.fill(0);
  }

  private add(word: string, hash: number, slot: number): void {
    this.words.push(word);
    this.hashes.push(hash);
    this.slots[slot] = this.words.length;
    // at most half full, so that a probe ends soon
    if (this.words.length * 2 > this.slots.length) this.rehash(this.slots.length * 2);
  }

  private rehash(capacity: number): void {
    this.slots = new Int32Array(capacity);
    const mask = capacity - 1;
    this.hashes.forEach((h, e) => {
      let slot = h & mask;
      while (this.slots[slot] !== 0) slot = (slot + 1) & mask;
      this.slots[slot] = e + 1;
    });
  }
}

function sameText(word: string, text: string, start: number, end: number): boolean {
  if (word.length !== end - start) return false;
  for (let i = 0; i < word.length; i++) if (word.charCodeAt(i) !== text.charCodeAt(start + i)) return false;
  return true;
}
