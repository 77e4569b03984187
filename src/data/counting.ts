/**
 * The counting task (a smoke test for the whole model): learn that after x, x+1, x+2 comes x+3.
 *
 * Vocabulary: tokens 0..99. A sequence is x, x+1, ..., x+19 (20 tokens, no wrap-around, so x is 0..80).
 * Every 10th start (x = 9, 19, ..., 79) is held out of training; pattern accuracy on those starts measures whether
 * the model learned "add one" rather than memorised the training sequences.
 */
import { fail } from "../errors.js";

const COUNTING_VOCAB_SIZE = 100;
export const COUNTING_SEQ_LEN = 20;
/** How many tokens of a held-out sequence the model is given; it must produce the rest. */
const COUNTING_PROMPT_LEN = 3;
const COUNTING_MAX_START = COUNTING_VOCAB_SIZE - COUNTING_SEQ_LEN; // 80

/**
 * The 10th, 20th, ... start (x % 10 == 9). Not x % 10 == 0: then 0 would only ever occur in the held-out
 * sequence starting at 0 and 99 only in the one starting at 80, so the model could never learn to read 0 or
 * to emit 99, and no model could continue those sequences. With this choice every number is seen in training
 * as an input and as a target; what is new in a held-out sequence is its start (and so every position of it).
 */
function isHeldOutStart(start: number): boolean {
  return start % 10 === 9;
}

/** [start, start+1, ..., start+19]. */
export function countingSequence(start: number): number[] {
  if (!Number.isInteger(start) || start < 0 || start > COUNTING_MAX_START) {
    fail(`counting start ${start} is out of range; it must be an integer in 0..${COUNTING_MAX_START}`);
  }
  return Array.from({ length: COUNTING_SEQ_LEN }, (_, i) => start + i);
}

/** Training starts (73 of them: 0..80 except 9, 19, ..., 79) and the 8 held-out starts. */
export function countingStarts(): { train: number[]; val: number[] } {
  const train: number[] = [];
  const val: number[] = [];
  for (let x = 0; x <= COUNTING_MAX_START; x++) (isHeldOutStart(x) ? val : train).push(x);
  return { train, val };
}

export function countingTrainSequences(): number[][] {
  return countingStarts().train.map(countingSequence);
}

export function countingValSequences(): number[][] {
  return countingStarts().val.map(countingSequence);
}

/**
 * Fraction of sequences (one per start) that greedy decoding reproduces exactly: the model sees the first
 * COUNTING_PROMPT_LEN numbers and must produce the next 17, each fed back as input. One wrong token makes
 * the whole sequence wrong. predictNext gets a fresh copy of the prefix (it may keep or mutate it).
 */
export function patternAccuracy(predictNext: (prefix: number[]) => number, starts: number[]): number {
  let correct = 0;
  for (const check of patternChecks(starts)) {
    for (let prefix = check.prefix(); prefix; prefix = check.prefix()) check.give(predictNext(prefix));
    if (check.ok) correct++;
  }
  return correct / starts.length;
}

/** patternAccuracy with predictions that come asynchronously (a model on a GPU reads its logits back) */
export async function patternAccuracyAsync(predictNext: (prefix: number[]) => Promise<number>, starts: number[]): Promise<number> {
  let correct = 0;
  for (const check of patternChecks(starts)) {
    for (let prefix = check.prefix(); prefix; prefix = check.prefix()) check.give(await predictNext(prefix));
    if (check.ok) correct++;
  }
  return correct / starts.length;
}

function patternChecks(starts: number[]): PatternCheck[] {
  if (starts.length === 0) fail("patternAccuracy needs at least one start (e.g. countingStarts().val)");
  return starts.map((start) => new PatternCheck(start));
}

/** One sequence of patternAccuracy: its prompt, then each greedy prediction fed back while they are right. */
class PatternCheck {
  private readonly expected: number[];
  private readonly fed: number[];
  ok = true;

  constructor(start: number) {
    this.expected = countingSequence(start);
    this.fed = this.expected.slice(0, COUNTING_PROMPT_LEN);
  }

  /** a copy of the tokens so far to predict the next from, or null once the sequence is decided */
  prefix(): number[] | null {
    return this.ok && this.fed.length < COUNTING_SEQ_LEN ? this.fed.slice() : null;
  }

  give(next: number): void {
    if (next === this.expected[this.fed.length]) this.fed.push(next);
    else this.ok = false;
  }
}
