/**
 * The chat template, chat fine-tuning data and the chat special tokens.
 *
 * A conversation is written as, for every turn,
 *
 *   <|user|>{user text}<|end|><|assistant|>{assistant text}<|end|>
 *
 * with nothing between the pieces (no newlines: a character model would have to learn them too).
 * Message text is encoded with specials as text, so a user typing "<|end|>" cannot forge a marker.
 * To reply, the model is given the history plus "<|user|>{text}<|end|><|assistant|>" and generates
 * until it emits <|end|>.
 *
 * Fine-tuning data is JSONL, one conversation per line:
 *   {"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"hello"}]}
 * The loss is taken only where the next token belongs to an assistant reply (its text and its
 * closing <|end|>); every other target is -1, so the model learns to answer, not to imitate users.
 */
import { existsSync, readFileSync } from "node:fs";
import { fail } from "../errors.js";
import type { Rng } from "../random.js";
import { tokenizerFromHuggingFaceJson } from "../tokenizer/huggingface.js";
import type { Tokenizer } from "../tokenizer/types.js";
import { type Batch, specialTargets } from "./batches.js";
import type { Dataset } from "./dataset.js";

export const CHAT_USER = "<|user|>";
export const CHAT_ASSISTANT = "<|assistant|>";
export const CHAT_END = "<|end|>";
export const CHAT_SPECIAL_TOKENS: readonly string[] = [CHAT_USER, CHAT_ASSISTANT, CHAT_END];

export type ChatRole = "user" | "assistant";

export interface ChatMessage {
  role: ChatRole;
  content: string;
}

export interface ChatTokenIds {
  user: number;
  assistant: number;
  end: number;
}

/** The ids of <|user|>, <|assistant|>, <|end|>, or undefined when any is missing. */
export function chatTokenIds(tokenizer: Tokenizer): ChatTokenIds | undefined {
  const user = tokenizer.specialTokenId(CHAT_USER);
  const assistant = tokenizer.specialTokenId(CHAT_ASSISTANT);
  const end = tokenizer.specialTokenId(CHAT_END);
  if (user === undefined || assistant === undefined || end === undefined) return undefined;
  return { user, assistant, end };
}

/** The chat ids, or a one-line error that says how to get them. */
export function requireChatTokens(tokenizer: Tokenizer, dir: string): ChatTokenIds {
  const ids = chatTokenIds(tokenizer);
  if (!ids) {
    const missing = CHAT_SPECIAL_TOKENS.filter((s) => tokenizer.specialTokenId(s) === undefined);
    fail(
      `the model in ${dir} has no chat tokens (${missing.join(" ")} missing from its ${tokenizer.kind} vocabulary); add them by chat fine-tuning: minigpt train --chat FILE.jsonl --init ${dir} --out ${dir}-chat`,
    );
  }
  return ids;
}

/**
 * The tokenizer with any missing chat special tokens appended as added tokens (ids from
 * vocabSize up), via its Hugging Face JSON so every tokenizer kind works the same way.
 */
