/**
 * The model folder OUT as one training run writes it, from start to end (its layout and what a killed
 * run leaves beside it: src/io/out-folder.ts):
 *
 *   open     take OUT's lock (src/io/lock.ts) and put right what killed runs left around it
 *   create   a new run: config, tokenizer, initial weights and checkpoint 0 written to a temporary
 *            folder that is then renamed to OUT, so OUT is loadable and resumable from its first moment
 *   resume   a resumed run: metrics.jsonl cut back to the checkpoint's step
 *   per step metrics.jsonl, the best model by validation loss, loss.svg
 *   finish   the run's summary in config.json; the model folder an overwrite replaced is removed once
 *            the run has ended well (kept on any interruption or error)
 *   failed   an error: a new run that trained no step (out of memory at its first) leaves no OUT,
 *            and the model folder it replaced is put back
 * Checkpoints are checkpoint.ts's.
 */
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { diskFigures, formatBytes } from "../analyze/analyze.js";
import { fail, MinigptError, withFs } from "../errors.js";
import { appendWhole, writeFileAtomic } from "../io/atomic.js";
import { saveTokenizer } from "../io/folder.js";
import { type FolderLock, lockFolder } from "../io/lock.js";
import { besideMissingFolder, finishReplacement, pendingReplacement, prepareOutFolder, tidyModelFolder } from "../io/out-folder.js";
import type { Tokenizer } from "../tokenizer/types.js";
import { type Message, said, setting } from "../wording.js";
import { KEEP_CHECKPOINTS } from "./checkpoint.js";
import { metricsPath } from "./metrics.js";
import { lossPlotSvg } from "./plot.js";
import type { Trained } from "./trained.js";
import type { StepMetrics } from "./trainer.js";

/** a model folder above this size is announced before it is written */
const LARGE_FOLDER_BYTES = 100e6;

/** What a new run writes into OUT before its first step. */
interface FirstSave {
  /** the model, or the adapter, the run trains */
  trained: Trained;
  tokenizer: Tokenizer;
  /** the run's summary for config.json (saveModel's `minigpt` field) */
  info: Record<string, unknown>;
  /** writes checkpoint 0 into the folder it is given */
  checkpoint(dir: string): void;
  /** replace a model folder already in OUT */
  overwrite: boolean;
  /** the training data's path, which OUT must not hold */
  data: string;
}

export class RunFolder {
  /** the model folder this run replaced (overwrite), kept beside OUT until the run ends well */
  private replaced: string | null = null;

  private constructor(
    readonly out: string,
    private readonly lock: FolderLock,
    private readonly notice: (text: Message) => void,
  ) {}

  /**
   * Lock OUT for this run (a second writer is refused) and put right what a killed run left around
   * it. A resumed run's OUT must exist. Call close() when the run ends, however it ends.
   */
  static open(out: string, resume: boolean, notice: (text: Message) => void): RunFolder {
    const lock = lockFolder(out, notice);
    try {
      tidyModelFolder(out, notice);
      if (resume && !existsSync(out))
        fail(
          said`nothing to resume: the model folder ${out} does not exist (train without ${setting("resume")} first)${besideMissingFolder(out)}`,
        );
      return new RunFolder(out, lock, notice);
    } catch (e) {
      lock.release();
      throw e;
    }
  }

  close(): void {
    this.lock.release();
  }

  /** A new run: OUT appears complete (loadable, resumable) or not at all. */
  create(first: FirstSave): void {
    // said before anything is written: the GPT-2 tokenizer's 50,257 rows alone make a 128-wide model 206 MB
    const { trained } = first;
    const disk = diskFigures(trained.weightsFileBytes(), KEEP_CHECKPOINTS, trained.weightsFile);
    if (disk.runFolderBytes > LARGE_FOLDER_BYTES)
      this.notice(
        `note: ${this.out} will take about ${formatBytes(disk.runFolderBytes)} on disk (${disk.weightsFile} ${formatBytes(disk.weightsBytes)} and ${KEEP_CHECKPOINTS} checkpoints of ${trained.lora ? "its " : ""}weights and AdamW moments, ${formatBytes(disk.checkpointBytes)} each); a smaller ${trained.lora ? "rank" : "vocabulary or model"} shrinks it`,
      );
    this.replaced = prepareOutFolder(this.out, first.overwrite, first.data, true, (tmp) => {
      writeFileSync(join(tmp, "metrics.jsonl"), "");
      saveTokenizer(tmp, first.tokenizer, first.trained.model.config.blockSize);
      first.trained.saveModelFolder(tmp, first.info);
      first.checkpoint(tmp);
    });
  }

