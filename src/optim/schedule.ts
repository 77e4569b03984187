export interface ScheduleOptions {
  lr: number;
  minLr: number;
  warmupSteps: number;
  /** the step at which the cosine reaches minLr (the total number of steps) */
  decaySteps: number;
}

/**
 * Linear warmup to lr, then cosine decay to minLr (nanoGPT's get_lr). `step` counts from 0.
 */
export function learningRate(step: number, s: ScheduleOptions): number {
  if (step < s.warmupSteps) return (s.lr * (step + 1)) / (s.warmupSteps + 1);
  if (step >= s.decaySteps) return s.minLr;
  const ratio = (step - s.warmupSteps) / Math.max(1, s.decaySteps - s.warmupSteps);
  const coeff = 0.5 * (1 + Math.cos(Math.PI * ratio));
  return s.minLr + coeff * (s.lr - s.minLr);
}
