/**
 * Ctrl-C in the commands. While a model's text streams out (generate, train's closing sample, the
 * replies of chat and interactive): the stream stops at its next token and the command ends its line,
 * so that the shell's prompt, or chat's, starts on a line of its own instead of after the partial
 * text. In a command that runs until asked to stop (serve, web): it stops with a last line.
 */

/**
 * Hand every item of `items` to `each` until they end, or until `stop()` is true after one:
 * "stopped" then, and the generator is closed. The event loop turns between items (setImmediate),
 * which is what lets a signal's handler run while the model computes.
 */
export async function streamUntil<T>(
  items: Iterable<T> | AsyncIterable<T>,
  each: (item: T) => void,
  stop: () => boolean,
): Promise<"done" | "stopped"> {
  for await (const item of items) {
    each(item);
    await new Promise<void>((resolve) => setImmediate(resolve));
    if (stop()) return "stopped";
  }
  return "done";
}

/**
 * Run `body` with Ctrl-C (SIGINT) caught instead of ending the process at once: `interrupted()`
 * says whether it came (body passes it to streamUntil as its stop). The handler is removed after.
 */
export async function catchingCtrlC<R>(body: (interrupted: () => boolean) => Promise<R>): Promise<R> {
  let seen = false;
  const onSigint = () => {
    seen = true;
  };
  process.on("SIGINT", onSigint);
  try {
    return await body(() => seen);
  } finally {
    process.off("SIGINT", onSigint);
  }
}

/**
 * For a command that runs until asked to stop (serve, web): `stopped` resolves at the first Ctrl-C
 * (SIGINT) or SIGTERM from now on. Listening starts before the command is up, so a signal that comes
 * while it starts, or just after the line that says it works is read, stops it with its last line
 * instead of node's default death. `forget()` removes the listeners (a command that fails to start).
 */
export function untilStopAsked(): { stopped: Promise<void>; forget: () => void } {
  let stopAsked = () => {};
  const stopped = new Promise<void>((done) => {
    stopAsked = done;
  });
  const stop = () => stopAsked();
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  const forget = () => {
    process.off("SIGINT", stop);
    process.off("SIGTERM", stop);
  };
  return { stopped, forget };
}
