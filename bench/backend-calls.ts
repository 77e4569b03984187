// Every kernel of the Backend interface on the current backend wrapped with a wall-clock timer (the
// ref backend has exactly the interface's kernels; optional ones such as trunkRows are wrapped where
// the backend has them): where a generated token's or a decode step's time goes, kernel by kernel.
// Calls made while `on()` is false, and calls made from inside a timed call, are passed through.
import { backend } from "../src/index.js";
import { refBackend } from "../src/kernels/ref/index.js";

/** a timed call: the kernel's name, its arguments, its wall time in ms */
export type CallRecord = (name: string, args: readonly unknown[], ms: number) => void;

/** wrap the current backend's kernels on its instance; `record` gets each timed call */
export function timeBackendCalls(on: () => boolean, record: CallRecord): void {
  const be = backend() as unknown as Record<string, unknown>;
  let depth = 0;
  for (const name of [...Object.keys(refBackend), "trunkRows"]) {
    const f = be[name];
    if (typeof f !== "function") continue;
    be[name] = function (this: unknown, ...args: unknown[]) {
      if (!on() || depth > 0) return (f as (...a: unknown[]) => unknown).apply(this, args);
      depth++;
      const t0 = performance.now();
      try {
        return (f as (...a: unknown[]) => unknown).apply(this, args);
      } finally {
        depth--;
        record(name, args, performance.now() - t0);
      }
    };
  }
}
