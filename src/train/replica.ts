/**
 * The entry of a data-parallel replica thread, in Node (worker_threads) and in a browser (a module
 * Web Worker on a cross-origin-isolated page): the start data comes as src/threads/workers.ts hands
 * it over; the replica itself is replica-core.ts.
 */
import { workerStart } from "../threads/workers.js";
import { type ReplicaData, serveReplica } from "./replica-core.js";

// no top-level await: from the sources the worker may run as a CommonJS bundle (src/threads/workers.ts)
void workerStart<ReplicaData>().then(({ data, post }) => serveReplica(data, post));
