/**
 * The JSON that OpenAI's API answers with, built from the engine's events: one request's choices
 * gathered for a non-streaming answer, and the chunk shapes of a streaming one
 * (`chat.completion.chunk` with `delta`, `text_completion` with `text`).
 */
import { randomBytes } from "node:crypto";
import type { FinishReason, TokenAlternative, TokenLogprob } from "./engine.js";
import type { GenerationRequest } from "./params.js";
import { TextOffsets } from "./token-text.js";

interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

export function usage(promptTokens: number, completionTokens: number): Usage {
  return { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens };
}

export function responseId(kind: GenerationRequest["kind"]): string {
  return `${kind === "chat" ? "chatcmpl" : "cmpl"}-${randomBytes(12).toString("hex")}`;
}

const alternative = (a: TokenAlternative) => ({ token: a.token, logprob: a.logprob, bytes: a.bytes });

/** chat's shape: {content: [{token, logprob, bytes, top_logprobs}], refusal} */
function chatLogprobs(tokens: readonly TokenLogprob[]) {
  return { content: tokens.map((t) => ({ ...alternative(t), top_logprobs: t.top.map(alternative) })), refusal: null };
}

/**
 * completions' shape: {tokens, token_logprobs, top_logprobs, text_offset}; text_offset counts from
 * the start of the prompt, as OpenAI's does (`offsets`: the choice's, carried from chunk to chunk).
 */
function completionLogprobs(tokens: readonly TokenLogprob[], offsets: TextOffsets) {
  return {
    tokens: tokens.map((t) => t.token),
    token_logprobs: tokens.map((t) => t.logprob),
    top_logprobs: tokens.map((t) => Object.fromEntries(t.top.map((a) => [a.token, a.logprob]))),
    text_offset: tokens.map((t) => offsets.next(t.bytes)),
  };
}

/** One choice as it accumulates, for the non-streaming answer. */
export class ChoiceText {
  text = "";
  logprobs: TokenLogprob[] = [];
  finishReason: FinishReason | null = null;
}

/** The non-streaming body of either endpoint. */
export function completionBody(
  r: GenerationRequest,
  id: string,
  created: number,
  choices: readonly ChoiceText[],
  u: Usage,
  warning: string | null,
): Record<string, unknown> {
  const chat = r.kind === "chat";
  const logprobs = (c: ChoiceText) =>
    r.logprobs === null ? null : chat ? chatLogprobs(c.logprobs) : completionLogprobs(c.logprobs, new TextOffsets(r.prompt.length));
  return {
    id,
    object: chat ? "chat.completion" : "text_completion",
    created,
    model: r.model,
    choices: choices.map((c, index) =>
      chat
        ? { index, message: { role: "assistant", content: c.text, refusal: null }, logprobs: logprobs(c), finish_reason: c.finishReason }
        : { index, text: c.text, logprobs: logprobs(c), finish_reason: c.finishReason },
    ),
    usage: u,
    ...(warning === null ? {} : { warning }),
  };
}

/** Builds the chunks of one streaming answer (each one `data: {json}` line of the event stream). */
export class ChunkWriter {
  /** completions: where each choice's next token starts in prompt + text (for text_offset) */
  private readonly offsets: TextOffsets[];

  constructor(
    private readonly r: GenerationRequest,
    private readonly id: string,
    private readonly created: number,
  ) {
    this.offsets = Array.from({ length: r.n }, () => new TextOffsets(r.prompt.length));
  }

  private chunk(choices: unknown[], extra: Record<string, unknown> = {}): Record<string, unknown> {
    return {
      id: this.id,
      object: this.r.kind === "chat" ? "chat.completion.chunk" : "text_completion",
      created: this.created,
      model: this.r.model,
      choices,
      ...(this.r.includeUsage ? { usage: null } : {}),
      ...extra,
    };
  }

  /** chat's first chunk of every choice: the role, empty content */
  opening(warning: string | null): Record<string, unknown>[] {
    if (this.r.kind !== "chat") return [];
    return Array.from({ length: this.r.n }, (_, index) =>
      this.chunk(
        [{ index, delta: { role: "assistant", content: "" }, logprobs: null, finish_reason: null }],
        index === 0 && warning !== null ? { warning } : {},
      ),
    );
  }

  delta(index: number, text: string, tokens: readonly TokenLogprob[]): Record<string, unknown> {
    const logprobs =
      this.r.logprobs === null
        ? null
        : this.r.kind === "chat"
          ? chatLogprobs(tokens)
          : completionLogprobs(tokens, this.offsets[index] as TextOffsets);
    const choice =
      this.r.kind === "chat"
        ? { index, delta: { content: text }, logprobs, finish_reason: null }
        : { index, text, logprobs, finish_reason: null };
    return this.chunk([choice]);
  }

  finish(index: number, reason: FinishReason): Record<string, unknown> {
    const choice =
      this.r.kind === "chat"
        ? { index, delta: {}, logprobs: null, finish_reason: reason }
        : { index, text: "", logprobs: null, finish_reason: reason };
    return this.chunk([choice]);
  }

  /** the chunk after the last finish_reason when stream_options.include_usage is set */
  usage(u: Usage): Record<string, unknown> {
    return { ...this.chunk([]), usage: u };
  }
}
