// How the model worker and the page talk: the worker's messages out, its errors as one line, and
// the pauses in long work (training, generation) that let the page's messages (pause, stop,
// generate) in.
import { MinigptError } from "minigpt-ts/browser";
import type { FromWorker } from "../protocol.js";

export const post = (m: FromWorker, transfer: Transferable[] = []): void => (self as unknown as Worker).postMessage(m, transfer);

/** an error as the page shows it: a MinigptError's message alone, anything else with its name */
export function report(err: unknown, context: string): void {
  const message = err instanceof MinigptError ? err.message : err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  post({ type: "error", message, context });
}

/** run work for this long before letting messages in */
export const SLICE_MS = 50;

/** let queued messages (pause, stop) in: a message-channel round trip, without setTimeout's clamping */
const channel = new MessageChannel();
const waiting: (() => void)[] = [];
channel.port1.onmessage = () => waiting.shift()?.();
export const yieldToMessages = (): Promise<void> =>
  new Promise((resolve) => {
    waiting.push(resolve);
    channel.port2.postMessage(0);
  });

/** a loop's pauses: lets messages in once its work since the last pause took SLICE_MS */
export class Slices {
  private end = performance.now() + SLICE_MS;

  async pause(): Promise<void> {
    if (performance.now() <= this.end) return;
    await yieldToMessages();
    this.end = performance.now() + SLICE_MS;
  }
}
