// The model worker: everything that touches a model runs here, off the page's thread (the page only
// draws). Training is the trainer's step (the library's stepper: forward and backward split over
// data-parallel Web Workers when the page is cross-origin isolated; gradient clip, AdamW), run in slices that yield to
// the message queue so pause, stop and generate get in. The run is saved to IndexedDB (store.ts)
// every SAVE_MS (written while training goes on) and on pause, so a reload finds it. The page's main
// thread shares the machine's cores with training: it gets the metrics in batches (METRICS_MS).
// On WebGPU (engine.ts) the step's kernels run on the GPU and only the loss comes back, once per
// step; values are read with the library's async forms (`await t.read()`, `stepAsync`), which the
// CPU backends answer at once (so there messages still get in only between slices, while on the GPU
// they may come at any read).
import {
  AdamW,
  analyzeConfig,
  analyzeTensors,
  BatchSampler,
  CharTokenizer,
  ChatSession,
  chatTokenIds,
  clipGradNorm,
  clipGradNormAsync,
  createStepper,
  Decoder,
  formatAnalysis,
  GPT,
  type GPTConfig,
  type LoadedModel,
  learningRate,
  loadModelFiles,
  MinigptError,
  makeConfig,
  modelFilesAsync,
  neverLearnedToEndReplies,
  noGrad,
  Rng,
  type RngState,
  type ScheduleOptions,
  type Stepper,
  scope,
  splitTokens,
  Tensor,
  TextStreamer,
  type Tokenizer,
  tokenizerFromHuggingFaceJson,
  topTokens,
  traceForward,
  traceForwardAsync,
  trainBpe,
  unseenSpecialIds,
  unzipModelFiles,
  zipModelFiles,
} from "minigpt-ts/browser";
import { startEngine } from "./engine.js";
import {
  type BackendChoice,
  type FromWorker,
  type Metric,
  PRESETS,
  type Preset,
  type PresetEstimate,
  type RunStatus,
  type RunSummary,
  type SamplingSettings,
  type ToWorker,
  type TrainRequest,
} from "./protocol.js";
import { clearRun, loadRun, type SavedRun, saveRun } from "./store.js";

const post = (m: FromWorker, transfer: Transferable[] = []): void => (self as unknown as Worker).postMessage(m, transfer);

/**
 * save the run this often while it trains (and on pause, stop and at the end): a run should be saved at
 * least every 30 s, and a save (every tensor and its AdamW moments cloned into IndexedDB) costs CPU
 * the training threads would otherwise have; checked between steps, hence the margin
 */
const SAVE_MS = 25_000;
/**
 * send the page the steps' metrics at most this often: a message per step woke the page's main
 * thread (text, charts, layout, paint) ~18 times a second, CPU that a 2-core machine takes from the
 * training threads
 */
const METRICS_MS = 250;
/** run training steps for this long before letting messages in */
const SLICE_MS = 50;
/** validation windows per evaluation, and evaluations per run */
const EVAL_BATCHES = 4;
const EVALS_PER_RUN = 20;
/** new tokens of the samples shown while training */
const SAMPLE_TOKENS = 120;
/** data-parallel shards of a batch (as `minigpt train --grad-shards 2`: the same bits on 1 or 2 threads) */
const SHARDS = 2;
/**
 * what one thread does per second, for the presets' expected tokens/s: an estimate (the tiny preset
 * trained at ~25-33k tokens/s on 2 threads of a loaded 2-core VM, which this predicts at 35k)
 */
const FLOPS_PER_THREAD = 4e9;

interface Run {
  request: TrainRequest;
  preset: Preset;
  tokenizer: Tokenizer;
  model: GPT;
  optimizer: AdamW;
  /** forward/backward and update: data parallel over Web Workers when isolated (the trainer's stepper) */
  stepper: Stepper | null;
  train: Int32Array;
  val: Int32Array;
  batchRng: Rng;
  sampler: BatchSampler;
  schedule: ScheduleOptions;
  step: number;
  metrics: Metric[];
  samples: { step: number; text: string }[];
  status: RunStatus;
  msPerStep: number | null;
  savedAt: number | null;
}

