/**
 * The model folder's lifecycle as a training run writes it, and what a killed run leaves beside it:
 *
 *   OUT.partial-PID    a new OUT being filled (config, tokenizer, weights, checkpoint 0), then renamed
 *                      to OUT: so OUT is loadable and resumable from the first moment it exists
 *   OUT.replaced-PID   with --overwrite, the model folder OUT held, moved aside by a second rename and
 *                      kept until the run that replaced it finishes normally (its name is recorded in
 *                      OUT/training/replaced-folder, so a --resume that finishes that run removes it)
 *   .NAME.tmp-PID-*    writeFileAtomic's temporary files, in OUT and OUT/training;
 *   .checkpoint-N.tmp-PID  a checkpoint being written (training/)
 *
 * Whoever writes OUT holds its lock (lock.ts). The next command on OUT that can take the lock puts
 * right what a dead process (PID no longer running) left: an OUT missing after a kill between the
 * two renames of --overwrite is restored from OUT.replaced-PID, and partial folders and temporary
 * files are removed. An OUT.replaced-PID is never removed there: it may be the only copy of a model.
 */
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, renameSync, rmSync, statSync } from "node:fs";
import { basename, dirname, isAbsolute, join, relative, resolve } from "node:path";
import { fail, failFs, MinigptError } from "../errors.js";
import { tokenizerFromHuggingFaceJson } from "../tokenizer/huggingface.js";
import { said, setting } from "../wording.js";
import { writeFileAtomic } from "./atomic.js";
import { readJsonFile, readModelConfig } from "./hf.js";
import { pidAlive, staleLock, tryLockFolder } from "./lock.js";

