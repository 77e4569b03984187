/**
 * Tokenizing on every core: the main thread reads and checks the text's bytes and cuts them where
 * the pieces can be tokenized on their own (syncPoint); worker threads (tokenize-worker.ts) decode
 * and tokenize the pieces; the answers come back in order. Pieces and ids change threads by
 * transfer, not by copy. The API stays synchronous, as the rest of dataset loading
 * is: the main thread waits on a shared counter (Atomics.wait) and takes each answer with
 * receiveMessageOnPort, which needs no event loop.
 */
import { availableParallelism } from "node:os";
import { MessageChannel, type MessagePort, receiveMessageOnPort, Worker } from "node:worker_threads";
import { fail } from "../errors.js";

/** What every worker of a pool does with its pieces. */
export type TokenizeJob =
  /** the ids, as uint16 (vocabularies under 65,536 tokens) or uint32, as the token cache stores them */
  | { mode: "encode"; tokenizer: object; specialsAsText: boolean; wide: boolean }
  /** the word counts of a BPE vocabulary pass (its built-in specials cut out) */
  | { mode: "count" };

export interface TokenizeAnswer {
  ids?: Uint16Array | Uint32Array;
  /** "encode": the piece's length in UTF-16 code units, and the ids of the special tokens among its ids */
  characters?: number;
  specials?: number[];
  /** "count": the distinct words of the piece in order of first sight, and how often each occurs */
  words?: string[];
  counts?: number[];
}

/**
 * The end of the last place in the UTF-8 `text` where it can be cut into two texts that tokenize
 * on their own to the ids of the whole (or -1): before a newline that follows a printable ASCII
 * character that is not a space. No character tokenizer piece, GPT-2 pre-token or special token
 * (when none contains a newline) spans it: the pre-token before it ends there (a newline ends every
 * letter, number and punctuation run and completes every contraction), and a pre-token starting at
 * a newline is the same whatever came before. Both are ASCII bytes, never part of a longer character.
 */
export function syncPoint(text: Uint8Array): number {
  for (let p = text.lastIndexOf(10); p > 0; p = text.lastIndexOf(10, p - 1)) {
    const before = text[p - 1] as number;
    if (before >= 0x21 && before <= 0x7e) return p;
  }
  return -1;
}

/** Threads to tokenize with: one per core, none (tokenize on this thread) on a single core. */
export function tokenizeThreads(): number {
  const n = availableParallelism();
  return n > 1 ? n : 0;
}

/** A worker's silence after which the pool gives up (a worker that died cannot say so while we wait). */
const STALL_MS = 600_000;

export class TokenizePool {
  private readonly workers: { worker: Worker; port: MessagePort }[] = [];
  private readonly signal = new Int32Array(new SharedArrayBuffer(64 * 4));
  /** worker index of each piece in flight, oldest first */
  private readonly inFlight: number[] = [];
  private nextWorker = 0;

  constructor(threads: number, job: TokenizeJob) {
    const fromSource = import.meta.url.endsWith(".ts");
    const entry = new URL(fromSource ? "./tokenize-worker.ts" : "./tokenize-worker.js", import.meta.url);
    // from source, the worker registers tsx's loader itself (workers do not inherit --import hooks)
    const script = fromSource
      ? `import(${JSON.stringify(import.meta.resolve("tsx/esm/api"))}).then((t) => { t.register(); return import(${JSON.stringify(entry.href)}); });`
      : null;
    for (let index = 0; index < Math.min(threads, this.signal.length); index++) {
      const { port1, port2 } = new MessageChannel();
      const workerData = { port: port2, signal: this.signal, index, job };
      const options = { workerData, transferList: [port2] };
      const worker = script ? new Worker(script, { ...options, eval: true }) : new Worker(entry, options);
      worker.unref();
      this.workers.push({ worker, port: port1 });
    }
  }

  get size(): number {
    return this.inFlight.length;
  }

  /** Hands a piece (whole UTF-8 characters, in a buffer of its own, which moves to the worker) to the next worker, round robin so that answers can be taken in order. */
  submit(text: Uint8Array): void {
    const k = this.nextWorker;
    this.nextWorker = (k + 1) % this.workers.length;
    (this.workers[k] as { port: MessagePort }).port.postMessage(text, [text.buffer as ArrayBuffer]);
    this.inFlight.push(k);
  }

  /** The answer to the oldest piece in flight; waits for it. */
  take(): TokenizeAnswer {
    const k = this.inFlight.shift();
    if (k === undefined) return fail("no tokenizing piece in flight");
    const port = (this.workers[k] as { port: MessagePort }).port;
    for (;;) {
      const seen = Atomics.load(this.signal, k);
      const got = receiveMessageOnPort(port);
      if (got) {
        const m = got.message as TokenizeAnswer & { error?: string; user?: boolean };
        if (m.error !== undefined) {
          if (m.user) fail(m.error);
          throw new Error(`a tokenizing thread failed: ${m.error}`);
        }
        return m;
      }
      if (Atomics.wait(this.signal, k, seen, STALL_MS) === "timed-out")
        throw new Error(`a tokenizing thread gave no answer for ${STALL_MS / 1000} s`);
    }
  }

  close(): void {
    for (const { worker, port } of this.workers) {
      port.close();
      void worker.terminate();
    }
  }
}
