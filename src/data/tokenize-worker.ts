/**
 * A worker thread of TokenizePool (tokenize-pool.ts): takes texts that can be tokenized on their
 * own (as UTF-8 bytes) and answers with their ids ("encode") or their BPE word counts ("count"), in order.
 */
import { type MessagePort, workerData } from "node:worker_threads";
import { MinigptError } from "../errors.js";
import { specialsPattern, splitSpecials } from "../tokenizer/bpe.js";
import { bpeSpecials, countTextWords } from "../tokenizer/bpeTrain.js";
import { ChunkedEncoder } from "../tokenizer/chunked.js";
import { tokenizerFromHuggingFaceJson } from "../tokenizer/huggingface.js";
import { WordTable } from "../tokenizer/words.js";
import type { TokenizeAnswer, TokenizeJob } from "./tokenize-pool.js";
import { decodeUtf8 } from "./utf8.js";

const { port, signal, index, job } = workerData as { port: MessagePort; signal: Int32Array; index: number; job: TokenizeJob };

function handler(job: TokenizeJob): (text: string) => TokenizeAnswer {
  if (job.mode === "encode") {
    const tokenizer = tokenizerFromHuggingFaceJson(job.tokenizer);
    const encoder = new ChunkedEncoder(tokenizer, { specialsAsText: job.specialsAsText }, job.wide ? Uint32Array : Uint16Array);
    return (text) => {
      const ids = encoder.push(text, true) as Uint16Array | Uint32Array;
      return { ids, characters: text.length, specials: [...encoder.specialIds] };
    };
  }
  const specials = bpeSpecials();
  const pattern = specialsPattern(specials);
  const ids = new Map(specials.map((s, i) => [s, i]));
  return (text) => {
    const table = new WordTable();
    const counts: number[] = [];
    for (const part of splitSpecials(text, pattern, ids)) if (typeof part === "string") countTextWords(part, table, counts);
    return { words: table.words, counts };
  };
}

function answer(message: object, transfer: ArrayBuffer[] = []): void {
  port.postMessage(message, transfer);
  Atomics.add(signal, index, 1);
  Atomics.notify(signal, index);
}

try {
  const run = handler(job);
  port.on("message", (bytes: Uint8Array) => {
    try {
      const result = run(decodeUtf8(bytes));
      answer(result, result.ids ? [result.ids.buffer as ArrayBuffer] : []);
    } catch (err) {
      answer({ error: (err as Error).message, user: err instanceof MinigptError });
    }
  });
} catch (err) {
  answer({ error: (err as Error).message, user: err instanceof MinigptError });
}
