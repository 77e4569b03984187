// The Generate view: sampling settings, streamed text, stop, and (optionally) the top-5 next tokens
// the model weighed at each step; for a chat-tuned model, a chat with it (the chat template).
import type { ModelWorker } from "./client.js";
import { byId, checkedNumber, clearMessage, PerFrame, visible } from "./dom.js";
import type { SamplingSettings, TopToken } from "./protocol.js";

export function generateView(worker: ModelWorker): void {
  const output = byId("output");
  const tops = byId("step-tops");
  const start = byId<HTMLButtonElement>("generate");
  const stop = byId<HTMLButtonElement>("stop-generate");
  const showTop = byId<HTMLInputElement>("show-top");
  let stepNo = 0;

  /** the sampling fields, or null (the message line says which one is wrong) */
  const settings = (): SamplingSettings | null => {
    const temperature = checkedNumber("temperature", false);
    const topK = temperature === null ? null : checkedNumber("top-k", true);
    const topP = topK === null ? null : checkedNumber("top-p", false);
    const maxTokens = topP === null ? null : checkedNumber("max-tokens", true);
    const seed = maxTokens === null ? null : checkedNumber("seed", true);
    if (temperature === null || topK === null || topP === null || maxTokens === null || seed === null) return null;
    return { temperature, topK, topP, maxTokens, seed };
  };

  start.onclick = () => {
    clearMessage();
    const sampling = settings();
    if (!sampling) return;
    const prompt = byId<HTMLTextAreaElement>("prompt").value;
    output.textContent = prompt;
    output.dataset.done = "false";
    tops.replaceChildren();
    stepNo = 0;
    start.disabled = true;
    stop.disabled = false;
    worker.send({
      type: "generate",
      prompt,
      explain: showTop.checked,
      settings: sampling,
    });
  };
  stop.onclick = () => worker.send({ type: "stopGenerate" });

  /**
   * a step's top-5 as a line of the list under the text, and the token drawn (as `generate --explain`
   * shows it: with temperature, top-k and top-p it need not be the likeliest, nor among the five)
   */
  const topRow = (top: TopToken[], chosen: string | null): HTMLElement => {
    stepNo++;
    const row = document.createElement("div");
    row.className = "step-top";
    const label = document.createElement("span");
    label.className = "muted";
    label.textContent = `step ${stepNo}: `;
    row.append(label, top.map((t) => `${visible(t.token)} ${(100 * t.p).toFixed(1)}%`).join("  "));
    if (chosen !== null) {
      const drawn = document.createElement("b");
      drawn.className = "chosen";
      drawn.textContent = visible(chosen);
      row.append("  → ", drawn);
    }
    return row;
  };
  /** the tokens' text and top-5s, drawn once a frame */
  const deltas = new PerFrame<{ text: string; top: TopToken[] | null; chosen: string | null }>((items) => {
    const text = items.map((d) => d.text).join("");
    if (text) output.append(text);
    const rows = items.flatMap((d) => (d.top ? [topRow(d.top, d.chosen)] : []));
    if (rows.length > 0) tops.append(...rows);
  });
  worker.on("delta", (m) => deltas.push(m));
  const done = (): void => {
    deltas.flush();
    start.disabled = false;
    stop.disabled = true;
    output.dataset.done = "true";
  };
  worker.on("generated", done);
  worker.on("error", (m) => {
    if (m.context === "generate") done();
    if (m.context === "chat") chatDone();
  });

  // the chat, shown for a model with the chat tokens
  const chat = byId("chat");
  const log = byId("chat-log");
  const input = byId<HTMLTextAreaElement>("chat-input");
  const send = byId<HTMLButtonElement>("chat-send");
  const stopChat = byId<HTMLButtonElement>("chat-stop");
  let reply: HTMLElement | null = null;
  /** add to the conversation, keeping its newest line in view unless the person scrolled up */
  const grow = (add: () => void): void => {
    const atEnd = log.scrollHeight - log.scrollTop - log.clientHeight < 20;
    add();
    if (atEnd) log.scrollTop = log.scrollHeight;
  };
  const turn = (kind: "user" | "assistant" | "notice", text: string, before: HTMLElement | null = null): HTMLElement => {
    const el = document.createElement("div");
    el.className = `turn ${kind}`;
    el.textContent = text;
    grow(() => log.insertBefore(el, before));
    return el;
  };
  /** the reply's text, drawn once a frame */
  const replyText = new PerFrame<string>((pieces) => {
    const text = pieces.join("");
    const to = reply;
    if (text && to) grow(() => to.append(text));
  });
  const chatDone = (): void => {
    replyText.flush();
    send.disabled = false;
    stopChat.disabled = true;
    if (reply) reply.dataset.done = "true";
    reply = null;
  };
  send.onclick = () => {
    const text = input.value.trim();
    if (text === "" || reply) return;
    clearMessage();
    const sampling = settings();
    if (!sampling) return;
    turn("user", text);
    reply = turn("assistant", "");
    input.value = "";
    send.disabled = true;
    stopChat.disabled = false;
    worker.send({ type: "chat", text, system: byId<HTMLInputElement>("chat-system").value, settings: sampling });
  };
  input.onkeydown = (e) => {
    if (e.key === "Enter" && !e.shiftKey) {
      e.preventDefault();
      send.click();
    }
  };
  stopChat.onclick = () => worker.send({ type: "stopGenerate" });
  byId("chat-reset").onclick = () => {
    worker.send({ type: "chatReset" });
    log.replaceChildren();
  };
  worker.on("chatDelta", (m) => replyText.push(m.text));
  worker.on("chatNotice", (m) => {
    replyText.flush();
    if (reply) turn("notice", m.text, reply);
  });
  worker.on("chatDone", (m) => {
    replyText.flush();
    if (m.reason === "length") turn("notice", "the reply reached the token limit (Max tokens raises it)");
    if (m.reason === "stopped") turn("notice", "stopped: this exchange is not kept in the conversation");
    chatDone();
  });
  worker.on("model", (m) => {
    chat.hidden = !m.chat;
    byId("chat-system-label").hidden = !m.system;
    log.replaceChildren();
    // the text and top-5s of the model before are not this one's
    output.textContent = "";
    tops.replaceChildren();
  });
}
