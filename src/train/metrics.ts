/**
 * metrics.jsonl, a model folder's training history: one JSON object a line per optimizer step
 * ({"step","loss","lr","ms","tokens_per_s","grad_norm"}, plus "val_loss"/"pattern_accuracy" after an
 * evaluation), steps increasing. The trainer appends a line per step and rewrites the file on
 * resume; analyze summarises it.
 *
 * Every line must be such a record: a bad line anywhere is the file's damage, named with its line,
 * never skipped (skipping would rewrite the history without it on the next resume). The one
 * exception is a torn last line without its newline: a kill during an append leaves it, and it
 * belongs to a step that no checkpoint holds.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fail, withFs } from "../errors.js";
import type { StepMetrics } from "./trainer.js";

const METRICS_FILE = "metrics.jsonl";

export function metricsPath(out: string): string {
  return join(out, METRICS_FILE);
}

/** besides "step" and "loss": numbers, or null where JSON could not hold the value (an infinite tokens/s) */
const NUMBERS = ["lr", "ms", "tokens_per_s", "grad_norm", "val_loss", "pattern_accuracy", "resumed_from"] as const;

/** the steps of metrics.jsonl text, checked line by line; `file` names it in errors */
function parseMetrics(text: string, file: string): StepMetrics[] {
  const lines = text.split("\n");
  const torn = lines.pop(); // "" when the text ends with a newline, else a line cut short by a kill
  const history: StepMetrics[] = [];
  const shown = (v: unknown) => JSON.stringify(v) ?? "missing";
  const bad = (n: number, why: string): never =>
    fail(`${file} line ${n} ${why}; the training history is damaged: fix or delete that line (or the file)`);
  for (const [i, line] of lines.entries()) {
    if (line.trim() === "") continue;
    let m: unknown;
    try {
      m = JSON.parse(line);
    } catch {
      bad(i + 1, "is not JSON");
    }
    if (typeof m !== "object" || m === null || Array.isArray(m)) bad(i + 1, "is not a JSON object");
    const r = m as Record<string, unknown>;
    if (!Number.isInteger(r.step) || (r.step as number) < 1) bad(i + 1, `has "step" ${shown(r.step)}, not a step number`);
    const previous = history[history.length - 1];
    if (previous && (r.step as number) <= previous.step) bad(i + 1, `has step ${r.step} after step ${previous.step}`);
    if (typeof r.loss !== "number") bad(i + 1, `has "loss" ${shown(r.loss)}, not a number`);
    for (const key of NUMBERS)
      if (r[key] !== undefined && r[key] !== null && typeof r[key] !== "number") bad(i + 1, `has "${key}" ${shown(r[key])}, not a number`);
    history.push(r as unknown as StepMetrics);
  }
  if (torn !== undefined && torn.trim() !== "") {
    // a whole record that only lacks its newline is kept; a cut-off one is dropped
    try {
      const last = parseMetrics(`${torn}\n`, file)[0];
      if (last && (history.length === 0 || last.step > (history[history.length - 1] as StepMetrics).step)) history.push(last);
    } catch {
      // the torn tail of an append that never finished
    }
  }
  return history;
}

/** a model folder's history ([] when it has no metrics.jsonl) */
export function readMetrics(out: string): StepMetrics[] {
  const file = metricsPath(out);
  if (!existsSync(file)) return [];
  return parseMetrics(
    withFs(`cannot read ${file}`, () => readFileSync(file, "utf8")),
    file,
  );
}