/** the model generate and inspect use: the run's, or one loaded from a file */
let current: (LoadedModel & { label: string }) | null = null;
/** `current` came from a file (Models), not from the run */
let loadedFromFile = false;
let run: Run | null = null;
let threads = 1;
/** the models live on the GPU (the webgpu backend): their values are read asynchronously */
let onGpu = false;
let stopGenerating = false;
let generating = false;

const isolated = (): boolean => (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated === true;

/** let queued messages (pause, stop) in: a message-channel round trip, without setTimeout's clamping */
const channel = new MessageChannel();
const waiting: (() => void)[] = [];
channel.port1.onmessage = () => waiting.shift()?.();
const yieldToMessages = (): Promise<void> =>
  new Promise((resolve) => {
    waiting.push(resolve);
    channel.port2.postMessage(0);
  });

function makeTokenizer(text: string, kind: TrainRequest["tokenizer"], vocabSize: number): Tokenizer {
  return kind === "char" ? CharTokenizer.fromText(text) : trainBpe(text, { vocabSize });
}

function configOf(preset: Preset, vocabSize: number): GPTConfig {
  return makeConfig({ vocabSize, nLayer: preset.nLayer, nHead: preset.nHead, nEmbd: preset.nEmbd, blockSize: preset.blockSize });
}

function estimates(vocabSize: number): PresetEstimate[] {
  return PRESETS.map((p) => {
    const a = analyzeConfig(configOf(p, vocabSize), { batchSize: p.batchSize });
    return {
      parameters: a.parameters.total,
      trainingBytes: a.memory.training.total,
      tokensPerS: (FLOPS_PER_THREAD * threads) / a.flops.trainingPerToken,
    };
  });
}

function summary(r: Run): RunSummary {
  return {
    status: r.status,
    label: runLabel(r.request),
    step: r.step,
    maxSteps: r.request.maxSteps,
    parameters: r.model.parameterCount(),
    tokenizer: r.tokenizer.kind,
    vocabSize: r.tokenizer.vocabSize,
    metrics: r.metrics,
    samples: r.samples,
    etaS: eta(r),
    savedAt: r.savedAt,
  };
}

const eta = (r: Run): number | null => (r.msPerStep === null ? null : ((r.request.maxSteps - r.step) * r.msPerStep) / 1000);

/** a model's memory need, checked before it is made: wasm32 memory ends at 4 GiB */
const WASM_LIMIT_BYTES = 4 * 2 ** 30;

/** what a loaded model trains with: its own shape, and `minigpt train --init DIR`'s batch and learning rate */
function loadedShape(base: NonNullable<TrainRequest["base"]>): Preset {
  const c = base.config;
  return { name: base.label, nLayer: c.nLayer, nHead: c.nHead, nEmbd: c.nEmbd, blockSize: c.blockSize, batchSize: 12, lr: 1e-3 };
}

/** the model loaded in Models, for the run to take over */
function takeLoaded(): LoadedModel & { label: string } {
  const m = current;
  if (!m || !loadedFromFile)
    throw new MinigptError("no model is loaded: load a model folder or .zip in Models first, or start a new model");
  return m;
}

/** the training text's tokens; a vocabulary made elsewhere may lack some of its characters */
function encodeText(tokenizer: Tokenizer, text: string, base: TrainRequest["base"]): Int32Array {
  const unknown = new Set<string>();
  const ids = tokenizer.encode(text, { specialsAsText: true, onUnknown: (p) => unknown.add(p) });
  if (unknown.size > 0) {
    const shown = [...unknown].slice(0, 8).map((p) => JSON.stringify(p));
    throw new MinigptError(
      `the text has ${unknown.size} character${unknown.size === 1 ? "" : "s"} that ${base ? base.label : "the model"}'s vocabulary lacks (${shown.join(" ")}${unknown.size > 8 ? " …" : ""}): remove them, or start a new model on this text`,
    );
  }
  return Int32Array.from(ids);
}

async function startRun(request: TrainRequest, saved?: SavedRun): Promise<void> {
  disposeRun();
  // a loaded model trained further: its weights now (a restored run gets them from the save)
  const init = request.continueLoaded && !saved ? takeLoaded() : null;
  if (init) request = { ...request, base: { label: init.label, config: init.model.config } };
  const preset = request.base ? loadedShape(request.base) : (PRESETS[request.preset] as Preset);
  const tokenizer = saved
    ? tokenizerFromHuggingFaceJson(saved.tokenizer)
    : (init?.tokenizer ?? makeTokenizer(request.text, request.tokenizer, request.vocabSize));
  const ids = encodeText(tokenizer, request.text, request.base);
  const { train, val } = splitTokens(ids);
  const need = preset.blockSize + 1;
  if (val.length < need)
    throw new MinigptError(
      request.base
        ? `the text is too short for ${request.base.label} (context ${preset.blockSize}): ${ids.length} tokens, and its validation tenth needs at least ${need}; paste more text`
        : `the text is too short for the ${preset.name} preset: ${ids.length} tokens, and its validation tenth needs at least ${need}; paste more text or pick a smaller preset`,
    );
  const config = request.base?.config ?? configOf(preset, tokenizer.vocabSize);
  const memory = analyzeConfig(config, { batchSize: preset.batchSize }).memory.training.total;
  if (memory > WASM_LIMIT_BYTES * 0.75)
    throw new MinigptError(
      `the ${preset.name} preset needs about ${(memory / 2 ** 30).toFixed(1)} GiB to train, more than a page may use; pick a smaller one`,
    );
  let model: GPT;
  try {
    model = init?.model ?? new GPT(config, request.seed);
  } catch (err) {
    throw outOfMemory(err, preset);
  }
  const optimizer = new AdamW(model.params, { lr: preset.lr, beta1: 0.9, beta2: 0.99, weightDecay: 0.1 });
  const batchRng = new Rng(request.seed + 1);
  const schedule: ScheduleOptions = {
    lr: preset.lr,
    minLr: preset.lr / 10,
    warmupSteps: Math.min(100, Math.floor(request.maxSteps / 10)),
    decaySteps: request.maxSteps,
  };
  run = {
    request,
    preset,
    tokenizer,
    model,
    optimizer,
    stepper: null,
    train,
    val,
    batchRng,
    sampler: new BatchSampler(train, preset.blockSize, preset.batchSize, batchRng, "the training split"),
    schedule,
    step: 0,
    metrics: [],
    samples: [],
    status: "training",
    msPerStep: null,
    savedAt: null,
  };
  if (saved) restoreState(run, saved);
  // data parallel splits a step over CPU threads; on the GPU the step runs whole (trainStepOnGpu)
  run.stepper = onGpu ? null : await createStepper(model, threads, SHARDS);
  // the run's model is the one generate and inspect use now (a loaded one it did not take is freed)
  if (current && current.model !== model) current.model.dispose();
  current = { model, tokenizer, info: {}, label: runLabel(request) };
  loadedFromFile = false;
  postModel(current, false);
}

/** tell the page which model generate, chat and inspect use now */
function postModel(m: LoadedModel & { label: string }, loaded: boolean): void {
  const ids = chatTokenIds(m.tokenizer);
  post({
    type: "model",
    label: m.label,
    parameters: m.model.parameterCount(),
    vocabSize: m.tokenizer.vocabSize,
    loaded,
    // chat-tuned: a loaded model whose vocabulary has the chat tokens and that (when its folder says
    // what it learned) learned to end a reply; the page's own runs learn plain text
    chat: loaded && ids !== undefined && !neverLearnedToEndReplies(m.info, m.tokenizer),
    system: ids?.system !== undefined,
  });
}

/** what the run's model is called: the text it learns, and the model it started from */
const runLabel = (r: TrainRequest): string => (r.base ? `${r.base.label} trained further on ${r.source}` : r.source);

function outOfMemory(err: unknown, preset: Preset): Error {
  const text = err instanceof Error ? err.message : String(err);
  if (err instanceof RangeError || /memory/i.test(text))
    return new MinigptError(
      PRESETS.includes(preset)
        ? `out of memory for the ${preset.name} preset (${text}); pick a smaller preset, or close other tabs and try again`
        : `out of memory training ${preset.name} (${text}); close other tabs and try again, or train a smaller model`,
    );
  return err instanceof Error ? err : new Error(text);
}

function restoreState(r: Run, saved: SavedRun): void {
  for (const [name, p] of r.model.params) {
    const t = saved.tensors[name];
    if (!t) throw new Error(`the saved run has no tensor ${name}`);
    p.write(t.w);
    (r.optimizer.m.get(name) as Tensor).write(t.m);
    (r.optimizer.v.get(name) as Tensor).write(t.v);
  }
  r.optimizer.step = saved.step;
  r.step = saved.step;
  r.batchRng.setState(saved.batchRng as RngState);
  r.metrics = saved.metrics;
  r.samples = saved.samples;
  r.status = "paused";
  r.savedAt = saved.savedAt;
}

/** IndexedDB's writes in the order they were asked for: a save goes on while training does */
let storeQueue: Promise<unknown> = Promise.resolve();
function queued<T>(op: () => Promise<T>): Promise<T> {
  const done = storeQueue.then(op);
  storeQueue = done.catch(() => undefined);
  return done;
}
const clearSaved = (): Promise<unknown> => queued(clearRun);

/**
 * Save the run as it is now: its tensors, moments and history are copied at once (every read starts
 * here: on the GPU it is recorded before any later step's kernels), so training may go on while the
 * values come back and IndexedDB writes them (the promise settles when they are written).
 */
function save(r: Run): Promise<void> {
  const reads = [...r.model.params].map(([name, p]) =>
    Promise.all([p, r.optimizer.m.get(name) as Tensor, r.optimizer.v.get(name) as Tensor].map((t) => t.read())).then(
      ([w, m, v]) => [name, { w, m, v }] as [string, SavedRun["tensors"][string]],
    ),
  );
  const at = Date.now();
  const saved: Omit<SavedRun, "tensors"> = {
    request: r.request,
    tokenizer: r.tokenizer.toHuggingFaceJson(),
    step: r.step,
    batchRng: r.batchRng.getState(),
    metrics: r.metrics.slice(),
    samples: r.samples.slice(),
    savedAt: at,
  };
  return queued(async () => saveRun({ ...saved, tensors: Object.fromEntries(await Promise.all(reads)) })).then(() => {
    r.savedAt = at;
    post({ type: "saved", at });
  });
}

function disposeRun(): void {
  if (!run) return;
  run.stepper?.dispose();
  if (current?.model === run.model) current = null;
  run.model.dispose();
  for (const t of [...run.optimizer.m.values(), ...run.optimizer.v.values()]) t.dispose();
  run = null;
}

function trainStep(r: Run): number {
  const lr = learningRate(r.step, r.schedule);
  const { model, preset } = r;
  const stepper = r.stepper as Stepper;
  model.zeroGrad();
  const loss = scope(() => {
    const { x, y } = r.sampler.next();
    const shape = [preset.batchSize, preset.blockSize];
    return stepper.forwardBackward(Tensor.ints(x, shape), Tensor.ints(y, shape), 1, undefined, true);
  });
  // on the CPU backends the loss is there at once; a GPU model trains through trainStepOnGpu
  if (typeof loss !== "number") throw new Error("trainStep is the CPU backends' step; a GPU model uses trainStepOnGpu");
  stepper.update(() => {
    clipGradNorm(model.params.values(), 1.0);
    r.optimizer.update(lr);
  });
  r.step++;
  return loss;
}

/**
 * trainStep on the GPU: the whole batch at once, clipped and updated there; the loss and the
 * gradient norm are read back together, the step's one wait.
 */
async function trainStepOnGpu(r: Run): Promise<number> {
  const lr = learningRate(r.step, r.schedule);
  const { model, preset } = r;
  model.zeroGrad();
  // the read starts inside the scope, ordered before the loss's memory is reused
  const loss = scope(() => {
    const { x, y } = r.sampler.next();
    const shape = [preset.batchSize, preset.blockSize];
    const l = model.forward(Tensor.ints(x, shape), { targets: Tensor.ints(y, shape) }).loss as Tensor;
    l.backward();
    return l.read();
  });
  const clipped = clipGradNormAsync(model.params.values(), 1.0);
  r.optimizer.update(lr);
  await clipped;
  r.step++;
  return (await loss)[0] as number;
}

async function validationLoss(r: Run): Promise<number> {
  const sampler = new BatchSampler(r.val, r.preset.blockSize, r.preset.batchSize, new Rng(7), "the validation split");
  const losses = noGrad(() =>
    Array.from({ length: EVAL_BATCHES }, () =>
      scope(() => {
        const { x, y } = sampler.next();
        const shape = [r.preset.batchSize, r.preset.blockSize];
        return (r.model.forward(Tensor.ints(x, shape), { targets: Tensor.ints(y, shape) }).loss as Tensor).read();
      }),
    ),
  );
  let sum = 0;
  for (const [loss] of await Promise.all(losses)) sum += loss as number;
  return sum / EVAL_BATCHES;
}

/** a short sample of what the model writes now, from a newline (greedy-free: temperature 0.8) */
async function sampleText(model: GPT, tokenizer: Tokenizer): Promise<string> {
  const prompt = tokenizer.encode("\n", { specialsAsText: true });
  const decoder = new Decoder(model, prompt.length > 0 ? prompt : [0], {
    maxNewTokens: SAMPLE_TOKENS,
    temperature: 0.8,
    topK: 40,
    seed: 1,
  });
  const streamer = new TextStreamer(tokenizer, decoder.ids);
  let text = "";
  try {
    for (let s = await decoder.stepAsync(); s; s = await decoder.stepAsync()) text += streamer.push(s.id);
  } finally {
    decoder.dispose();
  }
  return text + streamer.finish();
}

async function trainLoop(r: Run): Promise<void> {
  const evalEvery = Math.max(1, Math.floor(r.request.maxSteps / EVALS_PER_RUN));
  let lastSave = Date.now();
  /** a save is being written (training goes on meanwhile; the next waits for it) */
  let saving = false;
  let unsent: Metric[] = [];
  let lastSent = performance.now();
  const sendMetrics = (): void => {
    if (unsent.length === 0) return;
    post({ type: "metrics", metrics: unsent, step: r.step, etaS: eta(r) });
    unsent = [];
    lastSent = performance.now();
  };
  while (run === r) {
    const sliceEnd = performance.now() + SLICE_MS;
    while (r.status === "training" && r.step < r.request.maxSteps && performance.now() < sliceEnd) {
      const t0 = performance.now();
      let loss: number;
      try {
        loss = onGpu ? await trainStepOnGpu(r) : trainStep(r);
      } catch (err) {
        // a step's activations are what usually runs out (the weights fitted): say what to do
        throw outOfMemory(err, r.preset);
      }
      if (run !== r) return; // discarded, or a new run started, while the GPU step was read
      const ms = performance.now() - t0;
      r.msPerStep = r.msPerStep === null ? ms : 0.9 * r.msPerStep + 0.1 * ms;
      const end = r.step === r.request.maxSteps;
      const metric: Metric = {
        step: r.step,
        loss,
        valLoss: r.step % evalEvery === 0 || end ? await validationLoss(r) : null,
        lr: learningRate(r.step - 1, r.schedule),
        tokensPerS: (r.preset.batchSize * r.preset.blockSize * 1000) / ms,
      };
      if (!Number.isFinite(loss))
        throw new MinigptError(`the loss became ${loss} at step ${r.step}: lower the learning rate or pick another preset`);
      r.metrics.push(metric);
      unsent.push(metric);
      if (performance.now() - lastSent >= METRICS_MS) sendMetrics();
      if (r.step % r.request.sampleEvery === 0 || end) {
        sendMetrics();
        const sample = { step: r.step, text: await sampleText(r.model, r.tokenizer) };
        r.samples.push(sample);
        post({ type: "sample", ...sample });
      }
    }
    if (r.step >= r.request.maxSteps) r.status = "done";
    if (r.status !== "training") {
      sendMetrics();
      await save(r);
      post({ type: "run", run: summary(r) });
      return;
    }
    if (!saving && Date.now() - lastSave >= SAVE_MS) {
      lastSave = Date.now();
      saving = true;
      save(r)
        .catch((err: unknown) => report(err, "saving the run"))
        .finally(() => {
          saving = false;
        });
    }
    // pause and stop get in here; the next slice sees them
    await yieldToMessages();
  }
}

async function generate(prompt: string, s: SamplingSettings, explain: boolean): Promise<void> {
  const model = current;
  if (!model) throw new MinigptError("no model yet: train one or load a model folder first");
  const ids = model.tokenizer.encode(prompt, { specialsAsText: true });
  if (ids.length === 0) throw new MinigptError("the prompt encodes to no tokens; type some text");
  const eot = model.tokenizer.specialTokenId("<|endoftext|>");
  // the options `minigpt generate` uses, so the same seed gives the same text
  const decoder = new Decoder(model.model, ids, {
    maxNewTokens: s.maxTokens,
    temperature: s.temperature,
    topK: s.topK,
    topP: s.topP,
    seed: s.seed,
    stopIds: eot === undefined ? [] : [eot],
    suppressIds: unseenSpecialIds(model),
  });
  const streamer = new TextStreamer(model.tokenizer, ids);
  generating = true;
  stopGenerating = false;
  let reason: "length" | "stopped" | "end" = "length";
  try {
    let sliceEnd = performance.now() + SLICE_MS;
    for (let step = await decoder.stepAsync(); step; step = await decoder.stepAsync()) {
      const top = explain ? topTokens(step.logits, 5).map((t) => ({ token: model.tokenizer.tokenString(t.id), p: t.p })) : null;
      post({ type: "delta", text: streamer.push(step.id), top });
      if (performance.now() > sliceEnd) {
        await yieldToMessages();
        sliceEnd = performance.now() + SLICE_MS;
      }
      if (stopGenerating) {
        reason = "stopped";
        break;
      }
    }
    if (reason !== "stopped" && decoder.produced < s.maxTokens) reason = "end";
    post({ type: "delta", text: streamer.finish(), top: null });
  } finally {
    decoder.dispose();
    generating = false;
  }
  post({ type: "generated", reason });
}

/** the conversation with the current model (a new one when the model changed) */
let chat: { model: GPT; session: ChatSession } | null = null;

/** a user message and the reply streamed, as `minigpt chat` answers it (the same settings give the same text) */
async function chatSend(text: string, system: string, s: SamplingSettings): Promise<void> {
  const m = current;
  if (!m) throw new MinigptError("no model yet: load a chat-tuned model folder first");
  if (!chat || chat.model !== m.model)
    chat = { model: m.model, session: new ChatSession(m.model, m.tokenizer, { suppressIds: unseenSpecialIds(m) }, m.label) };
  const session = chat.session;
  session.setSystem(system);
  session.options = { ...session.options, temperature: s.temperature, topK: s.topK, topP: s.topP, maxNewTokens: s.maxTokens, seed: s.seed };
  generating = true;
  stopGenerating = false;
  let reason: "end" | "length" | "stopped" = "end";
  // on the GPU each token's logits are read back asynchronously (the same text as send gives)
  const events = onGpu ? session.sendAsync(text) : session.send(text);
  try {
    let sliceEnd = performance.now() + SLICE_MS;
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
      if (performance.now() > sliceEnd) {
        await yieldToMessages();
        sliceEnd = performance.now() + SLICE_MS;
      }
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

async function inspect(prompt: string): Promise<void> {
  const m = current;
  if (!m) throw new MinigptError("no model yet: train one or load a model folder first");
  let ids = m.tokenizer.encode(prompt, { specialsAsText: true });
  if (ids.length === 0) throw new MinigptError("the prompt encodes to no tokens; type some text");
  ids = ids.slice(-m.model.config.blockSize);
  // on the GPU the activations are read back together, asynchronously
  const trace = onGpu ? await traceForwardAsync(m.model, ids) : traceForward(m.model, ids);
  const a = analyzeTensors(m.model.config, m.model.params, { batchSize: run?.preset.batchSize ?? 12 });
  post({
    type: "inspected",
    result: {
      tokens: ids.map((id) => ({ id, text: m.tokenizer.decode([id]) })),
      attention: trace.attention.map((layer) => layer.map((head) => Array.from(head))),
      nLayer: m.model.config.nLayer,
      nHead: m.model.config.nHead,
      next: topTokens(trace.nextLogits, 5).map((t) => ({ token: m.tokenizer.tokenString(t.id), p: t.p })),
      analysis: formatAnalysis(a),
      groups: a.parameters.groups,
    },
  });
}

async function download(): Promise<void> {
  const m = current;
  if (!m) throw new MinigptError("no model yet: train one or load a model folder first");
  const info =
    run && m.model === run.model
      ? {
          data: run.request.source,
          steps: run.step,
          trained_in: "minigpt web",
          ...(run.request.base ? { init: run.request.base.label } : {}),
        }
      : m.info;
  const bytes = zipModelFiles(await modelFilesAsync(m.model, m.tokenizer, info));
  const name = `${m.label.replace(/\.[a-z]+$/i, "").replace(/[^\w.-]+/g, "-") || "model"}.zip`;
  post({ type: "zip", name, bytes }, [bytes.buffer]);
}

function load(name: string, files: Record<string, Uint8Array> | null, zip: Uint8Array | null): void {
  const loaded = loadModelFiles(files ?? unzipModelFiles(zip as Uint8Array, name), name);
  if (current && current.model !== run?.model) current.model.dispose();
  current = { ...loaded, label: name };
  loadedFromFile = true;
  postModel(current, true);
}

async function hello(choice: BackendChoice): Promise<void> {
  threads = isolated() ? Math.max(1, Math.min(SHARDS, navigator.hardwareConcurrency || 1)) : 1;
  const engine = await startEngine(choice, threads);
  onGpu = engine.backend === "webgpu";
  post({ type: "ready", isolated: isolated(), engine });
  const saved = await loadRun();
  if (saved) {
    try {
      await startRun(saved.request, saved);
      if (run) post({ type: "run", run: summary(run) });
    } catch (err) {
      await clearSaved();
      report(err, "restoring the saved run (it was removed)");
    }
  }
}

function report(err: unknown, context: string): void {
  const message = err instanceof MinigptError ? err.message : err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  post({ type: "error", message, context });
}

async function handle(m: ToWorker): Promise<void> {
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
      await clearSaved();
      try {
        await startRun(m.request);
      } catch (err) {
        // the page leaves "preparing": no run, the buttons back, and the message says why
        post({ type: "run", run: emptySummary() });
        throw err;
      }
      const started = run as unknown as Run;
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
      if (generating) return;
      return generate(m.prompt, m.settings, m.explain);
    case "stopGenerate":
      stopGenerating = true;
      return;
    case "chat":
      if (generating) return;
      return chatSend(m.text, m.system, m.settings);
    case "chatReset":
      chat?.session.reset();
      return;
    case "inspect":
      return inspect(m.prompt);
    case "download":
      return download();
    case "load":
      return load(m.name, m.files, m.zip);
  }
}

function emptySummary(): RunSummary {
  return {
    status: "idle",
    label: "",
    step: 0,
    maxSteps: 0,
    parameters: 0,
    tokenizer: "",
    vocabSize: 0,
    metrics: [],
    samples: [],
    etaS: null,
    savedAt: null,
  };
}

self.onmessage = (e: MessageEvent<ToWorker>) => {
  handle(e.data).catch((err: unknown) => {
    // a failed step pauses the run (Resume tries again), and the page is told
    if (run && run.status === "training") {
      run.status = "paused";
      post({ type: "run", run: summary(run) });
    }
    report(err, e.data.type);
  });
};
