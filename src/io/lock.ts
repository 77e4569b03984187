/**
 * One writer per model folder: a lock file beside the folder, `<parent>/.<name>.lock`, not in it
 * (OUT does not exist before a run's first save, and --overwrite moves it aside).
 *
 * The file is created exclusively (open with "wx": of two processes, exactly one creates it) and
 * holds who took it: { pid, host, started }. It is removed when the holder lets go, and on exit.
 * A holder that died without letting go (kill -9, a power cut) leaves it behind: a lock of this
 * host whose PID is no longer running is stale and taken over; one of another host (a shared
 * network folder) cannot be checked from here, so it is refused, naming it.
 */
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, statSync, unlinkSync, writeSync } from "node:fs";
import { hostname } from "node:os";
import { basename, dirname, join, resolve } from "node:path";
import { fail, failFs } from "../errors.js";

interface LockOwner {
  pid: number;
  host: string;
  /** ISO time the lock was taken */
  started: string;
}

export interface FolderLock {
  path: string;
  release(): void;
}

/** where the lock of model folder `dir` lives */
function lockPath(dir: string): string {
  const abs = resolve(dir);
  return join(dirname(abs), `.${basename(abs)}.lock`);
}

/** is a process with this id running on this machine? (EPERM: it runs, as another user) */
export function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** a lock file's owner; null when it cannot be read as one (gone, or written only in part) */
function readOwner(path: string): LockOwner | null {
  try {
    const o = JSON.parse(readFileSync(path, "utf8")) as Partial<LockOwner>;
    if (typeof o.pid === "number" && typeof o.host === "string" && typeof o.started === "string") return o as LockOwner;
  } catch {
    // missing, or a holder died between creating the file and writing it
  }
  return null;
}

/**
 * Is `dir`'s lock left by a process of this machine that is no longer running? (A run killed before
 * its first save leaves nothing else: readers take it over and let go, so it does not stay.)
 */
export function staleLock(dir: string): boolean {
  const owner = readOwner(lockPath(dir));
  return owner !== null && owner.host === hostname() && !pidAlive(owner.pid);
}

/** A file that is not a lock's JSON yet: its writer gets this long to finish writing it. */
const UNWRITTEN_GRACE_MS = 10_000;

const held = new Set<string>();
let exitHookInstalled = false;

/**
 * Create the parents of `dir` one level at a time. Node 20's recursive mkdir never returns on some
 * paths (/proc/x loops forever), so it is not used for a path the user typed.
 */
function makeParents(dir: string): void {
  const missing: string[] = [];
  for (let p = dirname(resolve(dir)); ; p = dirname(p)) {
    if (existsSync(p) || dirname(p) === p) break;
    missing.unshift(p);
  }
  for (const p of missing) mkdirSync(p);
}

/** Create folder `dir` and its parents, one level at a time (see makeParents); nothing when it exists. */
export function makeFolder(dir: string): void {
  makeParents(dir);
  if (!existsSync(dir)) mkdirSync(dir);
}

type LockResult = { lock: FolderLock } | { heldBy: LockOwner; path: string };

/**
 * Try to take the lock of model folder `dir` (its parent folder must exist). A stale lock is taken
 * over, saying so through `notice`. Returns who holds it when another live process does.
 */
export function tryLockFolder(dir: string, notice: (text: string) => void): LockResult {
  const path = lockPath(dir);
  const me: LockOwner = { pid: process.pid, host: hostname(), started: new Date().toISOString() };
  for (let attempt = 0; ; attempt++) {
    let fd: number;
    try {
      fd = openSync(path, "wx", 0o644);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST" || attempt >= 5)
        failFs(`cannot create the model folder ${dir} (its lock ${path})`, e);
      const owner = readOwner(path);
      if (owner === null) {
        let age = 0;
        try {
          age = Date.now() - statSync(path).mtimeMs;
        } catch {
          continue; // let go of meanwhile: try again
        }
        if (age < UNWRITTEN_GRACE_MS) return { heldBy: { pid: 0, host: "?", started: "just now" }, path };
        notice(`removed the unreadable lock ${path} (left by a process that died while taking it)`);
      } else if (owner.host !== me.host) {
        fail(
          `${dir} is locked by process ${owner.pid} on the machine ${owner.host} (since ${owner.started}); if that run is over, remove ${path}`,
        );
      } else if (pidAlive(owner.pid)) {
        return { heldBy: owner, path };
      } else {
        notice(`took over the lock ${path} of process ${owner.pid}, which is no longer running (started ${owner.started})`);
      }
      // Remove the stale lock, unless someone else took it over meanwhile (then it is theirs).
      // Two processes taking over one stale lock at the same instant could still both pass this
      // check; the window is a few microseconds after a crash, which is as far as a lock file goes.
      const now = readOwner(path);
      if (JSON.stringify(now) === JSON.stringify(owner)) {
        try {
          unlinkSync(path);
        } catch {
          // gone already
        }
      }
      continue;
    }
    try {
      writeSync(fd, `${JSON.stringify(me)}\n`);
    } catch (e) {
      closeSync(fd);
      unlinkSync(path);
      failFs(`cannot write the lock ${path}`, e);
    }
    closeSync(fd);
    held.add(path);
    if (!exitHookInstalled) {
      exitHookInstalled = true;
      // process.exit (a second Ctrl-C) skips every finally: let go of what is still held
      process.on("exit", () => {
        for (const p of held) removeIfMine(p);
      });
    }
    return {
      lock: {
        path,
        release() {
          if (!held.delete(path)) return;
          removeIfMine(path);
        },
      },
    };
  }
}

function removeIfMine(path: string): void {
  if (readOwner(path)?.pid !== process.pid) return;
  try {
    unlinkSync(path);
  } catch {
    // already gone: nothing to let go of
  }
}

/** what a refused writer is told, in one line */
function heldMessage(dir: string, owner: LockOwner, path: string): string {
  if (owner.pid === 0) return `${dir} is being locked by another process right now (${path}); try again in a moment`;
  return `${dir} is being written by process ${owner.pid} (since ${owner.started}); wait for it to finish or stop it (if no such run is going on, remove ${path})`;
}

/**
 * Take the lock of model folder `dir` for writing it, creating its parent folders first; one line
 * naming the holder's PID when another process writes it.
 */
export function lockFolder(dir: string, notice: (text: string) => void): FolderLock {
  if (basename(resolve(dir)) === "") fail(`${dir} is the root folder; give a folder for the model`);
  try {
    makeParents(dir);
  } catch (e) {
    failFs(`cannot create the model folder ${dir}`, e);
  }
  const r = tryLockFolder(dir, notice);
  if ("heldBy" in r) fail(heldMessage(dir, r.heldBy, r.path));
  return r.lock;
}
