// The module worker of tests/browser/model.ts's dataParallelInWorker: training where a web app
// would run it. A worker may block in Atomics.wait, so data parallel waits and shares kernel halves
// with its replica (a worker started from this one) as it does in Node.
import { dataParallelReport } from "./steps.js";

const worker = globalThis as unknown as {
  onmessage: (() => void) | null;
  postMessage(message: unknown): void;
};
worker.onmessage = () => {
  worker.onmessage = null;
  dataParallelReport().then(
    (r) => worker.postMessage(r),
    (e: unknown) => worker.postMessage({ error: e instanceof Error ? e.message : String(e) }),
  );
};
