/**
 * Crash-safe file writes: a checkpoint is either the old file or the new one, never half of each.
 *
 * Recipe: write to a temporary file in the same folder (same filesystem, so rename is atomic), fsync
 * it so the bytes are on disk before the name points at them, rename over the target, then fsync the
 * folder so the rename itself survives a power cut.
 */
import { randomBytes } from "node:crypto";
import { closeSync, fstatSync, fsyncSync, ftruncateSync, openSync, renameSync, statSync, unlinkSync, writeSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { fail, failFs, withFs } from "../errors.js";

export function writeFileAtomic(path: string, bytes: Uint8Array | string): void {
  const data = typeof bytes === "string" ? new TextEncoder().encode(bytes) : bytes;
  const dir = dirname(resolve(path));
  let dirIsFolder = false;
  try {
    dirIsFolder = statSync(dir).isDirectory();
  } catch {
    dirIsFolder = false;
  }
  if (!dirIsFolder) fail(`cannot write ${path}: the folder ${dir} does not exist; create it first`);

  const tmp = join(dir, `.${basename(path)}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`);
  try {
    const fd = openSync(tmp, "wx", 0o644);
    try {
      let written = 0;
      while (written < data.length) {
        written += writeSync(fd, data, written, data.length - written);
      }
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (err) {
    try {
      unlinkSync(tmp);
    } catch {
      // the temp file may not exist (open failed) or is already renamed
    }
    failFs(`cannot write ${path}`, err);
  }
  fsyncDir(dir);
}

/**
 * Append `text` to a file (created when missing), all or nothing: when the write fails part way (a
 * full disk), the file is cut back to its old length, so a log such as metrics.jsonl never keeps a
 * half line from a failed append. A kill during the write can still leave one; readers drop it.
 */
export function appendWhole(path: string, text: string): void {
  const data = new TextEncoder().encode(text);
  let fd: number | undefined;
  let oldLength = -1;
  try {
    fd = openSync(path, "a", 0o644);
    oldLength = fstatSync(fd).size;
    let written = 0;
    while (written < data.length) written += writeSync(fd, data, written, data.length - written);
  } catch (err) {
    if (fd !== undefined && oldLength >= 0) {
      try {
        ftruncateSync(fd, oldLength);
      } catch {
        // the disk that failed the write may fail this too; readers drop a torn last line anyway
      }
    }
    failFs(`cannot append to ${path}`, err);
  } finally {
    const opened = fd;
    if (opened !== undefined) withFs(`cannot append to ${path}`, () => closeSync(opened));
  }
}

/** Make the rename durable. Some platforms (Windows) cannot open or fsync a folder: best effort there. */
function fsyncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, "r");
    fsyncSync(fd);
  } catch {
    // EISDIR/EPERM/EINVAL on platforms without directory fsync: nothing more we can do.
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
