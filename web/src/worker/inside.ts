// Look inside: one forward pass of the current model over a prompt, its attention maps and next
// tokens, and the model's size and memory (`minigpt analyze`'s report).
import {
  analyzeTensors,
  formatAnalysis,
  MinigptError,
  quantizedFigures,
  topTokens,
  traceForward,
  traceForwardAsync,
} from "minigpt-ts/browser";
import { onGpu } from "./engine.js";
import { requireModel } from "./model.js";
import { post } from "./page.js";

/** `batchSize`: the batch the memory estimate trains with */
export async function inspect(prompt: string, batchSize: number): Promise<void> {
  const m = requireModel();
  let ids = m.tokenizer.encode(prompt, { specialsAsText: true });
  if (ids.length === 0) throw new MinigptError("the prompt encodes to no tokens; type some text");
  const leftOut = Math.max(0, ids.length - m.model.config.blockSize);
  ids = ids.slice(leftOut);
  // on the GPU the activations are read back together, asynchronously
  const trace = onGpu() ? await traceForwardAsync(m.model, ids) : traceForward(m.model, ids);
  // a loaded int8/int4 model's matrices count as it holds them (packed)
  const a = analyzeTensors(m.model.config, m.model.parameterInfo(), { batchSize, quantized: quantizedFigures(m.model.quantized) });
  post({
    type: "inspected",
    result: {
      // each token's piece as minigpt tokenize shows it: a piece that is not whole UTF-8 as its bytes (<0xE2>), not U+FFFD
      tokens: ids.map((id) => ({ id, text: m.tokenizer.tokenString(id) })),
      leftOut,
      attention: trace.attention.map((layer) => layer.map((head) => Array.from(head))),
      nLayer: m.model.config.nLayer,
      nHead: m.model.config.nHead,
      next: topTokens(trace.nextLogits, 5).map((t) => ({ token: m.tokenizer.tokenString(t.id), p: t.p })),
      analysis: formatAnalysis(a),
      groups: a.parameters.groups,
    },
  });
}
