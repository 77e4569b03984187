export interface ScheduleOptions {
  lr: number;
  minLr: number;
  warmupSteps: number;
  /** the step at which the cosine reaches minLr (the total number of steps) */
  decaySteps: number;
  /**
   * set when a resumed run changed its end or its rates (replanSchedule): from this step on, the
   * cosine runs from this lr down to minLr at decaySteps (the steps before it were trained already)
   */
  from?: { step: number; lr: number };
}

/**
 * Linear warmup to lr, then cosine decay to minLr (nanoGPT's get_lr). `step` counts from 0.
 */
export function learningRate(step: number, s: ScheduleOptions): number {
  if (s.from && step >= s.from.step) return cosine(step, s.from.step, s.from.lr, s);
  if (step < s.warmupSteps) return (s.lr * (step + 1)) / (s.warmupSteps + 1);
  return cosine(step, s.warmupSteps, s.lr, s);
}

/** half a cosine from `top` at step `start` down to minLr at decaySteps, then minLr */
function cosine(step: number, start: number, top: number, s: ScheduleOptions): number {
  if (step >= s.decaySteps) return s.minLr;
  const ratio = (step - start) / Math.max(1, s.decaySteps - start);
  const coeff = 0.5 * (1 + Math.cos(Math.PI * ratio));
  return s.minLr + coeff * (top - s.minLr);
}

/**
 * The schedule for the rest of a run that has taken `step` steps under `planned`, when the run now
 * asks for `wanted` (a resume with a new end, lr or minLr). Unchanged, the plan stands as it was,
 * so a resume follows the uninterrupted run exactly. Otherwise the learning rate never jumps: still
 * warming up, the warmup goes on to the (new) peak and the cosine spans the new length; past it, a
 * new cosine starts from the current learning rate (or from a new lr, when that is what changed)
 * and ends at minLr at the new end.
 */
export function replanSchedule(planned: ScheduleOptions, step: number, wanted: Omit<ScheduleOptions, "from">): ScheduleOptions {
  if (planned.lr === wanted.lr && planned.minLr === wanted.minLr && planned.decaySteps === wanted.decaySteps) return planned;
  if (!planned.from && step <= wanted.warmupSteps) return { ...wanted };
  const lr = wanted.lr !== planned.lr ? wanted.lr : learningRate(step, planned);
  return { ...wanted, from: { step, lr } };
}
