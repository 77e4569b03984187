/**
 * The Node entry of a data-parallel replica thread (worker_threads): the start data comes as
 * workerData; the replica itself is replica-core.ts.
 */
import { parentPort, workerData } from "node:worker_threads";
import { type ReplicaData, serveReplica } from "./replica-core.js";

const port = parentPort;
if (!port) throw new Error("replica.ts runs as a worker thread (see parallel.ts)");
await serveReplica(workerData as ReplicaData, (m) => port.postMessage(m));
