/**
 * Crash-safe file writes: a checkpoint is either the old file or the new one, never half of each.
 *
 * Recipe: write to a temporary file in the same folder (same filesystem, so rename is atomic), fsync
 * it so the bytes are on disk before the name points at them, rename over the target, then fsync the
 * folder so the rename itself survives a power cut.
 */
import { randomBytes } from "node:crypto";
import { closeSync, fsyncSync, openSync, renameSync, statSync, unlinkSync, writeSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { fail, failFs } from "../errors.js";

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