/** what a minigpt model folder holds (saveModel, saveTokenizer, the trainer); --overwrite replaces nothing else */
const MODEL_FOLDER_ENTRIES = new Set([
  "config.json",
  "generation_config.json",
  "model.safetensors",
  "adapter_config.json",
  "adapter_model.safetensors",
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

/** OUT/training/replaced-folder: the name of the folder beside OUT that this run replaced */
const REPLACED_RECORD = join("training", "replaced-folder");

/**
 * Create OUT for a new run via a temporary sibling folder and one rename. An OUT that already holds
 * a model is never silently replaced: that is someone's training run. --overwrite replaces only a
 * model folder: never a folder with other files in it, the data, or the folder the user is in.
 * The caller holds OUT's lock. Returns where the replaced model folder waits (null when there was none).
 */
export function prepareOutFolder(
  out: string,
  overwrite: boolean,
  data: string,
  /** a training run writes OUT (which may continue the run already there); else quantize or merge, which have nothing to continue */
  training: boolean,
  fill: (tmp: string) => void,
): string | null {
  if (out.trim() === "") fail(said`${setting("out")} is empty; give a name for the model folder, e.g. ${setting("out")} my-model`);
  const abs = resolve(out);
  if (within(process.cwd(), abs)) fail(said`${setting("out")} ${out} is the current folder (or holds it); give a new folder for the model`);
  if (data && existsSync(data) && within(resolve(data), abs))
    fail(said`${setting("out")} ${out} holds the training data ${data}; give another folder for the model`);
  const tmp = `${abs}.partial-${process.pid}`;
  const replaced = `${abs}.replaced-${process.pid}`;
  try {
    if (existsSync(abs)) {
      if (!statSync(abs).isDirectory()) fail(said`${setting("out")} ${out} is a file; give a folder for the model`);
      const entries = readdirSync(abs);
      if (entries.length > 0 && !overwrite) {
        const latest = join(out, "training", "latest");
        const model = entries.includes("model.safetensors") || entries.includes("adapter_config.json");
        // continuing is offered only where there is a run to continue (a folder from quantize, merge
        // or Hugging Face has none: its --resume would say "nothing to resume")
        if (training && model && !existsSync(latest))
          fail(
            said`${out} already holds a model but no training run to continue (no ${latest}); replace it with ${setting("overwrite")}, or choose another ${setting("out")} (${setting("init")} ${out} starts from its weights)`,
          );
        fail(
          said`${out} already holds files${model ? " (a model)" : ""}; ${training ? said`continue that run with ${setting("resume")}, ` : ""}replace it with ${setting("overwrite")}, or choose another ${setting("out")}`,
        );
      }
      const foreign = entries.filter((e) => !MODEL_FOLDER_ENTRIES.has(e));
      if (foreign.length > 0) {
        const shown = foreign.slice(0, 3).join(", ") + (foreign.length > 3 ? `, and ${foreign.length - 3} more` : "");
        fail(
          said`${setting("overwrite")} replaces only a model folder, and ${out} holds other files (${shown}); choose another ${setting("out")}`,
        );
      }
    }
    rmSync(tmp, { recursive: true, force: true });
    // not recursive: the lock made the parents, and Node 20's recursive mkdir loops on /proc/x
    mkdirSync(tmp);
  } catch (e) {
    failFs(`cannot create the model folder ${out}`, e);
  }
  try {
    fill(tmp);
    if (!existsSync(abs)) {
      renameSync(tmp, abs);
      return null;
    }
    mkdirSync(join(tmp, "training"), { recursive: true });
    writeFileAtomic(join(tmp, REPLACED_RECORD), `${basename(replaced)}\n`);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    failFs(`cannot create the model folder ${out}`, e);
  }
  // the replaced model stays beside OUT until the new run has ended well (finishReplacement); a
  // kill between these two renames leaves no OUT, and the next command on it restores OUT from
  // the replaced folder (tidyModelFolder)
  try {
    renameSync(abs, replaced);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    failFs(`cannot move the model folder ${out} aside to replace it`, e);
  }
  try {
    renameSync(tmp, abs);
  } catch (e) {
    renameSync(replaced, abs);
    rmSync(tmp, { recursive: true, force: true });
    failFs(`cannot create the model folder ${out}`, e);
  }
  return replaced;
}

/** the folder beside OUT that the run in OUT replaced and that is still there (null: none) */
export function pendingReplacement(out: string): string | null {
  const abs = resolve(out);
  let name: string;
  try {
    name = readFileSync(join(abs, REPLACED_RECORD), "utf8").trim();
  } catch {
    return null;
  }
  // only a name of the form OUT.replaced-PID, beside OUT: the record never points anywhere else
  if (!/^\S+\.replaced-\d+$/.test(name) || !name.startsWith(`${basename(abs)}.replaced-`)) return null;
  const path = join(dirname(abs), name);
  return existsSync(path) ? path : null;
}

/**
 * The run in OUT finished normally: remove the model folder it replaced, once OUT is seen to load.
 * Returns a notice when the replaced folder is kept after all (OUT does not load), else null.
 */
export function finishReplacement(out: string): string | null {
  const replaced = pendingReplacement(out);
  if (replaced !== null) {
    const problem = whyNotLoadable(out);
    if (problem !== null) return `kept ${replaced}, the model folder this run replaced, since ${out} does not load: ${problem}`;
    rmSync(replaced, { recursive: true, force: true });
  }
  rmSync(join(resolve(out), REPLACED_RECORD), { force: true });
  return null;
}

/**
 * Does a model folder load? Its config and tokenizer are parsed and model.safetensors' header checked
 * against the file's size, without reading the weights a second time.
 */
function whyNotLoadable(dir: string): string | null {
  try {
    readModelConfig(dir);
    const tokenizerFile = join(dir, "tokenizer.json");
    tokenizerFromHuggingFaceJson(readJsonFile(tokenizerFile), tokenizerFile);
    const file = join(dir, "model.safetensors");
    const fd = openSync(file, "r");
    try {
      const size = statSync(file).size;
      const head = Buffer.alloc(8);
      readSync(fd, head, 0, 8, 0);
      const n = Number(head.readBigUInt64LE(0));
      if (n <= 0 || 8 + n > size) return `${file} is cut short`;
      const json = Buffer.alloc(n);
      readSync(fd, json, 0, n, 8);
      const header = JSON.parse(json.toString("utf8")) as Record<string, { data_offsets?: [number, number] }>;
      const end = Math.max(0, ...Object.values(header).map((t) => t.data_offsets?.[1] ?? 0));
      if (8 + n + end !== size) return `${file} is ${size} bytes, its header says ${8 + n + end}`;
    } finally {
      closeSync(fd);
    }
    return null;
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
}

interface Leftover {
  path: string;
  pid: number;
  kind: "replaced" | "partial" | "temporary";
}

/**
 * For a folder named OUT.replaced-PID or OUT.partial-PID (a model folder a run replaced, kept until
 * that run finishes; a new one being filled), OUT's path and which it is; null for any other name.
 * Such a folder may hold a whole model, but it is no model of its own to offer (interactive's list).
 */
export function setAsideFolder(path: string): { out: string; kind: "replaced" | "partial" } | null {
  const m = /^(.+)\.(replaced|partial)-\d+$/.exec(basename(path));
  return m ? { out: join(dirname(path), m[1] as string), kind: m[2] as "replaced" | "partial" } : null;
}

/** OUT.replaced-PID and OUT.partial-PID beside OUT */
function besideFolders(abs: string): Leftover[] {
  const prefix = `${basename(abs)}.`;
  let names: string[];
  try {
    names = readdirSync(dirname(abs));
  } catch {
    return [];
  }
  return names.flatMap((n) => {
    const m = n.startsWith(prefix) ? /^(replaced|partial)-(\d+)$/.exec(n.slice(prefix.length)) : null;
    return m ? [{ path: join(dirname(abs), n), pid: Number(m[2]), kind: m[1] as "replaced" | "partial" }] : [];
  });
}

/** .NAME.tmp-PID[-hex] files and .checkpoint-N.tmp-PID folders in OUT and OUT/training */
function temporaryFiles(abs: string): Leftover[] {
  return [abs, join(abs, "training")].flatMap((dir) => {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      return [];
    }
    return names.flatMap((n) => {
      const m = /^\..+\.tmp-(\d+)(?:-[0-9a-f]+)?$/.exec(n);
      return m ? [{ path: join(dir, n), pid: Number(m[1]), kind: "temporary" as const }] : [];
    });
  });
}

/** what dead processes left around OUT (a live process's files are its own business) */
function leftovers(out: string): Leftover[] {
  const abs = resolve(out);
  return [...besideFolders(abs), ...temporaryFiles(abs)].filter((l) => !pidAlive(l.pid));
}

/**
 * Put right what dead processes left around OUT; the caller holds OUT's lock. An OUT missing after a
 * kill between the two renames of --overwrite is restored from the folder it was moved to; partial
 * folders and temporary files are removed; a replaced model folder is only pointed out.
 */
export function tidyModelFolder(out: string, notice: (text: string) => void): void {
  const abs = resolve(out);
  const found = leftovers(out);
  const replacedAside = found.filter((l) => l.kind === "replaced");
  if (!existsSync(abs) && replacedAside.length > 0) {
    // a kill between the renames of one --overwrite leaves one; should there be several, the newest
    const newest = replacedAside.reduce((a, b) => (statSync(b.path).ctimeMs > statSync(a.path).ctimeMs ? b : a));
    try {
      renameSync(newest.path, abs);
    } catch (e) {
      failFs(`cannot restore ${out} from ${newest.path}`, e);
    }
    // the record it may hold names a folder of an older --overwrite, which is still its business
    notice(`restored ${out} from ${newest.path}: a train --overwrite (process ${newest.pid}) was killed while replacing it`);
  }
  const junk = found.filter((l) => l.kind !== "replaced" && existsSync(l.path));
  if (junk.length > 0) {
    for (const j of junk) rmSync(j.path, { recursive: true, force: true });
    const pids = [...new Set(junk.map((j) => j.pid))].join(", ");
    notice(`removed what killed runs (process ${pids}) left unfinished: ${junk.map((j) => relative(dirname(abs), j.path)).join(", ")}`);
  }
  if (existsSync(abs)) {
    const pending = pendingReplacement(out);
    for (const r of replacedAside) {
      if (!existsSync(r.path)) continue;
      const back = `put it back with: rm -r ${out} && mv ${r.path} ${out}`;
      notice(
        r.path === pending
          ? `${r.path} holds the model folder that the unfinished train --overwrite in ${out} (process ${r.pid}) replaced; it is removed when that run finishes (train --out ${out} --resume), or ${back}`
          : `${r.path} holds a model folder that a train --overwrite (process ${r.pid}) replaced and never finished; ${back}, or remove it with: rm -r ${r.path}`,
      );
    }
  }
}

/**
 * For commands that read a model folder: put right what dead processes left around it, if anything
 * (their lock too), when its lock can be had (a running trainer's folder is left alone). Never fails
 * on its own.
 */
export function tidyBeforeReading(dir: string, notice: (text: string) => void): void {
  if (leftovers(dir).length === 0 && !staleLock(dir)) return;
  let r: ReturnType<typeof tryLockFolder>;
  try {
    r = tryLockFolder(dir, notice);
  } catch (e) {
    if (e instanceof MinigptError) return;
    throw e;
  }
  if (!("lock" in r)) return;
  try {
    tidyModelFolder(dir, notice);
  } finally {
    r.lock.release();
  }
}

/**
 * What lies beside a missing model folder, for the "does not exist" messages: "" when nothing, else
 * "; ..." naming the folder and how to get it back.
 */
export function besideMissingFolder(dir: string): string {
  const abs = resolve(dir);
  const parts = besideFolders(abs).map((l) => {
    const live = pidAlive(l.pid);
    if (l.kind === "replaced")
      return live
        ? `process ${l.pid} is replacing it (train --overwrite) right now; try again in a moment`
        : `${l.path} holds the model it had: get it back with: mv ${l.path} ${dir}`;
    return live
      ? `process ${l.pid} is creating it (its first save is in ${l.path}); try again in a moment`
      : `${l.path} is the unfinished first save of a killed run (no trained steps): start again with train --out ${dir}`;
  });
  return parts.length > 0 ? `; ${parts.join("; ")}` : "";
}