export function withChatTokens(tokenizer: Tokenizer): { tokenizer: Tokenizer; added: string[] } {
  const missing = CHAT_SPECIAL_TOKENS.filter((s) => tokenizer.specialTokenId(s) === undefined);
  if (missing.length === 0) return { tokenizer, added: [] };
  const json = tokenizer.toHuggingFaceJson() as {
    added_tokens: Record<string, unknown>[];
    model: { vocab: Record<string, number> };
  };
  let id = tokenizer.vocabSize;
  for (const content of missing) {
    json.added_tokens.push({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
    json.model.vocab[content] = id;
    id++;
  }
  return { tokenizer: tokenizerFromHuggingFaceJson(json), added: missing };
}

/** Messages text -> ids, and for every position whether it is part of an assistant reply. */
export function encodeChat(tokenizer: Tokenizer, messages: readonly ChatMessage[]): { ids: number[]; assistant: boolean[] } {
  const t = chatTokenIds(tokenizer);
  if (!t) fail("this tokenizer has no chat tokens <|user|> <|assistant|> <|end|>");
  const ids: number[] = [];
  const assistant: boolean[] = [];
  const push = (list: number[], isAssistant: boolean) => {
    for (const id of list) {
      ids.push(id);
      assistant.push(isAssistant);
    }
  };
  for (const m of messages) {
    const body = tokenizer.encode(m.content, { specialsAsText: true });
    if (m.role === "user") push([t.user, ...body, t.end], false);
    else {
      push([t.assistant], false);
      push([...body, t.end], true);
    }
  }
  return { ids, assistant };
}

/**
 * The ids that ask the model for its next reply: history, then the new user message, then
 * <|assistant|>.
 */
export function chatPrompt(tokenizer: Tokenizer, history: readonly ChatMessage[], user: string): number[] {
  const t = chatTokenIds(tokenizer);
  if (!t) fail("this tokenizer has no chat tokens <|user|> <|assistant|> <|end|>");
  return [...encodeChat(tokenizer, [...history, { role: "user", content: user }]).ids, t.assistant];
}

/**
 * One training row of length T: x = ids[0..T), y = ids[1..T+1) where the target is an assistant
 * token, else -1; positions past the conversation are padding (x = pad, y = -1).
 */
export function chatExample(ids: readonly number[], assistant: readonly boolean[], T: number, pad: number): Batch {
  const x = new Int32Array(T).fill(pad);
  const y = new Int32Array(T).fill(-1);
  const n = Math.min(T, ids.length - 1);
  for (let i = 0; i < n; i++) {
    x[i] = ids[i] as number;
    if (assistant[i + 1]) y[i] = ids[i + 1] as number;
  }
  return { x, y };
}

/** Parse chat JSONL (one {"messages":[...]} per line); errors name the line. */
export function parseChatJsonl(text: string, file: string): ChatMessage[][] {
  const out: ChatMessage[][] = [];
  const lines = text.split("\n");
  for (const [i, raw] of lines.entries()) {
    const line = raw.trim();
    if (line === "") continue;
    const where = `${file} line ${i + 1}`;
    let json: unknown;
    try {
      json = JSON.parse(line);
    } catch {
      fail(
        `${where} is not valid JSON; each line must be {"messages":[{"role":"user","content":"..."},{"role":"assistant","content":"..."}]}`,
      );
    }
    const messages = (json as { messages?: unknown } | null)?.messages;
    if (!Array.isArray(messages) || messages.length === 0) fail(`${where}: expected {"messages":[...]} with at least one message`);
    const conv: ChatMessage[] = [];
    for (const m of messages as unknown[]) {
      const role = (m as { role?: unknown } | null)?.role;
      const content = (m as { content?: unknown } | null)?.content;
      if (role !== "user" && role !== "assistant") fail(`${where}: role must be "user" or "assistant", got ${JSON.stringify(role)}`);
      if (typeof content !== "string") fail(`${where}: every message needs a string "content"`);
      conv.push({ role, content });
    }
    if (!conv.some((m) => m.role === "assistant")) fail(`${where}: the conversation has no assistant message to learn from`);
    out.push(conv);
  }
  if (out.length === 0) fail(`${file} holds no conversations`);
  return out;
}

/** Random conversations per batch, each one row padded to T. */
class ChatSampler {
  constructor(
    private readonly rows: readonly Batch[],
    private readonly T: number,
    private readonly B: number,
    private readonly rng: Rng,
  ) {}
  next(): Batch {
    const x = new Int32Array(this.B * this.T);
    const y = new Int32Array(this.B * this.T);
    for (let b = 0; b < this.B; b++) {
      const row = this.rows[this.rng.int(this.rows.length)] as Batch;
      x.set(row.x, b * this.T);
      y.set(row.y, b * this.T);
    }
    return { x, y };
  }
}

/**
 * The chat fine-tuning dataset of a JSONL file. Conversations longer than blockSize + 1 tokens are
 * cut at the end. With 10 or more conversations the last 10% are held out for validation; with
 * fewer, validation uses the training conversations (said in the dataset name).
 */
export function loadChatDataset(file: string, tokenizer: Tokenizer, blockSize: number, batchSize: number): Dataset {
  if (!existsSync(file)) fail(`--chat file ${file} does not exist`);
  const conversations = parseChatJsonl(readFileSync(file, "utf8"), file);
  const t = chatTokenIds(tokenizer);
  if (!t) fail("the tokenizer has no chat tokens");
  const rows: Batch[] = [];
  let cut = 0;
  let tokens = 0;
  for (const conv of conversations) {
    const { ids, assistant } = encodeChat(tokenizer, conv);
    if (ids.length > blockSize + 1) cut++;
    const row = chatExample(ids, assistant, blockSize, t.end);
    if (!row.y.some((v) => v >= 0)) continue; // the reply starts past the block: nothing to learn
    tokens += Math.min(ids.length, blockSize + 1);
    rows.push(row);
  }
  if (rows.length === 0)
    fail(
      `no conversation in ${file} has an assistant reply within the first ${blockSize} tokens; raise the block size or shorten the user turns`,
    );
  const nVal = rows.length >= 10 ? Math.round(rows.length * 0.1) : 0;
  const train = rows.slice(0, rows.length - nVal);
  const val = nVal > 0 ? rows.slice(rows.length - nVal) : train;
  const notes = [`${rows.length} conversations`];
  if (cut > 0) notes.push(`${cut} cut at ${blockSize + 1} tokens`);
  if (nVal === 0) notes.push("fewer than 10, so validation uses the training conversations");
  const share = (n: number) => Math.round((tokens * n) / rows.length);
  return {
    name: `${file} (chat: ${notes.join(", ")})`,
    tokenizer,
    trainTokens: share(train.length),
    valTokens: share(val.length),
    batchT: blockSize,
    trainSampler: (rng) => new ChatSampler(train, blockSize, batchSize, rng),
    valSampler: (rng) => new ChatSampler(val, blockSize, batchSize, rng),
    counting: false,
    specialTargets: specialTargets(
      tokenizer,
      rows.map((r) => r.y),
    ),
  };
}
