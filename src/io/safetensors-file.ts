/** The safetensors file wrappers (Node only): read a file into the parser, write atomically. */
import { readFileSync } from "node:fs";
import { fail, failFs } from "../errors.js";
import { writeFileAtomic } from "./atomic.js";
import { readSafetensors, type SafetensorsFile, type TensorToWrite, writeSafetensors } from "./safetensors.js";

export function readSafetensorsFile(path: string): SafetensorsFile {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT") fail(`${path} does not exist; check the path (a model folder should contain model.safetensors)`);
    if (code === "EISDIR") fail(`${path} is a folder; give the path of a .safetensors file inside it`);
    failFs(`cannot read ${path}`, err);
  }
  return readSafetensors(bytes, path);
}

export function writeSafetensorsFile(path: string, tensors: TensorToWrite[], metadata?: Record<string, string>): void {
  writeFileAtomic(path, writeSafetensors(tensors, metadata));
}
