/**
 * Weight-only quantization (src/io/quantize.ts, minigpt quantize): float16 scales round correctly;
 * every dequantized value is within its scale's half step of the original (int8 and int4, both
 * storage orders, shapes that leave a short last group or an odd input count); quantized folders
 * are >= 3x (int8) and >= 4.5x (int4) smaller at 2 layers x 128 wide, load in the commands and say
 * so; a damaged file (a missing scale) and misuse of the flags are one line.
 */
import assert from "node:assert/strict";
import { mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { Decoder, nextLogitsUncached } from "../src/generate/generate.js";
import { saveTokenizer } from "../src/io/folder.js";
import { loadModel, saveModel, saveQuantizedModel } from "../src/io/hf.js";
import { dequantizeMatrix, type QuantBits, type QuantLayout, quantizeMatrix } from "../src/io/quantize.js";
import { f16ToF32, f32ToF16, readSafetensors, writeSafetensors } from "../src/io/safetensors.js";
import { useBackend } from "../src/kernels/index.js";
import { makeConfig } from "../src/nn/config.js";
import { GPT } from "../src/nn/gpt.js";
import { QuantizedLinear } from "../src/nn/quantized.js";
import { Rng } from "../src/random.js";
import { noGrad, scope, Tensor } from "../src/tensor/tensor.js";
import { CharTokenizer } from "../src/tokenizer/char.js";
import { closeReport, runCli, tempDir } from "./helpers.js";

test("float32 -> float16 rounds to the nearest half (ties to even) and keeps every half exact", () => {
  const all = new Uint16Array(65536).map((_, i) => i);
  const widened = f16ToF32(all);
  const back = f32ToF16(widened);
  for (let i = 0; i < 65536; i++) {
    if (Number.isNaN(widened[i])) assert.ok(Number.isNaN(f16ToF32(back.subarray(i, i + 1))[0]), `NaN ${i}`);
    else assert.equal(back[i], i, `half 0x${i.toString(16)} changed`);
  }
  // random floats across the half range: the result is the nearest half
  const rng = new Rng(5);
  const xs = new Float32Array(20000).map(() => (rng.random() - 0.5) * 2 ** Math.floor(rng.random() * 40 - 26));
  const hs = f16ToF32(f32ToF16(xs));
  const finite = [...widened].filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  for (let i = 0; i < xs.length; i++) {
    const x = xs[i]!;
    // the halves on either side of x
    let lo = 0;
    let hi = finite.length - 1;
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      if (finite[mid]! <= x) lo = mid;
      else hi = mid;
    }
    const best = Math.min(Math.abs(finite[lo]! - x), Math.abs(finite[hi]! - x));
    assert.equal(Math.abs(hs[i]! - x), best, `x ${x} became ${hs[i]}`);
  }
  // ties go to the even mantissa; beyond the range is Infinity
  assert.equal(f16ToF32(f32ToF16(new Float32Array([1 + 2 ** -11])))[0], 1);
  assert.equal(f16ToF32(f32ToF16(new Float32Array([1 + 3 * 2 ** -11])))[0], 1 + 2 ** -9);
  assert.equal(f16ToF32(f32ToF16(new Float32Array([70000])))[0], Number.POSITIVE_INFINITY);
});

