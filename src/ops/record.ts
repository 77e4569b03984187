import { isGradEnabled, type Tensor } from "../tensor/tensor.js";

/**
 * Attach the backward closure to an op's output when the graph is being recorded and some input
 * needs a gradient; otherwise leave the output a plain constant.
 */
export function record(out: Tensor, parents: readonly Tensor[], backward: () => void): Tensor {
  if (isGradEnabled() && parents.some((p) => p.requiresGrad)) {
    out.requiresGrad = true;
    out.parents = parents;
    out.backwardFn = backward;
  }
  return out;
}

export function lastDim(t: Tensor): number {
  return t.shape[t.shape.length - 1] as number;
}

export function shapeStr(shape: readonly number[]): string {
  return `[${shape.join(", ")}]`;
}
