/**
 * A MinigptError is a mistake the user can fix (bad flag, missing file, shape mismatch).
 * The CLI prints its message as one line and exits 1; anything else is a bug and keeps its stack.
 */
export class MinigptError extends Error {
  override name = "MinigptError";
}

export function fail(message: string): never {
  throw new MinigptError(message);
}

/**
 * Turn a file-system error (EACCES, ENOSPC, ENOTDIR, ...) from `doing` (e.g. "cannot write x") into
 * a MinigptError that says what to do; anything that is not a file-system error is rethrown as is.
 */
export function failFs(doing: string, err: unknown): never {
  if (err instanceof MinigptError) throw err;
  const code = (err as NodeJS.ErrnoException | null)?.code;
  if (typeof code !== "string") throw err;
  const hint =
    code === "ENOSPC"
      ? "free some disk space"
      : code === "EACCES" || code === "EPERM" || code === "EROFS"
        ? "check the folder's permissions, or choose another path"
        : code === "EISDIR"
          ? "the target is a folder; give a file path"
          : code === "ENOTDIR"
            ? "a part of the path is a file, not a folder"
            : "check the path";
  fail(`${doing}: ${code} (${(err as Error).message}); ${hint}`);
}