test("dequantized weights are within half a step (s/2) of the originals: int8 and int4, both layouts, awkward shapes", () => {
  const rng = new Rng(11);
  const shapes: [number, number, number][] = [
    [64, 96, 32], // in, out, G
    [33, 7, 32], // odd input count, a short last group
    [5, 3, 4],
    [1, 1, 2],
    [100, 10, 16],
  ];
  for (const bits of [8, 4] as QuantBits[])
    for (const layout of ["in-out", "out-in"] as QuantLayout[])
      for (const [IN, OUT, G] of shapes) {
        const w = new Float32Array(IN * OUT).map(() => rng.normal() * 0.05);
        w[0] = 0.5; // one outlier, so groups differ in scale
        if (IN * OUT > 3) w.fill(0, 1, 3); // and zeros
        const m = quantizeMatrix(w, IN, OUT, layout, bits, G);
        const d = dequantizeMatrix(m);
        const groupSize = bits === 8 ? IN : G;
        const groups = Math.ceil(IN / groupSize);
        for (let o = 0; o < OUT; o++)
          for (let i = 0; i < IN; i++) {
            const k = layout === "in-out" ? i * OUT + o : o * IN + i;
            const g = Math.floor(i / groupSize);
            const s = m.scales[layout === "in-out" ? g * OUT + o : o * groups + g]!;
            // the scale is a half at or above max|w|/qmax, at most one half-ulp above
            assert.equal(f16ToF32(f32ToF16(new Float32Array([s])))[0], s);
            const err = Math.abs(d[k]! - w[k]!);
            assert.ok(
              err <= s / 2 + 1e-7 * Math.abs(w[k]!),
              `int${bits} ${layout} [${IN},${OUT}] G${G} (${i},${o}): error ${err} > s/2 ${s / 2}`,
            );
          }
        // stored values in range: int8 -127..127, int4 nibbles -7..7
        if (bits === 8) assert.ok((m.q as Int8Array).every((v) => v >= -127));
        else
          for (const byte of m.q)
            for (const nibble of [byte & 0xf, byte >> 4]) assert.ok(nibble !== 8, `int4 nibble -8 stored (byte 0x${byte.toString(16)})`);
      }
});

test("int4 packs two consecutive inputs per byte, low nibble first", () => {
  // in 4, out 1: inputs 1, -2, 3, -7 with one group: scale 1
  const m = quantizeMatrix(new Float32Array([1, -2, 3, -7]), 4, 1, "in-out", 4, 4);
  assert.deepEqual([...m.scales], [1]);
  assert.deepEqual([...m.q], [0x01 | (0xe << 4), 0x03 | (0x9 << 4)]);
});

/** a 2-layer x 128-wide model folder with random weights and a char tokenizer */
function modelFolder(): string {
  const dir = tempDir("minigpt-quant-");
  const tok = CharTokenizer.fromText("the quick brown fox jumps over the lazy dog. THE END!");
  const model = new GPT(makeConfig({ vocabSize: tok.vocabSize, blockSize: 64, nLayer: 2, nHead: 4, nEmbd: 128 }), 3);
  saveModel(model, dir);
  saveTokenizer(dir, tok);
  model.dispose();
  return dir;
}

