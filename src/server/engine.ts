/**
 * The server's generation engine: the model, its tokenizer and every sequence in flight. It runs
 * where the model lives (the worker thread of worker.ts) and knows nothing of HTTP or threads.
 *
 * start() turns a checked request into n rows (one Decoder each, choice k seeded with seed + k);
 * step() gives every row in flight its next token: continuous batching, the rows of every request in
 * flight decoded together in one GPT.decode call (a ragged batch: each row with its own position,
 * KV cache, sampling settings and seed), requests joining and leaving between steps. A new row's
 * prompt joins the same call as rows of its own (PROMPT_ROWS tokens a step; only the last one's
 * logits are computed), so a prefill reads the weights with everyone else's tokens instead of on
 * its own. Each row's logits are bit-identical to its request decoded alone (the decode kernels'
 * per-row arithmetic does not depend on the batch: src/kernels/backend.ts), so its text is too.
 */
import { CHAT_END, chatTokenIds, encodeChat } from "../data/chat.js";
import { MinigptError } from "../errors.js";
import { Decoder } from "../generate/generate.js";
import { TextStreamer } from "../generate/stream.js";
import { neverLearnedToEndReplies, unseenSpecialIds } from "../generate/suppress.js";
import { StopString } from "../generate/text.js";
import type { ModelFolder } from "../io/folder.js";
import { DecodeBuffers, type DecodeRow } from "../nn/decode-step.js";
import type { Tokenizer } from "../tokenizer/types.js";
import { ApiError, badParam } from "./api-error.js";
import type { GenerationRequest } from "./params.js";
import { tokenName } from "./token-text.js";

/**
 * A prompt's tokens fed per step: a long prompt takes several steps, so that the other requests'
 * next tokens do not wait for all of it (and the step's buffers stay small).
 */
const PROMPT_ROWS = 32;

/** refuse: a prompt that leaves no room for max_tokens is a 400; truncate: its start is cut off */
export type ContextOverflow = "refuse" | "truncate";

export interface ModelInfo {
  /** the id clients name in `model` (the folder's name) */
  id: string;
  blockSize: number;
  vocabSize: number;
  /** why chat replies will be poor (a model never fine-tuned for chat), or null */
  chatWarning: string | null;
}

/** one alternative at one position: the log-softmax of the raw logits */
export interface TokenAlternative {
  /** its text, or "bytes:\\xe2\\x80" for a part of a character (token-text.ts) */
  token: string;
  logprob: number;
  /** the token's own bytes (part of a character for a byte-level token that splits one) */
  bytes: number[];
}

export interface TokenLogprob extends TokenAlternative {
  /** the most likely tokens at this position, most likely first */
  top: TokenAlternative[];
}

export type FinishReason = "stop" | "length";

export type EngineEvent =
  /**
   * newly printable text of one choice, with the log probabilities of the tokens behind it;
   * `completionTokens`: the request's tokens generated so far (all its choices), which the log of
   * a request cut off before "done" (its client left, the server stopped) reports
   */
  | { type: "delta"; id: number; choice: number; text: string; logprobs: TokenLogprob[]; completionTokens: number }
  | { type: "finish"; id: number; choice: number; reason: FinishReason }
  /** every choice of the request finished: token counts for `usage` */
  | { type: "done"; id: number; completionTokens: number };

export interface Started {
  promptTokens: number;
  maxTokens: number;
  /** things the client should know (prompt cut, characters left out, model not fine-tuned for chat) */
  warnings: string[];
}

interface Row {
  id: number;
  choice: number;
  decoder: Decoder;
  streamer: TextStreamer;
  stops: StopString[];
  maxTokens: number;
  /** alternatives wanted per token, or null for no log probabilities */
  top: number | null;
  /** log probabilities of tokens whose text is not shown yet */
  pending: TokenLogprob[];
}

/** a row's step: its token and the logits drawn from, null when it ended, undefined when only part of its prompt went in */
type StepResult = { id: number; logits: Float32Array } | null | undefined;

/** the rows decoded together in a step: how many rows each feeds, whether its last wants logits */
interface Batch {
  rows: { row: Row; n: number; logits: boolean }[];
  feed: DecodeRow[];
}