  /** A resumed run: the steps after its checkpoint are done again, so their metrics go. */
  resume(history: readonly StepMetrics[]): void {
    this.replaced = pendingReplacement(this.out);
    writeFileAtomic(metricsPath(this.out), history.map((m) => JSON.stringify(m)).join("\n") + (history.length > 0 ? "\n" : ""));
  }

  /** one line of metrics.jsonl per step */
  appendMetrics(m: StepMetrics): void {
    appendWhole(metricsPath(this.out), `${JSON.stringify(m)}\n`);
  }

  /** the model (or adapter) with the best validation loss so far */
  saveBest(trained: Trained): void {
    trained.saveWeights(this.out);
  }

  savePlot(history: StepMetrics[], title: string): void {
    writeFileAtomic(join(this.out, "loss.svg"), lossPlotSvg(history, title));
  }

  /**
   * An error that ends the run. A new run that trained no step has no work in OUT: OUT goes, and the
   * model folder it replaced comes back, so nothing refuses the next try (a resumed run keeps its
   * checkpoints). Otherwise the error is told where the model folder the run replaced waits: a run
   * that fails at step 2 on a typo must not have cost the user the model it replaced.
   */
  failed(e: unknown, nothingTrained = false): never {
    if (nothingTrained) {
      const undone = this.undo();
      if (undone !== null && e instanceof MinigptError) fail(said`${e.said ?? e.message}; ${undone}`);
      if (undone !== null && e instanceof Error) e.message = `${e.message}; ${undone}`;
      throw e;
    }
    if (this.replaced) {
      const kept = said`The model folder ${setting("overwrite")} replaced is kept in ${this.replaced} (put it back with: rm -r ${this.out} && mv ${this.replaced} ${this.out})`;
      if (e instanceof MinigptError) fail(said`${e.said ?? e.message}. ${kept}`);
      if (e instanceof Error) e.message = `${e.message}. ${kept}`;
    }
    throw e;
  }

  /**
   * Remove the OUT this run created and put back the model folder it replaced. Returns what a user
   * should still know (null: nothing, OUT is as it was before the run); never throws.
   */
  private undo(): string | null {
    const abs = resolve(this.out);
    try {
      rmSync(abs, { recursive: true, force: true });
      if (this.replaced) renameSync(this.replaced, abs);
      this.replaced = null;
      return null;
    } catch (e) {
      const where = this.replaced ? ` (the model folder it replaced is in ${this.replaced})` : "";
      return e instanceof Error ? `and ${this.out} could not be removed: ${e.message}${where}` : null;
    }
  }

  /**
   * The run's end: its summary into config.json. The replaced model survives any interruption
   * (Ctrl-C, SIGTERM, kill -9, an error) and goes only when the run that replaced it has finished
   * normally, here or in a later resume.
   */
  finish(summary: Record<string, unknown>, interrupted: boolean): void {
    const configFile = join(this.out, "config.json");
    const saved = withFs(`cannot read ${configFile}`, () => readFileSync(configFile, "utf8"));
    writeFileAtomic(configFile, `${JSON.stringify({ ...JSON.parse(saved), minigpt: { version: 1, ...summary } }, null, 2)}\n`);
    if (interrupted && this.replaced) {
      this.notice(
        said`the model folder ${setting("overwrite")} replaced is kept in ${this.replaced} until this run finishes (continue it with ${setting("resume")}), or put it back with: rm -r ${this.out} && mv ${this.replaced} ${this.out}`,
      );
    } else if (!interrupted) {
      const kept = finishReplacement(this.out);
      if (kept !== null) this.notice(kept);
    }
  }
}
