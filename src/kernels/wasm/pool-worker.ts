/**
 * A helper thread of the kernel pool (pool.ts), in Node (worker_threads) and in a browser (a module
 * Web Worker). It instantiates the kernels' module on the shared tensor memory, says it is ready,
 * then runs the kernel calls posted in its control block (src/threads/control.ts) until told to
 * exit. A kernel that throws (a wasm trap) fails its task with the message; the caller rethrows it.
 */
import { ControlBlock, EXIT, Waiter } from "../../threads/control.js";
import { workerStart } from "../../threads/workers.js";
import { callKernel, type PoolInit, poolShape } from "./pool.js";

/** the helper's whole life (no top-level await: the worker may run as a CommonJS bundle, src/threads/workers.ts) */
function serve(data: PoolInit, post: (m: unknown) => void): void {
  let block: ControlBlock;
  let kernels: ((...a: number[]) => void)[];
  try {
    const { module, memory, buffer, slot, helpers, names } = data;
    block = new ControlBlock(buffer, slot, helpers, poolShape);
    const exports = new WebAssembly.Instance(module, { env: { memory } }).exports as Record<string, unknown>;
    kernels = names.map((n) => {
      const k = exports[n];
      if (typeof k !== "function") throw new Error(`the kernels have no export ${n}`);
      return k as (...a: number[]) => void;
    });
  } catch (e) {
    post({ error: e instanceof Error ? e.message : String(e) });
    return;
  }
  post("ready");

  const waiter = new Waiter({ spinMs: data.spinMs });
  for (;;) {
    const op = block.next(waiter);
    if (op === EXIT) break;
    try {
      callKernel(kernels[op] as (...a: number[]) => void, block.args);
      block.finish();
    } catch (e) {
      block.finish(e);
    }
  }
  if (typeof process === "undefined") (globalThis as unknown as { close(): void }).close();
}

void workerStart<PoolInit>().then(({ data, post }) => serve(data, post));
