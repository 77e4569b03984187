/**
 * Starting a module worker thread the same way in Node and in a browser, and the worker's side of
 * its start: the kernel pool's helpers (src/kernels/wasm/pool-worker.ts) and the data-parallel
 * replicas (src/train/replica.ts) start so; the token cache's threads (src/data/tokenize-pool.ts),
 * which a synchronous API starts, through nodeWorker.
 *
 * Node: a worker_threads Worker on the entry file next to the calling module (.js from dist/). From
 * the TypeScript sources (tsx), workers do not inherit --import hooks: the entry and what it imports
 * are bundled into one CommonJS script by esbuild (tsx's own compiler), once per process, and the
 * worker runs that; without esbuild, the worker registers tsx's loader and imports the .ts file
 * (measured under load ~20 on 2 cores: a worker started from the bundle answered in ~0.5 s, with
 * tsx's loader in ~3.3 s, each start). Browser: a module Web Worker the caller makes itself, written at its call
 * site as `new Worker(new URL("./entry.js", import.meta.url), { type: "module" })` so that bundlers
 * see the entry; it needs a cross-origin-isolated page for shared memory.
 *
 * The start data goes as workerData (Node) or the first message (browser); the worker answers with
 * one message when it is ready, or {error: message} when it could not start.
 */
import type { Worker as NodeWorker, WorkerOptions } from "node:worker_threads";
import { inNode } from "../kernels/wasm/platform.js";

/** a browser worker that has not answered after this long failed to start */
const START_MS = 30_000;

export interface WorkerEntry {
  /** the caller's import.meta.url */
  readonly from: string;
  /** the entry's file name without extension, next to the caller */
  readonly name: string;
  /** browser: make the module Web Worker (see above) */
  readonly web: () => Worker;
  /** Node, from the sources: false where the entry's imports need their import.meta.url (a bundle has none): tsx's loader instead */
  readonly bundle?: boolean;
}

/** a started worker thread */
export interface Thread {
  /** do not keep the process alive for it (Node; no-op in a browser) */
  detach(): void;
  terminate(): void;
}

/**
 * Start `entry` with `data`; resolves with the thread and its first message once it has sent one
 * (`what` names the thread in errors: "wasm pool worker 1").
 */
export async function startWorker<M>(entry: WorkerEntry, data: unknown, what: string): Promise<{ thread: Thread; message: M }> {
  return inNode ? startNode(entry, data, what) : startWeb(entry, data, what);
}

function startFailed(what: string, why: string): Error {
  return new Error(`${what} failed to start: ${why}`);
}

function checked<M>(m: unknown, what: string): M {
  const error = (m as { error?: unknown } | null)?.error;
  if (typeof error === "string") throw startFailed(what, error);
  return m as M;
}

/** from the sources: each entry bundled once per process (null: not possible here) */
const bundles = new Map<string, string | null>();

/**
 * Node, from the sources: the entry `file` and all it imports as one CommonJS script, made by esbuild
 * (tsx's compiler) once per process, synchronously; null where it cannot be made: without esbuild,
 * on a Node before 20.16 (no process.getBuiltinModule, which a module that also runs in browsers
 * needs to load Node's own), or for an entry that uses top-level await. A bundle has no
 * import.meta.url (esbuild leaves it empty in CommonJS): an entry whose imports need it opts out.
 */
function bundle(file: URL): string | null {
  let b = bundles.get(file.href);
  if (b === undefined) {
    try {
      const nodeModule = process.getBuiltinModule?.("node:module");
      const nodeUrl = process.getBuiltinModule?.("node:url");
      if (!nodeModule || !nodeUrl) throw new Error("no process.getBuiltinModule");
      // the name in a variable: a bundler building a page must not pull esbuild (a Node tool) in
      const name = "esbuild";
      const esbuild = nodeModule.createRequire(import.meta.url)(name) as {
        buildSync(o: object): { outputFiles: { text: string }[] };
      };
      const out = esbuild.buildSync({
        entryPoints: [nodeUrl.fileURLToPath(file)],
        bundle: true,
        format: "cjs",
        platform: "node",
        write: false,
        logLevel: "silent",
      });
      b = out.outputFiles[0]?.text ?? null;
    } catch {
      b = null;
    }
    bundles.set(file.href, b);
  }
  return b;
}

