// minigpt's web playground: the page. It starts the model worker (worker.ts, where every model runs),
// wires the four views to it and says what the engine could get: WebGPU on a hardware GPU (worker/engine.ts),
// else WebAssembly, whose threads need a cross-origin-isolated page (COOP/COEP headers, which
// `minigpt web` sends).
import "./style.css";
import { ModelWorker } from "./client.js";
import { byId, showMessage } from "./dom.js";
import { generateView } from "./generate-view.js";
import { insideView } from "./inside-view.js";
import { modelsView } from "./models-view.js";
import { trainView } from "./train-view.js";

const worker = new ModelWorker((message) => showMessage(`the model worker stopped: ${message}; reload the page`));

worker.on("ready", (m) => {
  const e = m.engine;
  byId("engine").textContent =
    e.backend === "webgpu"
      ? `Engine: WebGPU on ${e.adapter}${e.software ? " (a software adapter, on the CPU: slower than WebAssembly; asked for by the address)" : ""}.`
      : `${
          m.isolated
            ? `Engine: WebAssembly ${e.simd} SIMD on ${e.threads} threads (Web Workers).`
            : `Engine: WebAssembly ${e.simd} SIMD on one thread. This page is not cross-origin isolated (no SharedArrayBuffer), so training uses one thread; serve it with COOP/COEP headers (minigpt web does) for more.`
        } Not WebGPU: ${e.notGpu}.`;
  byId("engine").dataset.ready = "true";
  byId("engine").dataset.backend = e.backend;
});
worker.on("error", (m) => showMessage(m.message));

// tabs: arrow keys move between them, Tab goes into the chosen view (the WAI-ARIA tabs pattern)
const tabs = Array.from(document.querySelectorAll<HTMLButtonElement>('[role="tab"]'));
function choose(tab: HTMLButtonElement, focus = false): void {
  for (const t of tabs) {
    const on = t === tab;
    t.setAttribute("aria-selected", String(on));
    t.tabIndex = on ? 0 : -1;
    byId(t.getAttribute("aria-controls") as string).hidden = !on;
  }
  if (focus) tab.focus();
}
for (const [i, tab] of tabs.entries()) {
  tab.onclick = () => choose(tab);
  tab.onkeydown = (e) => {
    const step = e.key === "ArrowRight" ? 1 : e.key === "ArrowLeft" ? -1 : 0;
    if (step) choose(tabs[(i + step + tabs.length) % tabs.length] as HTMLButtonElement, true);
  };
}

trainView(worker);
generateView(worker);
insideView(worker);
modelsView(worker);
// `?backend=webgpu` forces WebGPU on any adapter (the tests train on SwiftShader's), `?backend=wasm` the CPU
const asked = new URLSearchParams(location.search).get("backend");
worker.send({ type: "hello", backend: asked === "webgpu" || asked === "wasm" ? asked : "auto" });
