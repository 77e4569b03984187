/**
 * Where a command may write its output files (attention's HTML, a tokenizer's JSON, and the files of
 * commands to come): never over an existing file unless the user said --overwrite, and never inside
 * a model folder, whatever the flags (only training and the model-folder code write there: a file
 * dropped into one could replace its weights or its tokenizer). A command that writes a whole model
 * folder goes through the model-folder code instead, which keeps the same two rules for folders.
 */
import { existsSync } from "node:fs";
import { enclosingModelFolder, fail } from "../index.js";
import type { FlagSpec } from "./flags.js";

/** Check the files a command is about to write (given by its --`flag`) before any work is done. */
export function checkOutputFiles(files: readonly string[], flag: string, overwrite: boolean): void {
  for (const file of files) {
    const model = enclosingModelFolder(file);
    if (model !== null)
      fail(
        `--${flag} ${file} is inside the model folder ${model}, which only training writes (its files belong to the model); choose a path outside it`,
      );
  }
  if (overwrite) return;
  for (const file of files) if (existsSync(file)) fail(`${file} already exists; replace it with --overwrite, or choose another --${flag}`);
}

/** the --overwrite flag of a command that writes `what` */
export function overwriteFlag(what: string): FlagSpec {
  return { name: "overwrite", type: "bool", default: false, help: `replace ${what} that already exists (never inside a model folder)` };
}
