import { availableParallelism } from "node:os";
import { BPE_SPECIAL_TOKENS, fail, failFs } from "../index.js";
import type { FlagSpec } from "./flags.js";

/** more threads than cores only slows a step down; far more is a typo (each thread holds a model replica) */
const MAX_THREADS = 4 * availableParallelism();

const threadsFlag: FlagSpec = {
  name: "threads",
  type: "int",
  default: 0,
  min: 0,
  max: MAX_THREADS,
  help: "worker threads for the wasm backend (0 = all cores)",
};

/** the smallest --vocab-size of a trained BPE vocabulary: its 256 bytes and its special tokens (--specials adds more) */
export const BPE_MIN_VOCAB = 256 + BPE_SPECIAL_TOKENS.length;

/** --backend of the commands that run on the CPU only */
export const backendFlags: FlagSpec[] = [
  {
    name: "backend",
    type: "string",
    default: "auto",
    choices: ["auto", "wasm", "ref"],
    help: "kernels: wasm (SIMD + threads), ref (plain TypeScript), auto = wasm when available",
  },
  threadsFlag,
];

/** --backend of the commands that also run on a GPU (all but selftest): src/cli/backend.ts */
export const deviceBackendFlags: FlagSpec[] = [
  {
    name: "backend",
    type: "string",
    default: "auto",
    choices: ["auto", "webgpu", "wasm", "ref"],
    help: "kernels: webgpu (a GPU through WebGPU; in Node the optional package webgpu), wasm (SIMD + threads), ref (plain TypeScript); auto = webgpu on a hardware GPU adapter, else wasm",
  },
  threadsFlag,
];

/**
 * --model of every command that loads a model: a model folder, or a checkpoint of one (locateModel);
 * `zip` false where the folder cannot be a zip (a zip holds a whole model: not a LoRA adapter)
 */
export function modelFlag(help = "model folder", defaultDir = "out", { zip = true } = {}): FlagSpec {
  const checkpoints = "one of its checkpoints (DIR/training/checkpoint-N)";
  return {
    name: "model",
    type: "string",
    default: defaultDir,
    help: zip ? `${help}, ${checkpoints}, or a zip of one (the web page's download)` : `${help}, or ${checkpoints}`,
  };
}

export const samplingFlags: FlagSpec[] = [
  { name: "max-new-tokens", type: "int", default: 200, min: 1, help: "how many tokens to generate" },
  {
    name: "temperature",
    type: "float",
    default: 0.8,
    min: 0,
    help: "randomness: 0 = always the most likely token, 1 = the model's distribution",
  },
  { name: "top-k", type: "int", default: 0, min: 0, help: "sample only among the k most likely tokens (0 = off)" },
  {
    name: "top-p",
    type: "float",
    default: 1,
    above: 0,
    max: 1,
    help: "sample only among the most likely tokens covering probability p (1 = off)",
  },
  { name: "seed", type: "int", default: 1337, help: "random seed: the same seed gives the same text" },
];

/** a server's listen() failure (serve, web) as one line that says which flag to change */
export function failListen(err: unknown, host: string, port: number): never {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === "EADDRINUSE") fail(`port ${port} on ${host} is in use: pick another with --port (0 = any free port)`);
  if (code === "EADDRNOTAVAIL") fail(`--host ${host} is not an address of this machine`);
  // a name: looked up first (getaddrinfo), and listen() never gets as far as an address
  if (code === "ENOTFOUND")
    fail(
      `--host ${host} does not resolve to an address (no such host name); give this machine's name or an address, e.g. --host 127.0.0.1`,
    );
  if (code === "EAI_AGAIN")
    fail(`--host ${host} could not be looked up (the name server did not answer); try again, or give an address, e.g. --host 127.0.0.1`);
  if (code === "EACCES") fail(`port ${port} needs root on this system: pick one above 1023 with --port`);
  return failFs(`cannot listen on ${host}:${port}`, err);
}
