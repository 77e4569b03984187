// The Train view: the text (pasted, dropped .txt files, or the built-in book), tokenizer, size
// preset with its figures, the run's buttons, live charts and samples.
import { TrainCharts } from "./chart.js";
import type { ModelWorker } from "./client.js";
import { byId, checkedNumber, clearMessage, formatBytesShort, formatCount, formatDuration, inputNumber, showMessage } from "./dom.js";
import { readText, UserFileError } from "./files.js";
import { PRESETS, type PresetEstimate, type RunSummary, type TokenizerChoice } from "./protocol.js";

/** the built-in corpus: Moby Dick, as `minigpt train` uses it (built into dist/web/ by vite.config.ts) */
const BUILTIN_URL = "./moby-dick.txt";

export function trainView(worker: ModelWorker): void {
  const text = byId<HTMLTextAreaElement>("text");
  const textInfo = byId("text-info");
  const tokenizer = byId<HTMLSelectElement>("tokenizer");
  const preset = byId<HTMLSelectElement>("preset");
  const presetInfo = byId("preset-info");
  const progress = byId("progress");
  const samples = byId("samples");
  const buttons = {
    start: byId<HTMLButtonElement>("start"),
    continue: byId<HTMLButtonElement>("continue"),
    pause: byId<HTMLButtonElement>("pause"),
    resume: byId<HTMLButtonElement>("resume"),
    stop: byId<HTMLButtonElement>("stop"),
    discard: byId<HTMLButtonElement>("discard"),
  };
  const charts = new TrainCharts(byId("chart"), byId("chart-rate"));
  let source = "pasted text";
  let estimates: PresetEstimate[] = [];
  let run: RunSummary | null = null;
  let savedAt: number | null = null;

  for (const [i, p] of PRESETS.entries()) preset.add(new Option(p.name, String(i)));
  preset.value = "0";

  const describePreset = (): void => {
    const p = PRESETS[Number(preset.value)];
    const e = estimates[Number(preset.value)];
    if (!p) return;
    const shape = `${p.nLayer} layers, ${p.nHead} heads, ${p.nEmbd} wide, context ${p.blockSize}, batch ${p.batchSize}`;
    presetInfo.textContent = e
      ? `${shape}: ${formatCount(e.parameters)} parameters, about ${formatBytesShort(e.trainingBytes)} to train, about ${formatCount(Math.round(e.tokensPerS))} tokens/s expected (an estimate from its FLOPs)`
      : shape;
  };

  let estimateTimer = 0;
  const estimate = (): void => {
    clearTimeout(estimateTimer);
    estimateTimer = window.setTimeout(() => {
      const t = text.value;
      textInfo.textContent = t ? `${t.length.toLocaleString()} characters (${source})` : "";
      // a BPE vocabulary is the size asked for, learned from a slice as well as from the whole; a
      // character vocabulary is every character of the text, and a rare one past the slice (Moby Dick
      // has some) changes the count the model will have
      if (t.length > 0)
        worker.send({
          type: "estimate",
          text: tokenizer.value === "char" ? t : t.slice(0, 200_000),
          tokenizer: tokenizer.value as TokenizerChoice,
          vocabSize: inputNumber("vocab"),
        });
    }, 300);
  };
  worker.on("estimates", (m) => {
    estimates = m.presets;
    for (const [i, p] of PRESETS.entries()) {
      const e = m.presets[i];
      (preset.options[i] as HTMLOptionElement).text = e ? `${p.name}: ${formatCount(e.parameters)} parameters` : p.name;
    }
    describePreset();
  });
  preset.onchange = describePreset;
  tokenizer.onchange = () => {
    byId("vocab-label").hidden = tokenizer.value !== "bpe";
    estimate();
  };
  byId<HTMLInputElement>("vocab").onchange = estimate;
  text.oninput = () => {
    source = "pasted text";
    estimate();
  };

  const useFiles = async (files: readonly File[]): Promise<void> => {
    clearMessage();
    try {
      const texts = await Promise.all(files.map(readText));
      text.value = texts.join("\n\n");
      source = files.length === 1 ? (files[0] as File).name : `${files.length} files`;
      estimate();
    } catch (err) {
      showMessage(err instanceof UserFileError ? err.message : String(err));
    }
  };
  const fileInput = byId<HTMLInputElement>("text-files");
  fileInput.onchange = async () => {
    await useFiles(Array.from(fileInput.files ?? []));
    fileInput.value = "";
  };
  const view = byId("view-train");
  view.addEventListener("dragover", (e) => e.preventDefault());
  view.addEventListener("drop", (e) => {
    e.preventDefault();
    void useFiles(Array.from(e.dataTransfer?.files ?? []));
  });
  byId("builtin").onclick = async () => {
    clearMessage();
    const res = await fetch(BUILTIN_URL);
    if (!res.ok) return showMessage(`the built-in book could not be fetched (HTTP ${res.status})`);
    text.value = await res.text();
    source = "moby-dick";
    estimate();
  };

  /** a new model of the chosen size, or (continueLoaded) the model loaded in Models trained further */
  const startRun = (continueLoaded: boolean): void => {
    clearMessage();
    if (text.value.trim().length === 0) {
      showMessage("paste some text first, drop .txt files, or use the built-in book");
      return;
    }
    const maxSteps = checkedNumber("steps", true);
    const sampleEvery = maxSteps === null ? null : checkedNumber("sample-every", true);
    const vocabSize = sampleEvery === null || tokenizer.value !== "bpe" ? inputNumber("vocab") : checkedNumber("vocab", true);
    if (maxSteps === null || sampleEvery === null || vocabSize === null) return;
    if (run && (run.status === "training" || run.status === "paused") && !confirm("Start a new run? The current one will be discarded."))
      return;
    worker.send({
      type: "train",
      request: {
        text: text.value,
        source,
        tokenizer: tokenizer.value as TokenizerChoice,
        vocabSize,
        preset: Number(preset.value),
        continueLoaded,
        maxSteps,
        sampleEvery,
        seed: 1337,
      },
    });
  };
  buttons.start.onclick = () => startRun(false);
  buttons.continue.onclick = () => startRun(true);
  // the button is there while a model loaded in Models waits to be trained further (a run takes it over)
  worker.on("model", (m) => {
    buttons.continue.hidden = !m.loaded;
    buttons.continue.textContent = `Train ${m.label} further`;
  });
  buttons.pause.onclick = () => worker.send({ type: "pause" });
  buttons.resume.onclick = () => worker.send({ type: "resume" });
  buttons.stop.onclick = () => worker.send({ type: "stop" });
  buttons.discard.onclick = () => {
    if (confirm("Discard this run? Its saved state is removed from this browser.")) worker.send({ type: "discard" });
  };

  const showProgress = (etaS: number | null): void => {
    if (!run || run.status === "idle") {
      progress.textContent = "No run yet.";
      return;
    }
    const last = run.metrics.at(-1);
    const val = [...run.metrics].reverse().find((m) => m.valLoss !== null)?.valLoss;
    const parts = [
      `${run.status}`,
      `step ${run.step}/${run.maxSteps}`,
      last ? `loss ${last.loss.toFixed(3)}` : "",
      val != null ? `val ${val.toFixed(3)}` : "",
      last ? `lr ${last.lr.toExponential(1)}` : "",
      last ? `${Math.round(last.tokensPerS).toLocaleString()} tokens/s` : "",
      etaS !== null && run.status === "training" ? `ETA ${formatDuration(etaS)}` : "",
      savedAt ? `saved ${new Date(savedAt).toLocaleTimeString()}` : "",
    ];
    progress.textContent = parts.filter(Boolean).join(" · ");
  };

  const showButtons = (): void => {
    const s = run?.status ?? "idle";
    buttons.start.disabled = s === "preparing" || s === "training";
    buttons.continue.disabled = buttons.start.disabled;
    buttons.pause.disabled = s !== "training";
    buttons.resume.disabled = s !== "paused";
    buttons.stop.disabled = s !== "training" && s !== "paused";
    buttons.discard.disabled = s === "idle" || s === "preparing" || s === "training";
  };

  const addSample = (step: number, sample: string): void => {
    const box = document.createElement("div");
    box.className = "sample";
    const head = document.createElement("strong");
    head.textContent = `step ${step}`;
    const body = document.createElement("pre");
    body.textContent = sample;
    box.append(head, body);
    samples.prepend(box);
  };

  worker.on("run", (m) => {
    const fresh = !run || run.metrics.length !== m.run.metrics.length || m.run.status === "preparing";
    run = m.run;
    savedAt = m.run.savedAt;
    if (fresh) {
      charts.reset(m.run.metrics);
      samples.replaceChildren();
      for (const s of m.run.samples) addSample(s.step, s.text);
    } else charts.drawNow();
    showButtons();
    showProgress(m.run.etaS);
    if (m.run.status === "paused" && m.run.metrics.length > 0 && m.run.savedAt) progress.dataset.restored = "true";
  });
  worker.on("metrics", (m) => {
    if (!run) return;
    run.metrics.push(...m.metrics);
    run.step = m.step;
    charts.push(m.metrics);
    showProgress(m.etaS);
  });
  worker.on("sample", (m) => {
    run?.samples.push({ step: m.step, text: m.text });
    addSample(m.step, m.text);
  });
  worker.on("saved", (m) => {
    savedAt = m.at;
  });
  describePreset();
}
