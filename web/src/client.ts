// The page's side of the model worker: one module worker (worker.ts, bundled by Vite with the
// library), requests sent as messages, answers handed to whoever listens for their type.
import type { FromWorker, ToWorker } from "./protocol.js";

type Listener<T extends FromWorker["type"]> = (m: Extract<FromWorker, { type: T }>) => void;

export class ModelWorker {
  private readonly worker = new Worker(new URL("./worker.ts", import.meta.url), { type: "module", name: "minigpt-model" });
  private readonly listeners = new Map<string, ((m: FromWorker) => void)[]>();

  constructor(onCrash: (message: string) => void) {
    this.worker.onmessage = (e: MessageEvent<FromWorker>) => {
      for (const l of this.listeners.get(e.data.type) ?? []) l(e.data);
    };
    this.worker.onerror = (e) => {
      e.preventDefault();
      onCrash(e.message || "the model worker stopped");
    };
  }

  on<T extends FromWorker["type"]>(type: T, listener: Listener<T>): void {
    const list = this.listeners.get(type) ?? [];
    list.push(listener as (m: FromWorker) => void);
    this.listeners.set(type, list);
  }

  send(m: ToWorker, transfer: Transferable[] = []): void {
    this.worker.postMessage(m, transfer);
  }
}
