/**
 * Writing a whole model folder that is not a training run (minigpt quantize, minigpt merge): the
 * same rules as training's --out (io/out-folder.ts): OUT's lock is held, what a killed writer left is
 * put right first, the folder is filled beside OUT and renamed into place, and an existing model
 * folder is replaced only with `overwrite` (never a folder holding other files).
 */
import { resolve } from "node:path";
import { fail } from "../errors.js";
import { lockFolder } from "./lock.js";
import { finishReplacement, prepareOutFolder, tidyModelFolder } from "./out-folder.js";

export function writeModelFolder(
  out: string,
  from: string,
  overwrite: boolean,
  notice: (text: string) => void,
  fill: (tmp: string) => void,
): void {
  if (resolve(out) === resolve(from)) fail(`the output folder ${out} is the model being read; give another folder`);
  const lock = lockFolder(out, notice);
  try {
    tidyModelFolder(out, notice);
    prepareOutFolder(out, overwrite, "", false, fill);
    const kept = finishReplacement(out);
    if (kept !== null) notice(kept);
  } finally {
    lock.release();
  }
}
