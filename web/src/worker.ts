// The model worker: everything that touches a model runs here, off the page's thread (the page only
// draws). This file takes the page's messages and hands each to its part (worker/):
//   engine.ts      which backend the models run on (WebGPU or wasm, and its threads)
//   model.ts       the model generate, chat and Look inside use: the run's, or one loaded in Models
//   run.ts         the training run: made from a request, restored, summarised, freed
//   training.ts    training it in slices that let messages (pause, stop, generate) in
//   save.ts        the run kept in IndexedDB while it trains and when it stops
//   generation.ts  Generate and Chat, streamed token by token
//   inside.ts      Look inside: one forward pass's attention and next tokens, the model's size
//   page.ts        messages to the page, errors as one line, pauses in long work
// On WebGPU the step's kernels run on the GPU and only the loss comes back, once per step; values
// are read with the library's async forms (`await t.read()`, `stepAsync`), which the CPU backends
// answer at once (so there messages still get in only between slices, while on the GPU they may
// come at any read).
import type { BackendChoice, ToWorker } from "./protocol.js";
import { loadRun } from "./store.js";
import { isolated, startEngine } from "./worker/engine.js";
import { chatSend, generate, isGenerating, resetChat, stopGeneration } from "./worker/generation.js";
import { inspect } from "./worker/inside.js";
import { downloadModel, loadModel, requireModel } from "./worker/model.js";
import { post, report } from "./worker/page.js";
import {
  currentRun,
  disposeRun,
  emptySummary,
  estimates,
  makeTokenizer,
  type Run,
  runInfo,
  SHARDS,
  startRun,
  summary,
} from "./worker/run.js";
import { clearSaved, save } from "./worker/save.js";
import { trainLoop } from "./worker/training.js";

async function hello(choice: BackendChoice): Promise<void> {
  // threads for the data-parallel shards of a step, at most
  const engine = await startEngine(choice, SHARDS);
  post({ type: "ready", isolated: isolated(), engine });
  const saved = await loadRun();
  if (saved) {
    try {
      const run = await startRun(saved.request, saved);
      post({ type: "run", run: summary(run) });
    } catch (err) {
      await clearSaved();
      report(err, "restoring the saved run (it was removed)");
    }
  }
}

async function handle(m: ToWorker): Promise<void> {
  const run = currentRun();
  switch (m.type) {
    case "hello":
      return hello(m.backend);
    case "estimate": {
      const tokenizer = makeTokenizer(m.text, m.tokenizer, m.vocabSize);
      post({
        type: "estimates",
        presets: estimates(tokenizer.vocabSize),
        vocabSize: tokenizer.vocabSize,
        tokens: tokenizer.encode(m.text).length,
      });
      return;
    }
    case "train": {
      post({ type: "run", run: { ...emptySummary(), status: "preparing", label: m.request.source } });
      let started: Run;
      try {
        started = await startRun(m.request);
      } catch (err) {
        // the page leaves "preparing" and the message says why: the run before is still there (and
        // its save) when the request was refused before it was freed, else no run
        const before = currentRun();
        post({ type: "run", run: before ? summary(before) : emptySummary() });
        throw err;
      }
      await clearSaved();
      post({ type: "run", run: summary(started) });
      return trainLoop(started);
    }
    case "pause":
      if (run?.status === "training") run.status = "paused";
      return;
    case "resume":
      if (run && run.status === "paused") {
        run.status = "training";
        post({ type: "run", run: summary(run) });
        return trainLoop(run);
      }
      return;
    case "stop":
      if (run && (run.status === "training" || run.status === "paused")) {
        const wasPaused = run.status === "paused";
        run.status = "stopped";
        if (wasPaused) {
          await save(run);
          post({ type: "run", run: summary(run) });
        }
      }
      return;
    case "discard":
      disposeRun();
      await clearSaved();
      post({ type: "run", run: emptySummary() });
      return;
    case "generate":
      if (isGenerating()) return;
      return generate(m.prompt, m.settings, m.explain);
    case "stopGenerate":
      stopGeneration();
      return;
    case "chat":
      if (isGenerating()) return;
      return chatSend(m.text, m.system, m.settings);
    case "chatReset":
      resetChat();
      return;
    case "inspect":
      return inspect(m.prompt, run?.preset.batchSize ?? 12);
    case "download": {
      const model = requireModel();
      return downloadModel(model, runInfo(model.model) ?? model.info);
    }
    case "load":
      return loadModel(m.name, m.files, m.zip, run?.model);
  }
}

self.onmessage = (e: MessageEvent<ToWorker>) => {
  handle(e.data).catch((err: unknown) => {
    // a failed step pauses the run (Resume tries again), and the page is told
    const run = currentRun();
    if (run && run.status === "training") {
      run.status = "paused";
      post({ type: "run", run: summary(run) });
    }
    report(err, e.data.type);
  });
};