export class Engine {
  readonly info: ModelInfo;
  private readonly tokenizer: Tokenizer;
  private readonly suppressIds: number[];
  private readonly eot: number | undefined;
  private rows: Row[] = [];
  /** the shared decode step's activations, grown to the most rows decoded together */
  private buffers: DecodeBuffers | null = null;
  /** per request: rows still running and tokens generated so far */
  private readonly requests = new Map<number, { running: number; tokens: number }>();

  constructor(
    private readonly folder: ModelFolder,
    id: string,
    private readonly contextOverflow: ContextOverflow = "refuse",
  ) {
    this.tokenizer = folder.tokenizer;
    this.suppressIds = unseenSpecialIds(folder);
    this.eot = folder.tokenizer.specialTokenId("<|endoftext|>");
    const { blockSize, vocabSize } = folder.model.config;
    const chatWarning = neverLearnedToEndReplies(folder.info, folder.tokenizer)
      ? `${id} was not fine-tuned for chat (it never learned to end a reply with ${CHAT_END}), so its replies will ramble until max_tokens; fine-tune it with minigpt train --chat`
      : null;
    this.info = { id, blockSize, vocabSize, chatWarning };
    // a server's steps are of many rows (every request in flight; a prompt's rows fed together): the
    // weights laid out once for them while the model serves (GPT.packDecodeWeights: as much memory
    // again as the blocks' matrices; a step of one row still reads the row-major ones)
    folder.model.packDecodeWeights();
  }

  get busy(): boolean {
    return this.rows.length > 0;
  }

  /** Encode the request's prompt, fit it to the context and add its rows; ApiError when it cannot run. */
  start(id: number, r: GenerationRequest): Started {
    const warnings: string[] = [];
    const unknown: string[] = [];
    const onUnknown = (piece: string) => {
      if (!unknown.includes(piece)) unknown.push(piece);
    };
    let prompt: number[];
    let stopIds: number[];
    if (r.kind === "chat") {
      const chat = chatTokenIds(this.tokenizer);
      if (!chat)
        throw new ApiError(
          400,
          `the model ${this.info.id} has no chat tokens; use /v1/completions, or chat fine-tune it (minigpt train --chat)`,
          "invalid_request_error",
          "messages",
          "model_not_chat",
        );
      try {
        prompt = [...encodeChat(this.tokenizer, r.messages, onUnknown).ids, chat.assistant];
      } catch (e) {
        if (e instanceof MinigptError) throw badParam("messages", e.message);
        throw e;
      }
      stopIds = this.eot === undefined ? [chat.end] : [chat.end, this.eot];
      if (this.info.chatWarning) warnings.push(this.info.chatWarning);
    } else {
      prompt = this.tokenizer.encode(r.prompt, { onUnknown });
      stopIds = this.eot === undefined ? [] : [this.eot];
    }
    if (unknown.length > 0)
      warnings.push(`left out what the model's vocabulary cannot encode: ${unknown.map((p) => JSON.stringify(p)).join(" ")}`);
    const where = r.kind === "chat" ? "messages" : "prompt";
    if (prompt.length === 0) throw badParam(where, `the ${where} encodes to no tokens this model knows`);
    const T = this.info.blockSize;
    let maxTokens = r.maxTokens ?? T - prompt.length;
    if (prompt.length + maxTokens > T || maxTokens < 1) {
      if (this.contextOverflow === "refuse" || (r.maxTokens ?? 0) >= T) {
        const asked = r.maxTokens ?? 1;
        throw new ApiError(
          400,
          `This model's maximum context length is ${T} tokens. However, you requested ${prompt.length + asked} tokens (${prompt.length} in the ${where}, ${asked} for the completion). Please reduce the length of the ${where} or max_tokens.`,
          "invalid_request_error",
          r.maxTokens !== null && r.maxTokens >= T ? "max_tokens" : where,
          "context_length_exceeded",
        );
      }
      // truncate: keep the end of the prompt, leaving room for the reply (half the context by default)
      if (r.maxTokens === null) maxTokens = Math.max(1, Math.floor(T / 2));
      const keep = T - maxTokens;
      warnings.push(
        `the ${where} (${prompt.length} tokens) was cut to its last ${keep} tokens to fit the ${T}-token context with ${maxTokens} for the completion`,
      );
      prompt = prompt.slice(-keep);
    }
    const options = {
      maxNewTokens: maxTokens,
      temperature: r.temperature,
      topK: r.topK,
      topP: r.topP,
      stopIds,
      suppressIds: this.suppressIds,
    };
    for (let choice = 0; choice < r.n; choice++) {
      this.rows.push({
        id,
        choice,
        decoder: new Decoder(this.folder.model, prompt, { ...options, seed: r.seed + choice }),
        streamer: new TextStreamer(this.tokenizer, prompt),
        stops: r.stop.map((s) => new StopString(s)),
        maxTokens,
        top: r.logprobs,
        pending: [],
      });
    }
    this.requests.set(id, { running: r.n, tokens: 0 });
    return { promptTokens: prompt.length, maxTokens, warnings };
  }

