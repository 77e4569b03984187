// Generate and Chat: text from the current model streamed to the page token by token, with the
// settings `minigpt generate` and `minigpt chat` use (the same seed gives the same text), pausing
// every SLICE_MS so Stop gets in.
import {
  ChatSession,
  type GPT,
  MinigptError,
  streamTokensAsync,
  TextStreamer,
  type TokenSink,
  topTokens,
  unseenSpecialIds,
} from "minigpt-ts/browser";
import type { SamplingSettings, TopToken } from "../protocol.js";
import { onGpu } from "./engine.js";
import { requireModel } from "./model.js";
import { post, Slices } from "./page.js";

let generating = false;
let stopGenerating = false;

/** a generation or a chat reply is streaming: a second one is not started */
export const isGenerating = (): boolean => generating;

/** end the generation or chat reply that is streaming, after its current token */
export function stopGeneration(): void {
  stopGenerating = true;
}

/** new text after `prompt`, each token's piece with (when `explain`) the five likeliest tokens it was drawn from */
export async function generate(prompt: string, s: SamplingSettings, explain: boolean): Promise<void> {
  const model = requireModel();
  const ids = model.tokenizer.encode(prompt, { specialsAsText: true });
  if (ids.length === 0) throw new MinigptError("the prompt encodes to no tokens; type some text");
  const eot = model.tokenizer.specialTokenId("<|endoftext|>");
  // the options `minigpt generate` uses, so the same seed gives the same text
  const options = {
    maxNewTokens: s.maxTokens,
    temperature: s.temperature,
    topK: s.topK,
    topP: s.topP,
    seed: s.seed,
    stopIds: eot === undefined ? [] : [eot],
    suppressIds: unseenSpecialIds(model),
  };
  const streamer = new TextStreamer(model.tokenizer, ids);
  let produced = 0;
  const deltas: TokenSink<{ text: string; top: TopToken[] | null; chosen: string | null }> = {
    stopped: false,
    push: ({ id, logits }) => {
      produced++;
      const top = explain ? topTokens(logits, 5).map((t) => ({ token: model.tokenizer.tokenString(t.id), p: t.p })) : null;
      return [{ text: streamer.push(id), top, chosen: explain ? model.tokenizer.tokenString(id) : null }];
    },
    end: () => [],
  };
  generating = true;
  stopGenerating = false;
  let reason: "length" | "stopped" | "end" = "length";
  try {
    const slices = new Slices();
    for await (const delta of streamTokensAsync(model.model, ids, options, deltas)) {
      post({ type: "delta", ...delta });
      await slices.pause();
      if (stopGenerating) {
        reason = "stopped";
        break;
      }
    }
    if (reason !== "stopped" && produced < s.maxTokens) reason = "end";
    post({ type: "delta", text: streamer.finish(), top: null, chosen: null });
  } finally {
    generating = false;
  }
  post({ type: "generated", reason });
}

/** the conversation with the current model (a new one when the model changed) */
let chat: { model: GPT; session: ChatSession } | null = null;

/** forget the conversation so far (the system message stays) */
export function resetChat(): void {
  chat?.session.reset();
}

/** a user message and the reply streamed, as `minigpt chat` answers it (the same settings give the same text) */
export async function chatSend(text: string, system: string, s: SamplingSettings): Promise<void> {
  const m = requireModel("load a chat-tuned model folder first");
  if (!chat || chat.model !== m.model)
    chat = { model: m.model, session: new ChatSession(m.model, m.tokenizer, { suppressIds: unseenSpecialIds(m) }, m.label) };
  const session = chat.session;
  session.setSystem(system);
  session.options = { ...session.options, temperature: s.temperature, topK: s.topK, topP: s.topP, maxNewTokens: s.maxTokens, seed: s.seed };
  generating = true;
  stopGenerating = false;
  let reason: "end" | "length" | "stopped" = "end";
  // on the GPU each token's logits are read back asynchronously (the same text as send gives)
  const events = onGpu() ? session.sendAsync(text) : session.send(text);
  try {
    const slices = new Slices();
    for await (const e of events) {
      if (e.type === "text") post({ type: "chatDelta", text: e.text });
      else if (e.type === "unknown")
        post({ type: "chatNotice", text: `left out what the vocabulary cannot encode: ${e.pieces.join(" ")}` });
      else if (e.type === "dropped")
        post({
          type: "chatNotice",
          text: `dropped the oldest ${e.turns === 1 ? "turn" : `${e.turns} turns`} to stay within the ${e.contextTokens}-token context`,
        });
      else reason = e.stoppedBy;
      await slices.pause();
      if (stopGenerating) {
        // closing the generator before its end keeps the exchange out of the conversation
        await events.return(undefined);
        reason = "stopped";
        break;
      }
    }
  } finally {
    generating = false;
  }
  post({ type: "chatDone", reason });
}