test("minigpt quantize: int8 >= 3x and int4 >= 4.5x smaller files at 2 x 128, logits close to float32's, and generate/analyze say it is quantized", () => {
  const dir = modelFolder();
  const tmp = tempDir("minigpt-quant-out-");
  const size = (d: string) => statSync(join(d, "model.safetensors")).size;
  const idx = Tensor.ints(
    Int32Array.from({ length: 32 }, (_, i) => (i * 7) % 20),
    [1, 32],
  );
  const logitsOf = (d: string) => {
    const m = loadModel(d);
    const data = noGrad(() => m.forward(idx).logits.data.slice());
    m.dispose();
    return data;
  };
  const fp32 = logitsOf(dir);
  const spread = Math.max(...fp32) - Math.min(...fp32);
  // int8's bound is its activations' (rounded to 63 levels a row, quant-packed.ts's ACTIVATION_MAX:
  // on these random weights ~1.2% of the spread); int4's is its weights'
  for (const [bits, minRatio, maxErr] of [
    [8, 3, 0.02],
    [4, 4.5, 0.1],
  ] as const) {
    const out = join(tmp, `q${bits}`);
    const r = runCli(["quantize", "--model", dir, "--out", out, "--bits", String(bits)]);
    assert.equal(r.status, 0, r.stderr);
    const ratio = size(dir) / size(out);
    assert.ok(ratio >= minRatio, `int${bits}: file ${ratio.toFixed(2)}x smaller, want >= ${minRatio}`);
    // and says so: the file's size and how much smaller than the float32 weights (4 bytes a parameter)
    assert.match(
      r.stdout,
      new RegExp(
        `^wrote .*q${bits}: int${bits} .*weights of .*, model\\.safetensors [\\d.]+ [KM]B \\(([\\d.]+)x smaller than its float32 weights, [\\d.]+ [KM]B\\)\\n$`,
      ),
    );
    const said = Number(/\(([\d.]+)x smaller/.exec(r.stdout)?.[1]);
    assert.ok(Math.abs(said - ratio) < 0.1 * ratio, `said ${said}x, the files ${ratio.toFixed(2)}x`);
    const config = JSON.parse(readFileSync(join(out, "config.json"), "utf8"));
    assert.deepEqual(config.quantization_config, {
      quant_method: "minigpt",
      bits,
      group_size: bits === 8 ? null : 32,
      scale_dtype: "float16",
    });
    const q = logitsOf(out);
    let worst = 0;
    for (let i = 0; i < q.length; i++) worst = Math.max(worst, Math.abs(q[i]! - fp32[i]!));
    assert.ok(worst <= maxErr * spread, `int${bits}: logits differ by ${worst} (spread ${spread})`);
    const g = runCli(["generate", "--model", out, "--prompt", "the", "--max-new-tokens", "5", "--temperature", "0"]);
    assert.equal(g.status, 0, g.stderr);
    assert.match(g.stderr, new RegExp(`holds int${bits}.* weights \\(quantized\\)`));
    // each output's bits do not depend on the split over threads, from the first call on
    const g2 = runCli(["generate", "--model", out, "--prompt", "the", "--max-new-tokens", "5", "--temperature", "0"], {
      env: { MINIGPT_THREADS: "2" },
    });
    assert.equal(g2.stdout, g.stdout, `int${bits}: 2 threads generate another text`);
    const a = runCli(["analyze", "--model", out]);
    assert.equal(a.status, 0, a.stderr);
    assert.match(a.stderr, /quantized/);
  }
  idx.dispose();
});

test("quantize refuses to overwrite without --overwrite, a quantized model, bad flags; a missing scale is one line", () => {
  const dir = modelFolder();
  const out = join(tempDir("minigpt-quant-out-"), "q");
  assert.equal(runCli(["quantize", "--model", dir, "--out", out]).status, 0);
  const again = runCli(["quantize", "--model", dir, "--out", out]);
  assert.equal(again.status, 1);
  assert.match(again.stderr, /already holds files.*--overwrite/);
  // quantize has no --resume (it was offered, as to a training run)
  assert.doesNotMatch(again.stderr, /--resume/);
  assert.equal(runCli(["quantize", "--model", dir, "--out", out, "--overwrite", "--bits", "4"]).status, 0);
  const twice = runCli(["quantize", "--model", out, "--out", `${out}2`]);
  assert.match(twice.stderr, /is quantized already \(int4 \(groups of 32\)\)/);
  assert.match(runCli(["quantize", "--model", dir, "--out", `${out}3`, "--bits", "4", "--group-size", "7"]).stderr, /must be even/);
  assert.match(runCli(["quantize", "--model", dir, "--out", `${out}3`, "--group-size", "16"]).stderr, /applies to --bits 4/);
  assert.match(runCli(["quantize", "--model", dir, "--out", dir]).stderr, /is the model being read/);
  // drop one scale from the file
  const file = join(out, "model.safetensors");
  const st = readSafetensors(readFileSync(file), file);
  st.tensors.delete("transformer.h.1.mlp.c_fc.weight_scale");
  writeFileSync(
    file,
    writeSafetensors(
      [...st.tensors].map(([name, t]) => ({ name, dtype: t.dtype as "F32", shape: t.shape, data: t.data as Float32Array })),
      st.metadata,
    ),
  );
  const damaged = runCli(["generate", "--model", out, "--prompt", "the", "--max-new-tokens", "2"]);
  assert.equal(damaged.status, 1);
  assert.equal(damaged.stderr.trim().split("\n").length, 1, damaged.stderr);
  assert.match(damaged.stderr, /missing tensor transformer\.h\.1\.mlp\.c_fc\.weight_scale, the scales of the int4 weight/);
});

test("a quantized folder's load line says what each command does with it: analyze reads, eval scores, generate decodes, a refused quantize only refuses", () => {
  const dir = modelFolder();
  const q = join(tempDir("minigpt-quant-out-"), "q8");
  assert.equal(runCli(["quantize", "--model", dir, "--out", q]).status, 0);
  const a = runCli(["analyze", "--model", q]);
  assert.equal(a.status, 0, a.stderr);
  assert.equal(a.stderr.trim(), `${q} holds int8 weights (quantized)`);
  const refused = runCli(["quantize", "--model", q, "--out", `${q}-again`]);
  assert.equal(refused.status, 1);
  assert.equal(refused.stderr.trim(), `minigpt quantize: ${q} is quantized already (int8); quantize its float32 original`);
  const text = join(dir, "text.txt");
  writeFileSync(text, "the quick brown fox jumps over the lazy dog. THE END!\n".repeat(20));
  const e = runCli(["eval", "--model", q, "--data", text, "--split", "all"]);
  assert.equal(e.status, 0, e.stderr);
  assert.match(e.stderr, new RegExp(`^${q} holds int8 weights \\(quantized\\), scoring with int kernels$`, "m"));
  const g = runCli(["generate", "--model", q, "--prompt", "the", "--max-new-tokens", "2"]);
  assert.equal(g.status, 0, g.stderr);
  assert.match(g.stderr, new RegExp(`^${q} holds int8 weights \\(quantized\\), decoding with int kernels$`, "m"));
});

test("a quantized folder runs the int8/int4 kernels without a tape: the decode equals the forward, ref equals wasm, both near the float weights' logits", async () => {
  const dir = modelFolder();
  const tmp = tempDir("minigpt-quant-decode-");
  for (const bits of [8, 4] as const) {
    const out = join(tmp, `q${bits}`);
    const q = saveQuantizedCopy(dir, out, bits);
    const byBackend: Float32Array[][] = [];
    for (const backendName of ["ref", "wasm"] as const) {
      await useBackend(backendName, { threads: 1 });
      const model = loadModel(q);
      assert.ok(model.h.every((b) => b.attn.c_attn instanceof QuantizedLinear && b.mlp.c_proj instanceof QuantizedLinear));
      const prompt = [1, 5, 9, 2, 7];
      const decoder = new Decoder(model, prompt, { maxNewTokens: 6, temperature: 0 });
      const ids = [...prompt];
      const steps: Float32Array[] = [];
      for (let i = 0; i < 6; i++) {
        const step = decoder.step();
        assert.ok(step);
        steps.push(step.logits.slice());
        // the forward without a tape runs the same integer kernels (each row on its own), the
        // attention summed in another order
        const want = nextLogitsUncached(model, ids);
        const r = closeReport(step.logits, want, 2e-4, 1e-4);
        assert.ok(r.ok, `int${bits} [${backendName}] step ${i}: decode logits differ from the forward's by ${r.maxAbsDiff}`);
        // the tape's forward runs on the dequantized float weights; the kernels also round each
        // linear layer's input row to int8 (to -63..63 with int8 weights, twice as coarse as int4's
        // -127..127: on these random weights int8's rel was 2.5%): near, not equal
        const float = scope(() => {
          const logits = model.forward(Tensor.ints(ids, [1, ids.length])).logits;
          return logits.data.slice((ids.length - 1) * model.config.vocabSize, ids.length * model.config.vocabSize);
        });
        let diff = 0;
        let size = 0;
        for (let v = 0; v < float.length; v++) {
          diff += (step.logits[v]! - float[v]!) ** 2;
          size += float[v]! ** 2;
        }
        const rel = Math.sqrt(diff / size);
        assert.ok(
          rel > 0 && rel < (bits === 8 ? 0.04 : 0.02),
          `int${bits} [${backendName}] step ${i}: decode logits differ by ${rel} (RMS, relative)`,
        );
        ids.push(step.id);
      }
      byBackend.push(steps);
      model.dispose();
    }
    // the same integer products on both backends; only the float ops around them are summed in other orders
    for (let i = 0; i < 6; i++) {
      const r = closeReport(byBackend[1]![i]!, byBackend[0]![i]!, 2e-4, 1e-4);
      assert.ok(r.ok, `int${bits} step ${i}: wasm decode logits differ from ref's by ${r.maxAbsDiff}`);
    }
  }
});

/** minigpt quantize in-process: the folder's model saved with int8/int4 weights and its tokenizer */
function saveQuantizedCopy(dir: string, out: string, bits: 8 | 4): string {
  const model = loadModel(dir);
  mkdirSync(out);
  saveQuantizedModel(model, out, bits === 8 ? { bits: 8, groupSize: null } : { bits: 4, groupSize: 32 });
  model.dispose();
  return out;
}
