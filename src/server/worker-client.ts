/**
 * The HTTP thread's handle on the generation thread (worker.ts): starts it, admits requests (at most
 * maxBatch in flight, at most maxQueue more waiting, 429 past that) and routes the thread's events
 * to each request's handlers.
 */
import { Worker } from "node:worker_threads";
import { fail } from "../errors.js";
import { nodeWorker } from "../threads/workers.js";
import { Said } from "../wording.js";
import { ApiError } from "./api-error.js";
import type { EngineEvent, ModelInfo, Started } from "./engine.js";
import type { GenerationRequest } from "./params.js";
import type { FromWorker, ToWorker, WorkerSetup } from "./worker-protocol.js";

interface RequestHandlers {
  started(s: Started): void;
  event(e: EngineEvent): void;
  /** the request could not run (bad prompt for this model, or the generation thread died) */
  failed(e: ApiError): void;
}

interface Admission {
  /** requests decoded together */
  maxBatch: number;
  /** requests waiting for a place in the batch before new ones get 429 */
  maxQueue: number;
}

/** Retry-After (seconds) of a 429: roughly when a place in the queue frees up */
export const RETRY_AFTER_S = 1;

export class GenerationWorker {
  private nextId = 1;
  private readonly inFlight = new Map<number, RequestHandlers>();
  private readonly waiting: { id: number; request: GenerationRequest; handlers: RequestHandlers }[] = [];
  /** why the generation thread is gone, once it is */
  dead: string | null = null;

  private constructor(
    private readonly worker: Worker,
    readonly info: ModelInfo,
    private readonly admission: Admission,
  ) {
    worker.on("message", (m: FromWorker) => this.receive(m));
    const die = (why: string) => {
      if (this.dead) return;
      this.dead = why;
      const error = new ApiError(500, `the generation thread stopped: ${why}`, "server_error");
      for (const h of [...this.inFlight.values(), ...this.waiting.map((w) => w.handlers)]) h.failed(error);
      this.inFlight.clear();
      this.waiting.length = 0;
    };
    worker.on("error", (e) => die(e.message));
    worker.on("exit", (code) => die(`exit code ${code}`));
  }

  /** Start the thread and load the model; a MinigptError (one line) when the folder cannot be served. */
  static async start(setup: WorkerSetup, admission: Admission, notice: (text: string) => void): Promise<GenerationWorker> {
    // started as every minigpt worker is (src/threads/workers.ts); not bundled from the sources:
    // the thread loads the wasm kernels from next to their module (import.meta.url)
    const worker = nodeWorker(Worker, { from: import.meta.url, name: "worker", bundle: false }, { workerData: setup });
    // a failure's message with the settings it names kept apart (set before the rejection)
    let said: Said | undefined;
    try {
      const info = await new Promise<ModelInfo>((resolve, reject) => {
        const onMessage = (m: FromWorker) => {
          if (m.type === "notice") notice(m.text);
          else if (m.type === "ready") {
            worker.off("message", onMessage);
            resolve(m.info);
          } else if (m.type === "failed") {
            if (m.said) said = new Said(m.said);
            reject(m.user ? new Error(m.message) : new Error(`the generation thread failed to start: ${m.message}`));
          }
        };
        worker.on("message", onMessage);
        worker.once("error", reject);
        worker.once("exit", (code) => reject(new Error(`the generation thread exited (code ${code}) while loading ${setup.dir}`)));
      });
      return new GenerationWorker(worker, info, admission);
    } catch (e) {
      void worker.terminate();
      return fail(said ?? (e instanceof Error ? e.message : String(e)));
    }
  }

  /** Queue a request; throws ApiError 429 when the queue is full. Returns its id (for cancel). */
  submit(request: GenerationRequest, handlers: RequestHandlers): number {
    if (this.dead) throw new ApiError(503, `the generation thread stopped: ${this.dead}`, "server_error");
    if (this.inFlight.size >= this.admission.maxBatch && this.waiting.length >= this.admission.maxQueue)
      throw new ApiError(
        429,
        `too many requests: ${this.inFlight.size} in flight and ${this.waiting.length} waiting; retry later`,
        "rate_limit_error",
        null,
        "rate_limit_exceeded",
      );
    const id = this.nextId++;
    this.waiting.push({ id, request, handlers });
    this.admit();
    return id;
  }

  /** Stop a request (its client left or its time ran out): it leaves the queue or the batch. */
  cancel(id: number): void {
    const at = this.waiting.findIndex((w) => w.id === id);
    if (at >= 0) this.waiting.splice(at, 1);
    else if (this.inFlight.delete(id)) {
      this.send({ type: "cancel", id });
      this.admit();
    }
  }

  get load(): { inFlight: number; waiting: number } {
    return { inFlight: this.inFlight.size, waiting: this.waiting.length };
  }

  async close(): Promise<void> {
    this.dead ??= "closed";
    await this.worker.terminate();
  }

  private admit(): void {
    while (this.inFlight.size < this.admission.maxBatch && this.waiting.length > 0) {
      const next = this.waiting.shift();
      if (!next) break;
      this.inFlight.set(next.id, next.handlers);
      this.send({ type: "start", id: next.id, request: next.request });
    }
  }

  private send(m: ToWorker): void {
    this.worker.postMessage(m);
  }

  private receive(m: FromWorker): void {
    if (m.type === "started") this.inFlight.get(m.id)?.started(m.started);
    else if (m.type === "rejected") {
      const h = this.inFlight.get(m.id);
      this.inFlight.delete(m.id);
      this.admit();
      h?.failed(new ApiError(m.error.status, m.error.message, m.error.type as ApiError["type"], m.error.param, m.error.code));
    } else if (m.type === "events") {
      for (const e of m.events) {
        const h = this.inFlight.get(e.id);
        if (!h) continue;
        if (e.type === "done") {
          this.inFlight.delete(e.id);
          this.admit();
        }
        h.event(e);
      }
    }
  }
}