  /** Stop every request (a step failed); returns their ids. */
  cancelAll(): number[] {
    const ids = [...this.requests.keys()];
    for (const id of ids) this.cancel(id);
    return ids;
  }

  /** Stop a request's rows (its client left) and free their caches; no events follow for it. */
  cancel(id: number): void {
    for (const row of this.rows) if (row.id === id) row.decoder.dispose();
    this.rows = this.rows.filter((row) => row.id !== id);
    this.requests.delete(id);
  }

  /**
   * Every row in flight gets its next token; returns what each made printable. The rows whose next
   * step is a one-token decode (all but a new request's first step) share one GPT.decode call: the
   * weights are read once for all of them, and each row's logits are the bits it would get alone.
   * On the CPU backends (the logits are read synchronously); a GPU's model steps with stepAsync.
   */
  step(): EngineEvent[] {
    const batch = this.batchRows();
    const shared = batch ? this.shareLogits(batch, this.folder.model.decode(batch.feed, this.buffersFor(batch))) : null;
    return this.emit((row) => (shared?.has(row) ? shared.get(row) : row.decoder.step()));
  }

  /**
   * step() on any backend (a GPU's: the step's logits read back asynchronously): the shared decode
   * and every row stepping alone are recorded at once, then read together. Requests started or
   * cancelled while it waits are left to the next step.
   */
  async stepAsync(): Promise<EngineEvent[]> {
    const batch = this.batchRows();
    const logits = batch ? this.folder.model.decodeAsync(batch.feed, this.buffersFor(batch)) : null;
    const inBatch = new Set(batch?.rows.map((b) => b.row));
    const alone = this.rows.filter((row) => !inBatch.has(row)).map((row) => ({ row, next: row.decoder.stepAsync() }));
    const results = new Map<Row, StepResult>();
    const shared = batch && logits ? this.shareLogits(batch, await logits) : null;
    for (const [row, s] of shared ?? []) results.set(row, s);
    for (const { row, next } of alone) results.set(row, await next);
    return this.emit((row) => results.get(row));
  }

  /**
   * The events of a step whose rows' results `next` gives (a token and its logits, null when the row
   * ended, undefined when only part of its prompt went in); the rows that ended leave.
   */
  private emit(next: (row: Row) => StepResult): EngineEvent[] {
    const events: EngineEvent[] = [];
    for (const row of this.rows) {
      const s = next(row);
      if (s === undefined) continue; // part of its prompt went in: no token yet
      const request = this.requests.get(row.id);
      if (request && s) request.tokens++;
      let text: string;
      let ended = false;
      if (s) {
        if (row.top !== null) row.pending.push(this.logprobsOf(s.logits, s.id, row.top));
        text = this.throughStops(row, row.streamer.push(s.id), false);
        ended = row.stops.some((f) => f.stopped) || row.decoder.produced >= row.maxTokens;
      } else {
        text = this.throughStops(row, row.streamer.finish(), true);
        ended = true;
      }
      if (ended && s && !row.stops.some((f) => f.stopped)) text += this.throughStops(row, row.streamer.finish(), true);
      const stopped = row.stops.some((f) => f.stopped);
      if (text !== "" || (ended && row.pending.length > 0)) {
        events.push({
          type: "delta",
          id: row.id,
          choice: row.choice,
          text,
          logprobs: row.pending,
          completionTokens: request?.tokens ?? 0,
        });
        row.pending = [];
      }
      if (!ended) continue;
      const reason: FinishReason = !stopped && row.decoder.produced >= row.maxTokens ? "length" : "stop";
      events.push({ type: "finish", id: row.id, choice: row.choice, reason });
      row.decoder.dispose();
      if (request && --request.running === 0) {
        events.push({ type: "done", id: row.id, completionTokens: request.tokens });
        this.requests.delete(row.id);
      }
    }
    this.rows = this.rows.filter((row) => !row.decoder.done);
    return events;
  }

