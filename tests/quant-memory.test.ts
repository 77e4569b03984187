/**
 * A loaded quantized folder takes less memory than its float32 original (issue 24): its matrices are
 * held only as the integer kernels' packed int8 / int4 (src/nn/quantized.ts), never as a float copy,
 * neither after loading nor at the load's peak; their float values, made on demand from the packed
 * form, are exactly the file's dequantized ones (q·s), in both storage orders, with a short last
 * group and padded inputs; GPT.dequantize makes it a float model with the same logits.
 */
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { loadModel, saveQuantizedModel } from "../src/io/hf.js";
import { dequantizeMatrix, quantizedMatricesFromSafetensors } from "../src/io/quantize.js";
import { readSafetensorsFile } from "../src/io/safetensors-file.js";
import { useBackend } from "../src/kernels/index.js";
import { makeConfig } from "../src/nn/config.js";
import { GPT, parameterShapes } from "../src/nn/gpt.js";
import { heap } from "../src/tensor/memory.js";
import { scope, Tensor } from "../src/tensor/tensor.js";
import { tempDir } from "./helpers.js";

// 80 inputs: int4 groups of 24 leave a short last one, and neither 80 nor 320 is a whole number of 24s
const config = makeConfig({ vocabSize: 203, blockSize: 32, nLayer: 2, nHead: 4, nEmbd: 80 });
const quantizations = [
  { bits: 8, groupSize: null },
  { bits: 4, groupSize: 24 },
] as const;

test("a loaded int8/int4 folder holds its matrices only packed: the heap's live bytes and the load's peak stay below the float copy's, and their float values are the file's q·s", async () => {
  await useBackend("wasm", { threads: 1 });
  const dir = tempDir("minigpt-quant-memory-");
  const float = new GPT(config, 5);
  const matrixNames = [
    "transformer.wte.weight",
    ...parameterShapes(config)
      .map(([n]) => n)
      .filter((n) => /\.(c_attn|c_proj|c_fc)\.weight$/.test(n)),
  ];
  const size = (n: string) => (parameterShapes(config).find(([m]) => m === n)?.[1] ?? []).reduce((a, b) => a * b, 1);
  const matrixFloats = matrixNames.reduce((s, n) => s + size(n), 0);
  const otherFloats = float.parameterCount() - matrixFloats;
  for (const q of quantizations) {
    const out = join(dir, `int${q.bits}`);
    mkdirSync(out);
    saveQuantizedModel(float, out, q);
    const h = heap();
    const before = h.stats().liveBytes;
    h.resetPeak();
    const model = loadModel(out);
    const { liveBytes, peakLiveBytes } = h.stats();
    // packed int8 is ~1 byte a weight, int4 ~0.5 plus a float32 scale per 24; padding to 16 outputs
    // and 64-byte allocations add a little. A float copy would add 4 bytes a weight.
    const bound = 4 * otherFloats + matrixFloats * (q.bits === 8 ? 1.25 : 0.8) + 64 * 1024;
    assert.ok(liveBytes - before < bound, `int${q.bits}: the model holds ${liveBytes - before} heap bytes; packed, at most ${bound}`);
    assert.ok(
      peakLiveBytes - before < bound,
      `int${q.bits}: loading peaked at ${peakLiveBytes - before} heap bytes; packed, at most ${bound}`,
    );
    for (const name of matrixNames) assert.ok(!model.params.has(name), `int${q.bits}: ${name} has a float tensor`);
    assert.equal(model.parameterCount(), float.parameterCount());
    // the float values made from the packed form are the file's dequantized ones, bit for bit
    const file = readSafetensorsFile(join(out, "model.safetensors"));
    const matrices = quantizedMatricesFromSafetensors(file, { bits: q.bits, groupSize: q.groupSize }, config, out);
    for (const [name, m] of matrices) assert.deepEqual(model.weightValues(name), dequantizeMatrix(m), `int${q.bits}: ${name}`);
    model.dispose();
    assert.equal(h.stats().liveBytes, before, `int${q.bits}: dispose frees everything the model held`);
    // made a float model (the web page fine-tuning a loaded one): the tape's logits as before, every
    // parameter a float tensor in file order, nothing packed left
    const again = loadModel(out);
    const ids = Tensor.ints([1, 5, 9, 2, 7, 3], [1, 6]);
    const tape = scope(() => again.forward(ids).logits.data.slice());
    again.dequantize();
    assert.equal(again.quantized.size, 0);
    assert.deepEqual([...again.params.keys()], parameterShapes(config).map(([n]) => n));
    assert.ok(again.h[0]?.attn.c_attn.plain(), `int${q.bits}: the layers are plain float ones`);
    assert.deepEqual(scope(() => again.forward(ids).logits.data.slice()), tape, `int${q.bits}: the dequantized model's logits`);
    again.dispose();
    ids.dispose();
  }
  float.dispose();
});
