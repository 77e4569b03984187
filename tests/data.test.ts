import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { errorText } from "../src/cli/wording.js";
import { BatchSampler, evalWindows, SequenceSampler, splitTokens } from "../src/data/batches.js";
import {
  COUNTING_SEQ_LEN,
  countingSequence,
  countingStarts,
  countingTrainSequences,
  countingValSequences,
  patternAccuracy,
} from "../src/data/counting.js";
import { loadTextSource } from "../src/data/text.js";
import { Rng } from "../src/random.js";
import { throwsUser } from "./helpers.js";

/** throwsUser, with the message as the CLI shows it: the settings it names worded as flags (src/cli/wording.ts) */
function throwsInCli(fn: () => unknown, ...patterns: RegExp[]): void {
  throwsUser(fn);
  try {
    fn();
  } catch (err) {
    for (const p of patterns) assert.match(errorText(err as Error), p);
  }
}

const tmp = mkdtempSync(join(tmpdir(), "minigpt-data-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

function range(from: number, to: number): Int32Array {
  return Int32Array.from({ length: to - from }, (_, i) => from + i);
}

describe("loadTextSource", () => {
  test("a single file is returned as-is (BOM dropped)", () => {
    const p = join(tmp, "one.txt");
    writeFileSync(p, "\uFEFFhello, wörld\n");
    const src = loadTextSource(p);
    assert.deepEqual(src, { name: "one.txt", text: "hello, wörld\n", files: [p] });
  });

  test("a folder: every .txt recursively, sorted by relative path, joined with a blank line", () => {
    const dir = join(tmp, "corpus");
    mkdirSync(join(dir, "b"), { recursive: true });
    mkdirSync(join(dir, "a", "z"), { recursive: true });
    writeFileSync(join(dir, "b", "1.txt"), "B1");
    writeFileSync(join(dir, "a", "z", "2.txt"), "AZ2");
    writeFileSync(join(dir, "a", "10.txt"), "A10");
    writeFileSync(join(dir, "c.TXT"), "C");
    writeFileSync(join(dir, "notes.md"), "ignored");
    writeFileSync(join(dir, "data.bin"), new Uint8Array([0, 1, 2]));
    const src = loadTextSource(dir);
    assert.equal(src.name, "corpus");
    assert.equal(src.text, "A10\n\nAZ2\n\nB1\n\nC");
    assert.deepEqual(src.files, [join(dir, "a", "10.txt"), join(dir, "a", "z", "2.txt"), join(dir, "b", "1.txt"), join(dir, "c.TXT")]);
  });

  test("built-in moby-dick: 135 chapters in numeric order", () => {
    const src = loadTextSource("moby-dick");
    assert.equal(src.name, "moby-dick");
    assert.equal(src.files.length, 135);
    assert.match(src.files[0] as string, /chapter_1\.txt$/);
    assert.match(src.files[1] as string, /chapter_2\.txt$/);
    assert.match(src.files[9] as string, /chapter_10\.txt$/);
    assert.match(src.files[134] as string, /chapter_135\.txt$/);
    assert.ok(src.text.startsWith("CHAPTER 1. Loomings.\n\nCall me Ishmael."));
    assert.ok(src.text.indexOf("CHAPTER 2. ") < src.text.indexOf("CHAPTER 10. "));
    assert.ok(src.text.indexOf("CHAPTER 10. ") < src.text.indexOf("CHAPTER 100. "));
    assert.ok(src.text.length > 1_000_000);
    // Joined with a blank line: chapter 1's text, then "\n\n", then chapter 2's.
    const ch1 = readFileSync(src.files[0] as string, "utf8");
    assert.ok(src.text.startsWith(`${ch1}\n\nCHAPTER 2.`));
  });

  test("missing path names the built-ins", () => {
    throwsUser(() => loadTextSource(join(tmp, "nope.txt")), /nope\.txt/, /neither a file, a folder, nor a built-in/, /moby-dick/);
    throwsUser(() => loadTextSource("moby_dick"), /moby_dick/, /moby-dick/);
    throwsUser(() => loadTextSource(""), /moby-dick/);
  });

  test("folder with no .txt files", () => {
    const dir = join(tmp, "empty-dir");
    mkdirSync(join(dir, "sub"), { recursive: true });
    writeFileSync(join(dir, "readme.md"), "x");
    throwsUser(() => loadTextSource(dir), /empty-dir/, /no \.txt files/);
  });

  test("binary file, invalid UTF-8, empty text", () => {
    const bin = join(tmp, "weights.txt");
    writeFileSync(bin, new Uint8Array([104, 105, 0, 1, 2]));
    throwsUser(() => loadTextSource(bin), /weights\.txt/, /binary/, /offset 2/);
    const latin1 = join(tmp, "latin1.txt");
    writeFileSync(latin1, new Uint8Array([0x63, 0x61, 0x66, 0xe9])); // "café" in Latin-1
    throwsUser(() => loadTextSource(latin1), /latin1\.txt/, /UTF-8/);
    const empty = join(tmp, "empty.txt");
    writeFileSync(empty, "");
    throwsUser(() => loadTextSource(empty), /empty\.txt/, /no text/);
    const blank = join(tmp, "blank.txt");
    writeFileSync(blank, " \n\t\n");
    throwsUser(() => loadTextSource(blank), /blank\.txt/, /no text/);
    // A bad file inside a folder is named too.
    const dir = join(tmp, "mixed");
    mkdirSync(dir);
    writeFileSync(join(dir, "a.txt"), "fine");
    writeFileSync(join(dir, "b.txt"), new Uint8Array([0xff, 0xfe, 0x41]));
    throwsUser(() => loadTextSource(dir), /b\.txt/, /UTF-8/);
    const blanks = join(tmp, "blanks");
    mkdirSync(blanks);
    writeFileSync(join(blanks, "a.txt"), "");
    writeFileSync(join(blanks, "b.txt"), "\n");
    throwsUser(() => loadTextSource(blanks), /blanks/, /no text/);
  });
});

describe("counting task", () => {
  test("sequences, starts and the held-out split", () => {
    assert.deepEqual(countingSequence(7), [7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26]);
    assert.deepEqual(countingSequence(80).at(-1), 99);
    throwsUser(() => countingSequence(81), /81/, /0\.\.80/);
    throwsUser(() => countingSequence(-1), /-1/);
    const { train, val } = countingStarts();
    assert.deepEqual(val, [9, 19, 29, 39, 49, 59, 69, 79]);
    assert.equal(train.length, 73);
    assert.ok(train.every((x) => x % 10 !== 9 && x >= 0 && x <= 80));
    // every number is an input and a target somewhere in training
    const seen = new Set(countingTrainSequences().flat());
    assert.equal(seen.size, 100);
    assert.equal(new Set([...train, ...val]).size, 81);
    const trainSeqs = countingTrainSequences();
    assert.equal(trainSeqs.length, 73);
    assert.ok(trainSeqs.every((s) => s.length === COUNTING_SEQ_LEN && s[0] !== undefined && s[0] % 10 !== 9));
    assert.ok(trainSeqs.every((s) => s.every((v, i) => i === 0 || v === (s[i - 1] as number) + 1)));
    assert.deepEqual(
      countingValSequences().map((s) => s[0]),
      val,
    );
    // No held-out sequence appears in training.
    const trainKeys = new Set(trainSeqs.map((s) => s.join(",")));
    assert.ok(countingValSequences().every((s) => !trainKeys.has(s.join(","))));
  });

  test("patternAccuracy: perfect, always wrong, wrong on some, prompt and feedback", () => {
    const { val } = countingStarts();
    const prefixes: number[][] = [];
    const perfect = (p: number[]): number => {
      prefixes.push(p);
      return (p.at(-1) as number) + 1;
    };
    assert.equal(patternAccuracy(perfect, val), 1);
    // Sees 3 tokens first, then its own outputs fed back, up to 19 tokens; 17 calls per start.
    assert.equal(prefixes.length, 8 * 17);
    assert.deepEqual(prefixes[0], [9, 10, 11]);
    assert.deepEqual(prefixes[16], countingSequence(9).slice(0, 19));
    assert.equal(
      patternAccuracy(() => 0, val),
      0,
    );
    // Wrong only when the prefix passes 50: starts 39..79 reach it, starts 9..29 stop at 29+19=48.
    const failsAbove50 = (p: number[]): number => ((p.at(-1) as number) + 1 > 50 ? 0 : (p.at(-1) as number) + 1);
    assert.equal(patternAccuracy(failsAbove50, val), 3 / 8);
    // One wrong token at the very end fails the whole sequence.
    const lastWrong = (p: number[]): number => (p.length === 19 ? -1 : (p.at(-1) as number) + 1);
    assert.equal(patternAccuracy(lastWrong, [10, 20]), 0);
    // Mutating the prefix it is given cannot corrupt the check.
    const vandal = (p: number[]): number => {
      const next = (p.at(-1) as number) + 1;
      p.length = 0;
      return next;
    };
    assert.equal(patternAccuracy(vandal, [30]), 1);
    throwsUser(() => patternAccuracy(perfect, []), /at least one start/);
  });
});

describe("splitTokens", () => {
  test("first 90% train, last 10% val, as views", () => {
    const ids = range(0, 100);
    const { train, val } = splitTokens(ids);
    assert.equal(train.length, 90);
    assert.equal(val.length, 10);
    assert.equal(train[89], 89);
    assert.equal(val[0], 90);
    assert.equal(train.buffer, ids.buffer);
    const odd = splitTokens(range(0, 15), 0.2);
    assert.deepEqual([odd.train.length, odd.val.length], [12, 3]);
    assert.deepEqual([...splitTokens(range(0, 5), 0).val], []);
    throwsUser(() => splitTokens(ids, 1), /validation fraction/);
    throwsUser(() => splitTokens(ids, -0.1), /validation fraction/);
  });
});

describe("BatchSampler", () => {
  test("windows are contiguous, y is x shifted by one, deterministic per seed", () => {
    const tokens = range(1000, 1100); // token value = 1000 + position, so positions are recoverable
    const T = 8;
    const B = 5;
    const a = new BatchSampler(tokens, T, B, new Rng(42));
    const b = new BatchSampler(tokens, T, B, new Rng(42));
    const seen = new Set<number>();
    for (let step = 0; step < 200; step++) {
      const { x, y } = a.next();
      const again = b.next();
      assert.deepEqual(again.x, x);
      assert.deepEqual(again.y, y);
      assert.equal(x.length, B * T);
      assert.equal(y.length, B * T);
      for (let r = 0; r < B; r++) {
        const start = (x[r * T] as number) - 1000;
        seen.add(start);
        for (let t = 0; t < T; t++) {
          assert.equal(x[r * T + t], 1000 + start + t);
          assert.equal(y[r * T + t], 1000 + start + t + 1);
        }
      }
    }
    // All valid starts 0..91 are reachable, none beyond (the last y token is the last token).
    assert.equal(Math.min(...seen), 0);
    assert.equal(Math.max(...seen), 100 - T - 1);
    assert.equal(seen.size, 100 - T);
  });

  test("exactly blockSize+1 tokens is enough; fewer is an error that says what to do", () => {
    const s = new BatchSampler(range(0, 9), 8, 2, new Rng(1));
    assert.deepEqual([...s.next().y.subarray(0, 8)], [1, 2, 3, 4, 5, 6, 7, 8]);
    // the library names the settings, the CLI user sees their flags
    throwsUser(() => new BatchSampler(range(0, 8), 8, 2, new Rng(1)), /only 8 tokens/, /blockSize 8/, /^(?!.*--)/);
    throwsInCli(
      () => new BatchSampler(range(0, 8), 8, 2, new Rng(1)),
      /only 8 tokens/,
      /--block-size 8/,
      /lower --block-size or give more text/,
    );
    throwsUser(() => new BatchSampler(range(0, 5), 8, 2, new Rng(1), "the validation split"), /the validation split has only 5 tokens/);
    throwsInCli(() => new BatchSampler(range(0, 50), 0, 2, new Rng(1)), /--block-size/);
    throwsInCli(() => new BatchSampler(range(0, 50), 4, 1.5, new Rng(1)), /--batch-size/);
  });

  test("resuming from a saved RNG state continues the same batch stream", () => {
    const tokens = range(0, 500);
    const rng = new Rng(7);
    const s = new BatchSampler(tokens, 16, 4, rng);
    s.next();
    const state = rng.getState();
    const expected = [s.next(), s.next()];
    const rng2 = new Rng(999);
    rng2.setState(state);
    const s2 = new BatchSampler(tokens, 16, 4, rng2);
    assert.deepEqual([s2.next(), s2.next()], expected);
  });
});

describe("SequenceSampler (counting task)", () => {
  test("each row is a whole training sequence: x = seq[0..19), y = seq[1..20)", () => {
    const seqs = countingTrainSequences();
    const s = new SequenceSampler(seqs, 32, new Rng(3));
    assert.equal(s.blockSize, 19);
    const starts = new Set<number>();
    for (let k = 0; k < 50; k++) {
      const { x, y } = s.next();
      assert.equal(x.length, 32 * 19);
      for (let r = 0; r < 32; r++) {
        const start = x[r * 19] as number;
        starts.add(start);
        assert.notEqual(start % 10, 9, "held-out start sampled for training");
        assert.deepEqual([...x.subarray(r * 19, r * 19 + 19)], countingSequence(start).slice(0, 19));
        assert.deepEqual([...y.subarray(r * 19, r * 19 + 19)], countingSequence(start).slice(1, 20));
      }
    }
    assert.equal(starts.size, 73);
    throwsUser(() => new SequenceSampler([], 4, new Rng(1)), /at least one sequence/);
    throwsUser(
      () =>
        new SequenceSampler(
          [
            [1, 2, 3],
            [1, 2],
          ],
          4,
          new Rng(1),
        ),
      /sequence 1 has 2 tokens/,
    );
  });
});

describe("evalWindows", () => {
  test("non-overlapping windows, shorter last window, every target once", () => {
    const ids = range(0, 11); // 10 (input, target) pairs
    const w = evalWindows(ids, 4);
    assert.deepEqual(
      w.map((b) => [[...b.x], [...b.y]]),
      [
        [
          [0, 1, 2, 3],
          [1, 2, 3, 4],
        ],
        [
          [4, 5, 6, 7],
          [5, 6, 7, 8],
        ],
        [
          [8, 9],
          [9, 10],
        ],
      ],
    );
    // Exact multiple: no empty trailing window.
    assert.equal(evalWindows(range(0, 9), 4).length, 2);
    assert.deepEqual([...(evalWindows(range(0, 9), 4)[1]?.y ?? [])], [5, 6, 7, 8]);
    // Every target exactly once, in order.
    const big = range(0, 1000);
    const ys = evalWindows(big, 37).flatMap((b) => [...b.y]);
    assert.deepEqual(ys, [...big.subarray(1)]);
    assert.deepEqual(evalWindows(range(0, 1), 4), []);
    assert.deepEqual(
      evalWindows(range(0, 2), 4).map((b) => [[...b.x], [...b.y]]),
      [[[0], [1]]],
    );
    throwsInCli(() => evalWindows(big, 0), /--block-size/);
  });
});
