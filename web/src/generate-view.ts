// The Generate view: sampling settings, streamed text, stop, and (optionally) the top-5 next tokens
// the model weighed at each step.
import type { ModelWorker } from "./client.js";
import { byId, clearMessage, inputNumber, visible } from "./dom.js";

export function generateView(worker: ModelWorker): void {
  const output = byId("output");
  const tops = byId("step-tops");
  const start = byId<HTMLButtonElement>("generate");
  const stop = byId<HTMLButtonElement>("stop-generate");
  const showTop = byId<HTMLInputElement>("show-top");
  let stepNo = 0;

  start.onclick = () => {
    clearMessage();
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
      settings: {
        temperature: inputNumber("temperature"),
        topK: Math.floor(inputNumber("top-k")),
        topP: inputNumber("top-p"),
        maxTokens: Math.floor(inputNumber("max-tokens")),
        seed: Math.floor(inputNumber("seed")),
      },
    });
  };
  stop.onclick = () => worker.send({ type: "stopGenerate" });

  worker.on("delta", (m) => {
    output.append(m.text);
    if (!m.top) return;
    stepNo++;
    const row = document.createElement("div");
    row.className = "step-top";
    const label = document.createElement("span");
    label.className = "muted";
    label.textContent = `step ${stepNo}: `;
    row.append(label, m.top.map((t) => `${visible(t.token)} ${(100 * t.p).toFixed(1)}%`).join("  "));
    tops.append(row);
  });
  const done = (): void => {
    start.disabled = false;
    stop.disabled = true;
    output.dataset.done = "true";
  };
  worker.on("generated", done);
  worker.on("error", (m) => {
    if (m.context === "generate") done();
  });
}