/**
 * Node: a worker_threads Worker on `entry` (its file `name` next to `from`), started at once with
 * `options`: from dist/, the .js file; from the TypeScript sources, its bundle (above), or without
 * one, a script that registers tsx's loader (workers do not inherit --import hooks) and imports the
 * .ts file. `Worker` is node:worker_threads' (this module also runs in browsers, so it cannot
 * import that module itself without waiting).
 */
export function nodeWorker(
  Worker: typeof NodeWorker,
  entry: Pick<WorkerEntry, "from" | "name" | "bundle">,
  options: WorkerOptions,
): NodeWorker {
  const fromSource = entry.from.endsWith(".ts");
  const url = new URL(`./${entry.name}${fromSource ? ".ts" : ".js"}`, entry.from);
  if (!fromSource) return new Worker(url, options);
  const script =
    (entry.bundle === false ? null : bundle(url)) ??
    `import(${JSON.stringify(import.meta.resolve("tsx/esm/api"))}).then((t) => { t.register(); return import(${JSON.stringify(url.href)}); });`;
  return new Worker(script, { ...options, eval: true });
}

async function startNode<M>(entry: WorkerEntry, data: unknown, what: string): Promise<{ thread: Thread; message: M }> {
  const { Worker } = await import("node:worker_threads");
  const worker = nodeWorker(Worker, entry, { workerData: data });
  try {
    const message = await new Promise<M>((resolve, reject) => {
      worker.once("message", (m) => {
        try {
          resolve(checked<M>(m, what));
        } catch (e) {
          reject(e);
        }
      });
      worker.once("error", (e) => reject(startFailed(what, e.message)));
      worker.once("exit", (code) => reject(startFailed(what, `it exited (code ${code})`)));
    });
    worker.removeAllListeners("exit");
    worker.removeAllListeners("error");
    return { thread: { detach: () => worker.unref(), terminate: () => void worker.terminate() }, message };
  } catch (e) {
    void worker.terminate();
    throw e;
  }
}

async function startWeb<M>(entry: WorkerEntry, data: unknown, what: string): Promise<{ thread: Thread; message: M }> {
  const worker = entry.web();
  try {
    const message = await new Promise<M>((resolve, reject) => {
      const timer = setTimeout(() => reject(startFailed(what, `no answer within ${START_MS / 1000} s`)), START_MS);
      const fail = (why: string) => {
        clearTimeout(timer);
        reject(startFailed(what, why));
      };
      worker.onmessage = (e: MessageEvent) => {
        clearTimeout(timer);
        try {
          resolve(checked<M>(e.data, what));
        } catch (err) {
          reject(err);
        }
      };
      worker.onerror = (e) => {
        e.preventDefault();
        fail(e.message || "error");
      };
      worker.onmessageerror = () => fail("its start message could not be received");
      worker.postMessage(data);
    });
    worker.onmessage = null;
    worker.onerror = null;
    worker.onmessageerror = null;
    return { thread: { detach: () => {}, terminate: () => worker.terminate() }, message };
  } catch (e) {
    worker.terminate();
    throw e;
  }
}

/**
 * The worker's side: its start data, and how to send a message to the thread that started it (Node:
 * workerData and parentPort; browser: the first message and self.postMessage).
 */
export async function workerStart<D>(): Promise<{ data: D; post: (m: unknown) => void }> {
  if (inNode) {
    const { workerData, parentPort } = await import("node:worker_threads");
    const port = parentPort;
    if (!port) throw new Error("this module runs as a worker thread");
    return { data: workerData as D, post: (m) => port.postMessage(m) };
  }
  const self = globalThis as unknown as {
    onmessage: ((e: MessageEvent<D>) => void) | null;
    postMessage(m: unknown): void;
  };
  const data = await new Promise<D>((resolve) => {
    self.onmessage = (e) => {
      self.onmessage = null;
      resolve(e.data);
    };
  });
  return { data, post: (m) => self.postMessage(m) };
}
