/**
 * A worker thread of TokenizePool (tokenize-pool.ts): takes texts that can be tokenized on their
 * own (as UTF-8 bytes in a shared buffer) and, in order, writes their ids into the token file at
 * their place ("encode"), or answers with their BPE word counts ("count") or their characters ("chars").
 */
import { Buffer } from "node:buffer";
import { writeSync } from "node:fs";
import { type MessagePort, workerData } from "node:worker_threads";
import { MinigptError } from "../errors.js";
import { specialsPattern, splitSpecials } from "../tokenizer/bpe.js";
import { bpeSpecials, countTextWords } from "../tokenizer/bpeTrain.js";
import { ChunkedEncoder, charUtf8Encoder, charVocabulary, type IdArray, IdBuffer } from "../tokenizer/chunked.js";
import { tokenizerFromHuggingFaceJson } from "../tokenizer/huggingface.js";
import { WordTable } from "../tokenizer/words.js";
import type { TokenizeAnswer, TokenizeJob, TokenizeMessage } from "./tokenize-pool.js";
import { decodeUtf8 } from "./utf8.js";
import { WriteOrder } from "./write-order.js";

const { port, signal, index, order } = workerData as { port: MessagePort; signal: Int32Array; index: number; order: SharedArrayBuffer };
const writeOrder = new WriteOrder(order);

/** What a piece becomes: its answer, and for "encode" the ids to write. */
type Handler = (bytes: Uint8Array) => { answer: TokenizeAnswer; ids?: IdArray };

function handler(job: TokenizeJob): Handler {
  if (job.mode === "encode") {
    const tokenizer = tokenizerFromHuggingFaceJson(job.tokenizer);
    const idType = job.wide ? Uint32Array : Uint16Array;
    const encoder = new ChunkedEncoder(tokenizer, { specialsAsText: job.specialsAsText }, idType);
    // a char vocabulary's ids straight from the bytes, into one buffer kept for every piece
    const direct = tokenizer.kind === "char" ? charUtf8Encoder(tokenizer) : undefined;
    const out = new IdBuffer(idType);
    const specials = job.specialsAsText ? [] : tokenizer.specialTokens.map((s) => Buffer.from(s));
    return (bytes) => {
      const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      if (direct && !specials.some((s) => buffer.includes(s))) {
        out.length = 0;
        const characters = direct(bytes, out);
        const ids = out.ids.subarray(0, out.length);
        return { answer: { tokens: ids.length, characters, specials: [] }, ids };
      }
      const text = decodeUtf8(bytes);
      const ids = encoder.push(text, true);
      return { answer: { tokens: ids.length, characters: text.length, specials: [...encoder.specialIds] }, ids };
    };
  }
  if (job.mode === "chars") {
    return (bytes) => {
      const chars = charVocabulary();
      chars.addUtf8(bytes);
      return { answer: { seen: chars.characters() } };
    };
  }
  const specials = bpeSpecials();
  const pattern = specialsPattern(specials);
  const ids = new Map(specials.map((s, i) => [s, i]));
  return (bytes) => {
    const table = new WordTable();
    const counts: number[] = [];
    for (const part of splitSpecials(decodeUtf8(bytes), pattern, ids)) if (typeof part === "string") countTextWords(part, table, counts);
    return { answer: { words: table.words, counts } };
  };
}

function answer(message: object): void {
  port.postMessage(message);
  Atomics.add(signal, index, 1);
  Atomics.notify(signal, index);
}

function failure(err: unknown): object {
  return { error: (err as Error).message, user: err instanceof MinigptError, code: (err as NodeJS.ErrnoException).code };
}

let job: TokenizeJob | undefined;
let run: Handler | Error | undefined;

port.on("message", (m: TokenizeMessage) => {
  if ("job" in m) {
    job = m.job;
    try {
      run = handler(m.job);
    } catch (err) {
      run = err as Error; // said with each piece's answer
    }
    return;
  }
  let result: ReturnType<Handler> | undefined;
  try {
    if (run instanceof Error || run === undefined) throw run ?? new Error("a piece came before its job");
    result = run(new Uint8Array(m.buffer, 0, m.length));
  } catch (err) {
    // a failed piece still takes its turn, so that the pieces after it never wait for it
    if (job?.mode === "encode") writeOrder.place(m.piece, 0);
    answer(failure(err));
    return;
  }
  try {
    const ids = result.ids;
    if (ids && job?.mode === "encode") {
      const bytes = new Uint8Array(ids.buffer, ids.byteOffset, ids.byteLength);
      const at = writeOrder.place(m.piece, bytes.length);
      for (let done = 0; done < bytes.length; ) done += writeSync(job.fd, bytes, done, bytes.length - done, at + done);
    }
    answer(result.answer);
  } catch (err) {
    answer(failure(err));
  }
});
