// Plain temperature sampling (top-k and top-p off: the generation loop's case) on a backend without
// a sampleTemperature kernel (WebGPU, whose kernels answer only asynchronously): sampleToken must
// then draw exactly the id its float64 definition (src/kernels/ref/sample.ts) draws with the same
// uniform, past BACKEND_SOFTMAX_MIN_V too, where a CPU backend's kernel takes over. Shared by
// tests/webgpu-generate.test.ts (Dawn in Node) and the browser page tests/browser/model.ts
// (navigator.gpu); it uses no Node API.
import { Decoder } from "../src/generate/generate.js";
import { BACKEND_SOFTMAX_MIN_V, sampleToken } from "../src/generate/sample.js";
import { sampleTemperature } from "../src/kernels/ref/sample.js";
import { makeConfig } from "../src/nn/config.js";
import { GPT } from "../src/nn/gpt.js";
import { Rng } from "../src/random.js";

export interface TemperatureDraws {
  draws: number;
  /** one line per draw that differs from the definition's (or the error that stopped the draws) */
  mismatches: string[];
}

const SIZES = [BACKEND_SOFTMAX_MIN_V, 50_257];
const TEMPERATURES = [0.7, 1, 2.5];
const DRAWS = 16;
const NEW_TOKENS = 12;
/** every draw temperatureDraws makes when none fails */
export const TEMPERATURE_DRAWS = SIZES.length * TEMPERATURES.length * DRAWS + NEW_TOKENS;

/**
 * Draws on the backend in use: from fixed logits (a plain array, as a device's read-back is), and
 * a seeded generation of a model with a 4,096-token vocabulary step by step (Decoder.stepAsync,
 * the GPU's path), each token against the definition on that step's own logits.
 */
export async function temperatureDraws(): Promise<TemperatureDraws> {
  const mismatches: string[] = [];
  let draws = 0;
  try {
    for (const V of SIZES)
      for (const T of TEMPERATURES) {
        const rng = new Rng(V * 10 + Math.round(T * 10));
        // spread logits (N(0, 2)), so that the draws fall on many ids, not a near-uniform few
        const logits = Float32Array.from({ length: V }, () => rng.normal() * 2);
        const drawing = new Rng(7);
        const defining = new Rng(7);
        for (let k = 0; k < DRAWS; k++) {
          const got = sampleToken(logits, { temperature: T, topK: 0, topP: 1 }, drawing);
          const want = sampleTemperature(logits, V, T, defining.random());
          draws++;
          if (got !== want) mismatches.push(`V=${V} T=${T} draw ${k}: ${got}, the definition ${want}`);
        }
      }
    const model = new GPT(makeConfig({ vocabSize: BACKEND_SOFTMAX_MIN_V, blockSize: 16, nLayer: 1, nHead: 2, nEmbd: 16 }), 3);
    const decoder = new Decoder(model, [1, 2, 3], { maxNewTokens: NEW_TOKENS, temperature: 0.8, seed: 5 });
    const defining = new Rng(5);
    try {
      for (let s = await decoder.stepAsync(); s; s = await decoder.stepAsync()) {
        const want = sampleTemperature(s.logits, s.logits.length, 0.8, defining.random());
        draws++;
        if (s.id !== want) mismatches.push(`generation step ${draws}: ${s.id}, the definition ${want}`);
      }
    } finally {
      decoder.dispose();
      model.dispose();
    }
  } catch (e) {
    mismatches.push(`after ${draws} draws: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`);
  }
  return { draws, mismatches };
}
