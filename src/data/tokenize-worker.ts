/**
 * A worker thread of TokenizePool (tokenize-pool.ts): takes texts that can be tokenized on their
 * own and answers with their ids ("encode") or their BPE word counts ("count"), in order.
 */
import { type MessagePort, workerData } from "node:worker_threads";
import { MinigptError } from "../errors.js";
import { specialsPattern, splitSpecials } from "../tokenizer/bpe.js";
import { bpeSpecials, countWords } from "../tokenizer/bpeTrain.js";
import { ChunkedEncoder } from "../tokenizer/chunked.js";
import { tokenizerFromHuggingFaceJson } from "../tokenizer/huggingface.js";
import { pretokenize } from "../tokenizer/pretokenize.js";
import type { TokenizeJob } from "./tokenize-pool.js";

const { port, signal, index, job } = workerData as { port: MessagePort; signal: Int32Array; index: number; job: TokenizeJob };

function handler(job: TokenizeJob): (text: string) => { ids?: Int32Array; counts?: Map<string, number> } {
  if (job.mode === "encode") {
    const tokenizer = tokenizerFromHuggingFaceJson(job.tokenizer);
    return (text) => ({ ids: new ChunkedEncoder(tokenizer, { specialsAsText: job.specialsAsText }).push(text, true) });
  }
  const specials = bpeSpecials();
  const pattern = specialsPattern(specials);
  const ids = new Map(specials.map((s, i) => [s, i]));
  return (text) => {
    const counts = new Map<string, number>();
    for (const part of splitSpecials(text, pattern, ids)) {
      if (typeof part === "number") continue;
      const words = pretokenize(part);
      countWords(words, words.length, counts);
    }
    return { counts };
  };
}

function answer(message: object, transfer: ArrayBuffer[] = []): void {
  port.postMessage(message, transfer);
  Atomics.add(signal, index, 1);
  Atomics.notify(signal, index);
}

try {
  const run = handler(job);
  port.on("message", (text: string) => {
    try {
      const result = run(text);
      answer(result, result.ids ? [result.ids.buffer as ArrayBuffer] : []);
    } catch (err) {
      answer({ error: (err as Error).message, user: err instanceof MinigptError });
    }
  });
} catch (err) {
  answer({ error: (err as Error).message, user: err instanceof MinigptError });
}
