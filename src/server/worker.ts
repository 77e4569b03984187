/**
 * The generation thread: loads the model, then runs Engine steps back to back while any request is
 * in flight, taking new requests and cancellations between steps (setImmediate lets the messages
 * in). The HTTP thread (worker-client.ts) never touches the model, so it stays responsive however
 * long a step takes.
 */
import { parentPort, workerData } from "node:worker_threads";
import { MinigptError } from "../errors.js";
import { loadModelFolder } from "../io/folder.js";
import { deviceMemory, useBackend } from "../kernels/index.js";
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
      // e.g. out of tensor memory: the requests in flight fail with 500, the server keeps serving
      const error = new ApiError(500, `generation failed: ${e instanceof Error ? e.message : String(e)}`, "server_error");
      for (const id of engine.cancelAll()) post({ type: "rejected", id, error: { status: error.status, ...error.body.error } });
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
      const error =
        e instanceof ApiError
          ? e
          : new ApiError(500, `generation failed to start: ${e instanceof Error ? e.message : String(e)}`, "server_error");
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

main(workerData as WorkerSetup).catch((e: unknown) => {
  post({
    type: "failed",
    message: e instanceof MinigptError ? e.message : e instanceof Error ? (e.stack ?? e.message) : String(e),
    user: e instanceof MinigptError,
    // kept apart so the front end words the settings it names its own way (src/wording.ts)
    said: e instanceof MinigptError ? e.said?.parts : undefined,
  });
});
