/**
 * The generation thread: loads the model, then runs Engine steps back to back while any request is
 * in flight, taking new requests and cancellations between steps (setImmediate lets the messages
 * in). The HTTP thread (worker-client.ts) never touches the model, so it stays responsive however
 * long a step takes.
 */
import { parentPort, workerData } from "node:worker_threads";
import { MinigptError, outOfMemory } from "../errors.js";
import { loadModelFolder } from "../io/folder.js";
import { deviceMemory, useBackend } from "../kernels/index.js";
import { said, setting } from "../wording.js";
import { ApiError } from "./api-error.js";
import { Engine } from "./engine.js";
import type { FromWorker, ToWorker, WorkerSetup } from "./worker-protocol.js";

if (!parentPort) throw new Error("src/server/worker.ts runs as a worker thread (see worker-client.ts)");
const port = parentPort;
const post = (m: FromWorker) => port.postMessage(m);

async function main(setup: WorkerSetup): Promise<void> {
  if (setup.backend === "auto") {
    try {
      await useBackend("wasm", { threads: setup.threads });
    } catch {
      await useBackend("ref");
    }
  } else await useBackend(setup.backend, { threads: setup.threads });
  const folder = loadModelFolder(setup.dir, (text) => post({ type: "notice", text }), "decode");
  const engine = new Engine(folder, setup.id, setup.contextOverflow);
  // a GPU's logits are read back asynchronously: its steps are awaited, the CPU's run straight through
  const onGpu = deviceMemory() !== null;
  let running = false;
  const tick = async () => {
    if (!engine.busy) {
      running = false;
      return;
    }
    try {
      const events = onGpu ? await engine.stepAsync() : engine.step();
      if (events.length > 0) post({ type: "events", events });
    } catch (e) {
      // e.g. out of tensor memory: the requests in flight fail with 500, the server keeps serving;
      // their rows' KV caches (each the model's block) are what grows with maxBatch
      const ids = engine.cancelAll();
      const error = new ApiError(500, `generation failed: ${failureText(e, engine)}`, "server_error");
      for (const id of ids) post({ type: "rejected", id, error: { status: error.status, ...error.body.error } });
    }
    setImmediate(tick);
  };
  port.on("message", (m: ToWorker) => {
    if (m.type === "cancel") {
      engine.cancel(m.id);
      return;
    }
    try {
      post({ type: "started", id: m.id, started: engine.start(m.id, m.request) });
    } catch (e) {
      const error = e instanceof ApiError ? e : new ApiError(500, `generation failed to start: ${failureText(e, engine)}`, "server_error");
      post({ type: "rejected", id: m.id, error: { status: error.status, ...error.body.error } });
      return;
    }
    if (!running) {
      running = true;
      setImmediate(tick);
    }
  });
  post({ type: "ready", info: engine.info });
}

/**
 * A failed step's or start's error for its 500 reply; out of tensor memory names what serve's memory
 * grows with beyond the model: the requests decoded together, each choice with a KV cache of its block.
 */
function failureText(e: unknown, engine: Engine): string {
  const failure = outOfMemory(
    e,
    said`Each request decoded holds a KV cache of the model's ${engine.info.blockSize} positions (one per choice): a lower ${setting("maxBatch")} decodes fewer at once`,
  );
  return failure instanceof Error ? failure.message : String(failure);
}

main(workerData as WorkerSetup).catch((e: unknown) => {
  post({
    type: "failed",
    message: e instanceof MinigptError ? e.message : e instanceof Error ? (e.stack ?? e.message) : String(e),
    user: e instanceof MinigptError,
    // kept apart so the front end words the settings it names its own way (src/wording.ts)
    said: e instanceof MinigptError ? e.said?.parts : undefined,
  });
});
