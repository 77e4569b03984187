/** The messages between the HTTP thread (worker-client.ts) and the generation thread (worker.ts). */
import type { BackendName } from "../kernels/index.js";
import type { Said } from "../wording.js";
import type { ContextOverflow, EngineEvent, ModelInfo, Started } from "./engine.js";
import type { GenerationRequest } from "./params.js";

export interface WorkerSetup {
  /** the model folder (or a checkpoint of one) */
  dir: string;
  /** the model's id in the API */
  id: string;
  contextOverflow: ContextOverflow;
  backend: BackendName | "auto";
  /** kernel threads of the wasm backend (undefined = its default) */
  threads: number | undefined;
}

export type ToWorker = { type: "start"; id: number; request: GenerationRequest } | { type: "cancel"; id: number };

interface WireError {
  status: number;
  message: string;
  type: string;
  param: string | null;
  code: string | null;
}

export type FromWorker =
  | { type: "ready"; info: ModelInfo }
  /** the model could not be loaded; user = a one-line MinigptError message, else a stack */
  | { type: "failed"; message: string; user: boolean; said?: Said["parts"] }
  /** a line for the operator (e.g. a checkpoint tidied up while loading) */
  | { type: "notice"; text: string }
  | { type: "started"; id: number; started: Started }
  | { type: "rejected"; id: number; error: WireError }
  | { type: "events"; events: EngineEvent[] };
