/**
 * The browser entry of a data-parallel replica thread (a module Web Worker on a cross-origin-isolated
 * page): the start data is the first message; the replica itself is replica-core.ts.
 */
import { type ReplicaData, serveReplica } from "./replica-core.js";

const worker = globalThis as unknown as {
  onmessage: ((e: MessageEvent<ReplicaData>) => void) | null;
  postMessage(message: unknown): void;
};
worker.onmessage = (e) => {
  worker.onmessage = null;
  void serveReplica(e.data, (m) => worker.postMessage(m));
};
