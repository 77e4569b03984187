/**
 * The model folder's lifecycle as a training run writes it: OUT is created whole (a temporary sibling
 * folder renamed into place), and --overwrite replaces only a model folder, keeping the one it
 * replaced beside OUT until the new run has ended well.
 */
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync } from "node:fs";
import { isAbsolute, relative, resolve } from "node:path";
import { fail, failFs } from "../errors.js";

/** what a minigpt model folder holds (saveModel, saveTokenizer, the trainer); --overwrite replaces nothing else */
const MODEL_FOLDER_ENTRIES = new Set([
  "config.json",
  "generation_config.json",
  "model.safetensors",
  "tokenizer.json",
  "tokenizer_config.json",
  "special_tokens_map.json",
  "vocab.json",
  "merges.txt",
  "metrics.jsonl",
  "loss.svg",
  "training",
]);

/** is `inner` the folder `outer` or inside it? */
function within(inner: string, outer: string): boolean {
  const r = relative(outer, inner);
  return r === "" || (!r.startsWith("..") && !isAbsolute(r));
}

/**
 * Create OUT for a new run via a temporary sibling folder and one rename. An OUT that already holds
 * a model is never silently replaced: that is someone's training run. --overwrite replaces only a
 * model folder: never a folder with other files in it, the data, or the folder the user is in.
 * Returns where the replaced model folder waits (null when there was none).
 */
export function prepareOutFolder(out: string, overwrite: boolean, data: string, fill: (tmp: string) => void): string | null {
  const abs = resolve(out);
  if (within(process.cwd(), abs)) fail(`--out ${out} is the current folder (or holds it); give a new folder for the model`);
  if (data && existsSync(data) && within(resolve(data), abs))
    fail(`--out ${out} holds the training data ${data}; give another folder for the model`);
  try {
    if (existsSync(abs)) {
      if (!statSync(abs).isDirectory()) fail(`--out ${out} is a file; give a folder for the model`);
      const entries = readdirSync(abs);
      if (entries.length > 0 && !overwrite) {
        fail(
          `${out} already holds files${entries.includes("model.safetensors") ? " (a model)" : ""}; continue that run with --resume, replace it with --overwrite, or choose another --out`,
        );
      }
      const foreign = entries.filter((e) => !MODEL_FOLDER_ENTRIES.has(e));
      if (foreign.length > 0) {
        const shown = foreign.slice(0, 3).join(", ") + (foreign.length > 3 ? `, and ${foreign.length - 3} more` : "");
        fail(`--overwrite replaces only a model folder, and ${out} holds other files (${shown}); choose another --out`);
      }
    }
    const tmp = `${abs}.partial-${process.pid}`;
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp, { recursive: true });
    fill(tmp);
    if (existsSync(abs)) {
      // the replaced model stays beside OUT until the new run has ended well (train() removes it)
      const replaced = `${abs}.replaced-${process.pid}`;
      renameSync(abs, replaced);
      renameSync(tmp, abs);
      return replaced;
    }
    renameSync(tmp, abs);
    return null;
  } catch (e) {
    // a disk error during the first save: nothing of the half-made folder stays behind
    try {
      rmSync(`${abs}.partial-${process.pid}`, { recursive: true, force: true });
    } catch {
      // a disk that failed the save may fail this too; the next run on OUT removes it
    }
    failFs(`cannot create the model folder ${out}`, e);
  }
}