  /**
   * The rows that can be decoded in one step and what they feed (each row's next token, or part of
   * its prompt), or null when none can.
   */
  private batchRows(): Batch | null {
    const fed: { row: Row; next: DecodeRow[] }[] = [];
    for (const row of this.rows) {
      const next = row.decoder.decodeRows(PROMPT_ROWS);
      if (next) fed.push({ row, next });
    }
    if (fed.length === 0) return null;
    // prompts' rows first: a backend that splits the rows over threads (a sequence's rows whole on
    // one) then finds a cut near the middle right after them, where a prompt in the middle of the
    // batch would push the cut to one of its ends. The order changes no row's bits.
    fed.sort((p, q) => Number(q.next.length > 1) - Number(p.next.length > 1));
    const rows = fed.map(({ row, next }) => ({ row, n: next.length, logits: next[next.length - 1]?.logits !== false }));
    return { rows, feed: fed.flatMap(({ next }) => next) };
  }

  /** the shared decode step's buffers, grown to hold the batch's rows */
  private buffersFor(batch: Batch): DecodeBuffers {
    const R = batch.feed.length;
    if (!this.buffers || this.buffers.capacity < R) {
      this.buffers?.dispose();
      this.buffers = new DecodeBuffers(this.folder.model.config, Math.max(R, this.buffers ? 2 * this.buffers.capacity : 8));
    }
    return this.buffers;
  }

  /**
   * Each batched row's result from the decode's logits (the rows that want them, in order): its
   * next token and logits (a view of `logits`), null when it ended, undefined when only part of its
   * prompt went in. A row cancelled while an async step waited is left out.
   */
  private shareLogits(batch: Batch, logits: Float32Array): Map<Row, StepResult> {
    const out = new Map<Row, StepResult>();
    const V = this.folder.model.config.vocabSize;
    let k = 0;
    for (const { row, n, logits: wants } of batch.rows) {
      const own = wants ? logits.subarray(k * V, (k + 1) * V) : null;
      if (wants) k++;
      if (!row.decoder.done) out.set(row, row.decoder.stepWith(n, own));
    }
    return out;
  }

  /**
   * Text through the row's stop strings in order (each cuts at its first appearance, so together
   * they cut at the earliest); `end` flushes what they hold back, as does any of them stopping.
   */
  private throughStops(row: Row, text: string, end: boolean): string {
    let flush = end;
    for (const f of row.stops) {
      text = f.push(text);
      if (f.stopped) flush = true;
      else if (flush) text += f.finish();
    }
    return text;
  }

  /** log-softmax of the raw logits (before temperature, top-k, top-p), in float64 */
  private logprobsOf(logits: Float32Array, id: number, top: number): TokenLogprob {
    let max = -Infinity;
    for (let i = 0; i < logits.length; i++) if ((logits[i] as number) > max) max = logits[i] as number;
    let sum = 0;
    for (let i = 0; i < logits.length; i++) sum += Math.exp((logits[i] as number) - max);
    const logZ = max + Math.log(sum);
    const best: number[] = [];
    for (let i = 0; i < logits.length && top > 0; i++) {
      const v = logits[i] as number;
      if (best.length === top && v <= (logits[best[top - 1] as number] as number)) continue;
      let at = best.length;
      while (at > 0 && v > (logits[best[at - 1] as number] as number)) at--;
      best.splice(at, 0, i);
      if (best.length > top) best.pop();
    }
    const alternative = (t: number): TokenAlternative => {
      const bytes = this.tokenizer.tokenBytes(t);
      return { token: tokenName(this.tokenizer.decode([t]), bytes), logprob: (logits[t] as number) - logZ, bytes: Array.from(bytes) };
    };
    return { ...alternative(id), top: best.map(alternative) };
  }
}
