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
