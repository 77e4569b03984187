/**
 * The chat template, chat fine-tuning data and the chat special tokens.
 *
 * A conversation is written as, for every turn,
 *
 *   <|user|>{user text}<|end|><|assistant|>{assistant text}<|end|>
 *
 * after, when there is one, a first system message: <|system|>{system text}<|end|> (what the
 * assistant is told before the conversation, as in Hugging Face chat templates), with nothing between the pieces (no newlines: a character model would have to learn them too).
 * Message text is encoded with specials as text, so a user typing "<|end|>" cannot forge a marker.
 * To reply, the model is given the history plus "<|user|>{text}<|end|><|assistant|>" and generates
 * until it emits <|end|>.
 *
 * Fine-tuning data is JSONL, one conversation per line:
 *   {"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"hello"}]}
 * optionally opening with {"role":"system","content":"..."}.
 * The loss is taken only where the next token belongs to an assistant reply (its text and its
 * closing <|end|>); every other target is -1, so the model learns to answer, not to imitate users.
 * Reading such a file into a training dataset is src/data/chat-dataset.ts (Node); this module has no
 * file system, so a browser can use the template as it is.
 */
import { fail } from "../errors.js";
import { tokenizerFromHuggingFaceJson } from "../tokenizer/huggingface.js";
import type { EncodeOptions, Tokenizer } from "../tokenizer/types.js";
import type { Batch } from "./batches.js";

export const CHAT_USER = "<|user|>";
export const CHAT_ASSISTANT = "<|assistant|>";
export const CHAT_END = "<|end|>";
export const CHAT_SYSTEM = "<|system|>";
/** the tokens every chat model has */
export const CHAT_SPECIAL_TOKENS: readonly string[] = [CHAT_USER, CHAT_ASSISTANT, CHAT_END];
/** what chat fine-tuning adds to a vocabulary that lacks them: the above and <|system|> */
export const CHAT_TEMPLATE_TOKENS: readonly string[] = [...CHAT_SPECIAL_TOKENS, CHAT_SYSTEM];

export type ChatRole = "system" | "user" | "assistant";

export interface ChatMessage {
  role: ChatRole;
  content: string;
}

export interface ChatTokenIds {
  user: number;
  assistant: number;
  end: number;
  /** absent in models chat-fine-tuned before system messages */
  system?: number;
}

/** The ids of <|user|>, <|assistant|>, <|end|>, or undefined when any is missing. */
export function chatTokenIds(tokenizer: Tokenizer): ChatTokenIds | undefined {
  const user = tokenizer.specialTokenId(CHAT_USER);
  const assistant = tokenizer.specialTokenId(CHAT_ASSISTANT);
  const end = tokenizer.specialTokenId(CHAT_END);
  if (user === undefined || assistant === undefined || end === undefined) return undefined;
  const system = tokenizer.specialTokenId(CHAT_SYSTEM);
  return system === undefined ? { user, assistant, end } : { user, assistant, end, system };
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

/** The <|system|> id, or a one-line error that says how to get it. */
export function requireSystemToken(tokenizer: Tokenizer, dir: string): number {
  const id = tokenizer.specialTokenId(CHAT_SYSTEM);
  if (id === undefined)
    fail(
      `the model in ${dir} has no ${CHAT_SYSTEM} token (it was chat fine-tuned before system messages); fine-tune it once more to add it: minigpt train --chat FILE.jsonl --init ${dir} --out ${dir}-system`,
    );
  return id;
}

/**
 * The tokenizer with any missing chat template tokens (CHAT_TEMPLATE_TOKENS) appended as added tokens (ids from
 * vocabSize up), via its Hugging Face JSON so every tokenizer kind works the same way.
 */
export function withChatTokens(tokenizer: Tokenizer): { tokenizer: Tokenizer; added: string[] } {
  const missing = CHAT_TEMPLATE_TOKENS.filter((s) => tokenizer.specialTokenId(s) === undefined);
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
export function encodeChat(
  tokenizer: Tokenizer,
  messages: readonly ChatMessage[],
  onUnknown?: EncodeOptions["onUnknown"],
): { ids: number[]; assistant: boolean[] } {
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
    const body = tokenizer.encode(m.content, { specialsAsText: true, onUnknown });
    if (m.role === "system") push([t.system ?? requireSystemToken(tokenizer, "this folder"), ...body, t.end], false);
    else if (m.role === "user") push([t.user, ...body, t.end], false);
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
export function chatPrompt(
  tokenizer: Tokenizer,
  history: readonly ChatMessage[],
  user: string,
  onUnknown?: EncodeOptions["onUnknown"],
): number[] {
  const t = chatTokenIds(tokenizer);
  if (!t) fail("this tokenizer has no chat tokens <|user|> <|assistant|> <|end|>");
  return [...encodeChat(tokenizer, [...history, { role: "user", content: user }], onUnknown).ids, t.assistant];
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
  return parseChatJsonlLines(text, file).map((c) => c.messages);
}

/** parseChatJsonl with the line number (from 1) of each conversation */
export function parseChatJsonlLines(text: string, file: string): { line: number; messages: ChatMessage[] }[] {
  const out: { line: number; messages: ChatMessage[] }[] = [];
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
      if (role !== "system" && role !== "user" && role !== "assistant")
        fail(`${where}: role must be "system", "user" or "assistant", got ${JSON.stringify(role)}`);
      if (typeof content !== "string") fail(`${where}: every message needs a string "content"`);
      if (role === "system" && conv.length > 0) fail(`${where}: a "system" message may only come first`);
      conv.push({ role, content });
    }
    if (!conv.some((m) => m.role === "assistant")) fail(`${where}: the conversation has no assistant message to learn from`);
    out.push({ line: i + 1, messages: conv });
  }
  if (out.length === 0) fail(`${file} holds no conversations`);
  return out;
}
