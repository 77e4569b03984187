import { type Message, Said, said } from "./wording.js";

/**
 * A MinigptError is a mistake the user can fix (bad setting, missing file, shape mismatch).
 * The CLI prints its message as one line and exits 1; anything else is a bug and keeps its stack.
 */
export class MinigptError extends Error {
  override name = "MinigptError";
  /** the file-system error code (ENOSPC, EIO, ...) when failFs made it: the caller may add what to do next */
  fsCode?: string;
  /** a message that names settings (wording.ts): `message` is it in the library's words, a front end may word it its own way */
  said?: Said;
}

export function fail(message: Message): never {
  const error = new MinigptError(String(message));
  if (message instanceof Said) error.said = message;
  throw error;
}

/** tensor memory ran out: tensor/memory.ts's RangeError (WebAssembly memory stops at 4 GiB) */
export function isOutOfMemory(e: unknown): e is RangeError {
  return e instanceof RangeError && /^out of tensor memory/.test(e.message);
}

/**
 * Out of tensor memory as a user error of one line: how much was needed, then `advice`, which names
 * the settings the caller's memory grows with, with their values (only those that change it); any
 * other error as it is. Each command says what it controls: train its batch and block, eval its
 * batch, serve its maxBatch.
 */
export function outOfMemory(e: unknown, advice: Message): unknown {
  if (!isOutOfMemory(e)) return e;
  const need = e.message.replace(/; use a smaller model or batch$/, "");
  const message = said`${need}. ${advice}`;
  const error = new MinigptError(String(message));
  error.said = message;
  return error;
}

/** what to do about a file-system error, by its code */
const FS_HINTS: Record<string, string> = {
  ENOSPC: "free some disk space",
  EDQUOT: "free some disk space (the disk quota is used up)",
  EIO: "the disk reported an input/output error; check the disk, or use another one",
  EACCES: "check the folder's permissions, or choose another path",
  EPERM: "check the folder's permissions, or choose another path",
  EROFS: "the disk is read-only; choose another path",
  EISDIR: "a folder stands where a file should be; give a file path, or move the folder away",
  ENOTDIR: "a part of the path is a file, not a folder",
  EMFILE: "too many open files; close some programs or raise the limit (ulimit -n)",
};

/**
 * Turn a file-system error (EACCES, ENOSPC, ENOTDIR, ...) from `doing` (e.g. "cannot write x") into
 * a MinigptError that says what to do; anything that is not a file-system error is rethrown as is.
 * Every file-system call of the trainer and the commands ends here when it fails, so a full or
 * broken disk is one line, never a stack trace.
 */
export function failFs(doing: string, err: unknown): never {
  if (err instanceof MinigptError) throw err;
  const error = new MinigptError(fsErrorMessage(doing, err));
  error.fsCode = (err as NodeJS.ErrnoException).code;
  throw error;
}

/** failFs's line, for a caller that goes on after the error (a warning); rethrows what is not a file-system error */
export function fsErrorMessage(doing: string, err: unknown): string {
  if (err instanceof MinigptError) return err.message;
  const code = (err as NodeJS.ErrnoException | null)?.code;
  if (typeof code !== "string") throw err;
  const detail = (err as Error).message;
  // node's own messages begin with the code ("ENOENT: no such file or directory, open 'x'"): say it once
  const said = detail.startsWith(`${code}:`) ? detail : `${code} (${detail})`;
  return `${doing}: ${said}; ${FS_HINTS[code] ?? "check the path"}`;
}

/** `fn()`, with a file-system error turned into one line by failFs(doing) */
export function withFs<T>(doing: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    failFs(doing, err);
  }
}
