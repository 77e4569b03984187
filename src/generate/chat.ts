/**
 * A conversation with a model, using the chat template of src/data/chat.ts:
 *
 *   [<|system|>{system}<|end|>]<|user|>hi<|end|><|assistant|>hello<|end|><|user|>{new message}<|end|><|assistant|>
 *
 * The system message (setSystem) stays at the start of every prompt; /reset keeps it.
 * The history is kept within the context window: before each reply the oldest turns are dropped
 * until the prompt leaves room for the reply (min(maxNewTokens, blockSize/2) tokens), and the caller
 * is told. Replies stream token by token and stop at <|end|> (or <|endoftext|>, or maxNewTokens).
 */
import { type ChatMessage, chatPrompt, requireChatTokens, requireSystemToken } from "../data/chat.js";
import type { GPT } from "../nn/gpt.js";
import type { Tokenizer } from "../tokenizer/types.js";
import { type DecodedToken, defaultGenerate, type GenerateOptions, streamTokens, streamTokensAsync, type TokenSink } from "./generate.js";
import { TextStreamer } from "./stream.js";

export type ChatEvent =
  /** pieces of the message its vocabulary cannot encode (a character model made before byte fallback): left out */
  | { type: "unknown"; pieces: string[] }
  /** oldest turns removed from the history so the prompt fits the context */
  | { type: "dropped"; turns: number; promptTokens: number; contextTokens: number }
  /** newly complete reply text */
  | { type: "text"; text: string }
  | { type: "done"; reply: string; stoppedBy: "end" | "length"; tokens: number };

export type ChatOptions = Omit<GenerateOptions, "stopIds">;

export class ChatSession {
  readonly model: GPT;
  readonly tokenizer: Tokenizer;
  options: ChatOptions;
  history: ChatMessage[] = [];
  /** what the assistant is told before the conversation ("" = nothing); see setSystem */
  private system = "";
  private turn = 0;
  private readonly stopIds: number[];
  private readonly dir: string;

  /** `dir` names the model in the error when its vocabulary has no chat tokens. */
  constructor(model: GPT, tokenizer: Tokenizer, options: Partial<ChatOptions> = {}, dir = "the model folder") {
    const ids = requireChatTokens(tokenizer, dir);
    this.model = model;
    this.tokenizer = tokenizer;
    const { stopIds: _ignored, ...defaults } = defaultGenerate;
    this.options = { ...defaults, ...options };
    const eot = tokenizer.specialTokenId("<|endoftext|>");
    this.stopIds = eot === undefined ? [ids.end] : [ids.end, eot];
    this.dir = dir;
  }

  /** The system message at the start of every prompt ("" for none); the model must have <|system|>. */
  setSystem(text: string): void {
    if (text !== "") requireSystemToken(this.tokenizer, this.dir);
    this.system = text;
  }

  /** the messages before the new user message: the system message, then the history */
  private context(): ChatMessage[] {
    return this.system === "" ? this.history : [{ role: "system", content: this.system }, ...this.history];
  }

  reset(): void {
    this.history = [];
    this.turn = 0;
  }

  /** Tokens the reply is guaranteed: the prompt is trimmed to blockSize minus this. */
  get replyRoom(): number {
    return Math.max(1, Math.min(this.options.maxNewTokens, Math.floor(this.model.config.blockSize / 2)));
  }

  /** Send a user message; yields the dropped-turns notice, reply text as it streams, then done. */
  *send(text: string): Generator<ChatEvent> {
    const turn = this.begin(text);
    yield* turn.notices;
    yield* streamTokens(this.model, turn.prompt, turn.options, turn);
  }

  /** send on any backend, the GPU's included (see streamTokensAsync) */
  async *sendAsync(text: string): AsyncGenerator<ChatEvent> {
    const turn = this.begin(text);
    yield* turn.notices;
    yield* streamTokensAsync(this.model, turn.prompt, turn.options, turn);
  }

  /** a turn's prompt (the history trimmed to fit), what it says first, and the sink of its reply's tokens */
  private begin(text: string): TokenSink<ChatEvent> & { notices: ChatEvent[]; prompt: number[]; options: GenerateOptions } {
    const T = this.model.config.blockSize;
    const budget = T - this.replyRoom;
    const notices: ChatEvent[] = [];
    const unknown: string[] = [];
    this.tokenizer.encode(text, {
      specialsAsText: true,
      onUnknown: (p) => {
        if (!unknown.includes(p)) unknown.push(p);
      },
    });
    if (unknown.length > 0) notices.push({ type: "unknown", pieces: unknown });
    // said once, above; the history's messages keep their text and are left out the same way each turn
    const leaveOut = () => {};
    let prompt = chatPrompt(this.tokenizer, this.context(), text, leaveOut);
    let dropped = 0;
    while (prompt.length > budget && this.history.length > 0) {
      // one turn = a user message and the assistant messages after it
      let n = 1;
      while (n < this.history.length && this.history[n]?.role === "assistant") n++;
      this.history.splice(0, n);
      dropped++;
      prompt = chatPrompt(this.tokenizer, this.context(), text, leaveOut);
    }
    if (dropped > 0) notices.push({ type: "dropped", turns: dropped, promptTokens: prompt.length, contextTokens: T });
    const ids: number[] = [];
    const streamer = new TextStreamer(this.tokenizer);
    const options = { ...this.options, seed: this.options.seed + this.turn, stopIds: this.stopIds };
    return {
      notices,
      prompt,
      options,
      stopped: false,
      push: ({ id }: DecodedToken): ChatEvent[] => {
        ids.push(id);
        const piece = streamer.push(id);
        return piece ? [{ type: "text", text: piece }] : [];
      },
      end: (): ChatEvent[] => {
        const events: ChatEvent[] = [];
        const stoppedBy = ids.length >= options.maxNewTokens ? "length" : "end";
        const reply = streamer.text;
        const rest = streamer.finish();
        if (rest) events.push({ type: "text", text: rest });
        this.history.push({ role: "user", content: text }, { role: "assistant", content: reply });
        this.turn++;
        events.push({ type: "done", reply, stoppedBy, tokens: ids.length });
        return events;
      },
    };
  }

  /** The whole reply at once (tests, scripts). */
  reply(text: string): string {
    let out = "";
    for (const e of this.send(text)) if (e.type === "done") out = e.reply;
    return out;
  }
}
