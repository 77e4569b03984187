/**
 * Learning mode: the attention weights that --explain and `minigpt attention` show equal
 * softmax(q·kᵀ/√hs) recomputed here independently, in float64, from the model's weights and the
 * prompt (a from-scratch GPT-2 forward with plain loops); and the CLI views run on a tiny model.
 */
import assert from "node:assert/strict";
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { explainTrainingStep, traceForward } from "../src/explain/explain.js";
import { saveTokenizer } from "../src/io/folder.js";
import { saveModel } from "../src/io/hf.js";
import { makeConfig } from "../src/nn/config.js";
import { GPT } from "../src/nn/gpt.js";
import { CharTokenizer } from "../src/tokenizer/char.js";
import { charModelFolder, runCli, tempDir } from "./helpers.js";

/** Reference attention weights [layer][head][t][s] by a plain float64 GPT-2 forward pass. */
function referenceAttention(model: GPT, ids: number[]): number[][][][] {
  const c = model.config;
  const C = c.nEmbd;
  const T = ids.length;
  const hs = C / c.nHead;
  const P = (n: string) => Array.from(model.param(n).data, Number);
  const wte = P("transformer.wte.weight");
  const wpe = P("transformer.wpe.weight");
  let x = ids.map((id, t) => Array.from({ length: C }, (_, i) => (wte[id * C + i] as number) + (wpe[t * C + i] as number)));
  const ln = (rows: number[][], w: number[], b: number[]) =>
    rows.map((r) => {
      const mean = r.reduce((a, v) => a + v, 0) / C;
      const varc = r.reduce((a, v) => a + (v - mean) ** 2, 0) / C;
      return r.map((v, i) => ((v - mean) / Math.sqrt(varc + c.layerNormEps)) * (w[i] as number) + (b[i] as number));
    });
  // HF Conv1D: weight (in, out), y = x·W + b
  const lin = (rows: number[][], w: number[], b: number[], nOut: number) =>
    rows.map((r) =>
      Array.from({ length: nOut }, (_, o) => {
        let s = b[o] as number;
        for (let i = 0; i < r.length; i++) s += (r[i] as number) * (w[i * nOut + o] as number);
        return s;
      }),
    );
  const gelu = (v: number) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3)));
  const result: number[][][][] = [];
  for (let l = 0; l < c.nLayer; l++) {
    const h = `transformer.h.${l}`;
    const qkv = lin(ln(x, P(`${h}.ln_1.weight`), P(`${h}.ln_1.bias`)), P(`${h}.attn.c_attn.weight`), P(`${h}.attn.c_attn.bias`), 3 * C);
    const heads: number[][][] = [];
    const y = x.map(() => new Array<number>(C).fill(0));
    for (let hd = 0; hd < c.nHead; hd++) {
      const att: number[][] = [];
      for (let t = 0; t < T; t++) {
        const scores: number[] = [];
        for (let s = 0; s <= t; s++) {
          let dot = 0;
          for (let i = 0; i < hs; i++) dot += (qkv[t]?.[hd * hs + i] as number) * (qkv[s]?.[C + hd * hs + i] as number);
          scores.push(dot / Math.sqrt(hs));
        }
        const m = Math.max(...scores);
        const e = scores.map((v) => Math.exp(v - m));
        const z = e.reduce((a, v) => a + v, 0);
        const row = [...e.map((v) => v / z), ...new Array<number>(T - t - 1).fill(0)];
        att.push(row);
        for (let i = 0; i < hs; i++) {
          let s = 0;
          for (let k = 0; k <= t; k++) s += (row[k] as number) * (qkv[k]?.[2 * C + hd * hs + i] as number);
          (y[t] as number[])[hd * hs + i] = s;
        }
      }
      heads.push(att);
    }
    result.push(heads);
    const proj = lin(y, P(`${h}.attn.c_proj.weight`), P(`${h}.attn.c_proj.bias`), C);
    x = x.map((r, t) => r.map((v, i) => v + (proj[t]?.[i] as number)));
    const hid = lin(ln(x, P(`${h}.ln_2.weight`), P(`${h}.ln_2.bias`)), P(`${h}.mlp.c_fc.weight`), P(`${h}.mlp.c_fc.bias`), c.nInner).map(
      (r) => r.map(gelu),
    );
    const mlp = lin(hid, P(`${h}.mlp.c_proj.weight`), P(`${h}.mlp.c_proj.bias`), C);
    x = x.map((r, t) => r.map((v, i) => v + (mlp[t]?.[i] as number)));
  }
  return result;
}

test("attention weights shown by --explain equal softmax(q·kᵀ/√hs) recomputed independently", () => {
  const tok = CharTokenizer.fromText("the cat sat on the mat");
  const c = makeConfig({ vocabSize: tok.vocabSize, blockSize: 32, nLayer: 3, nHead: 4, nEmbd: 32 });
  const model = new GPT(c, 11);
  // make the weights less uniform than the 0.02 init so the maps are not all near-uniform
  for (const [name, t] of model.params)
    if (name.endsWith("c_attn.weight")) for (let i = 0; i < t.size; i++) t.data[i] = (t.data[i] as number) * 25;
  const ids = tok.encode("the cat sat on the mat");
  const trace = traceForward(model, ids);
  const want = referenceAttention(model, ids);
  const T = ids.length;
  let worst = 0;
  let maxWeight = 0;
  assert.equal(trace.attention.length, c.nLayer);
  for (let l = 0; l < c.nLayer; l++) {
    assert.equal(trace.attention[l]?.length, c.nHead);
    for (let h = 0; h < c.nHead; h++) {
      const got = trace.attention[l]?.[h] as Float32Array;
      for (let t = 0; t < T; t++) {
        let rowSum = 0;
        for (let s = 0; s < T; s++) {
          const g = got[t * T + s] as number;
          const w = want[l]?.[h]?.[t]?.[s] as number;
          worst = Math.max(worst, Math.abs(g - w));
          if (s > 0) maxWeight = Math.max(maxWeight, g);
          rowSum += g;
          if (s > t) assert.equal(g, 0, "causal: no weight on future tokens");
        }
        assert.ok(Math.abs(rowSum - 1) < 1e-5);
      }
    }
  }
  assert.ok(worst < 1e-5, `max |difference| ${worst}`);
  assert.ok(maxWeight > 0.3, "the test weights are far from uniform");
  model.dispose();
});

test("explainTrainingStep: loss and gradient norms per layer, weights unchanged", () => {
  const tok = CharTokenizer.fromText("abcdefgh");
  const model = new GPT(makeConfig({ vocabSize: tok.vocabSize, blockSize: 8, nLayer: 2, nHead: 2, nEmbd: 8 }), 5);
  const before = model.param("transformer.h.0.attn.c_attn.weight").data.slice();
  const ids = tok.encode("abcdefgh");
  const e = explainTrainingStep(model, ids.slice(0, 7), ids.slice(1, 8));
  assert.ok(Math.abs(e.loss - Math.log(tok.vocabSize)) < 0.5, "an untrained model is near ln(V)");
  assert.deepEqual(
    e.groups.map((g) => g.name),
    ["embeddings", "h.0", "h.1", "ln_f"],
  );
  const total = Math.sqrt(e.groups.reduce((s, g) => s + g.gradNorm ** 2, 0));
  assert.ok(Math.abs(total - e.gradNorm) < 1e-4 * e.gradNorm);
  assert.ok(e.groups.every((g) => g.gradNorm > 0));
  assert.deepEqual(model.param("transformer.h.0.attn.c_attn.weight").data, before);
  model.dispose();
});

test("CLI: generate --explain, explain-step and attention --out on a tiny model", () => {
  const dir = tempDir("minigpt-explain-");
  charModelFolder(dir, "the cat sat on the mat.", { blockSize: 16, nLayer: 2, nHead: 2, nEmbd: 16 }, 3);
  const cli = (...args: string[]) => runCli(args);

  const g = cli("generate", "--model", dir, "--prompt", "the cat", "--explain", "--max-new-tokens", "3", "--temperature", "0");
  assert.equal(g.status, 0, g.stderr);
  assert.match(g.stdout, /forward pass over 7 tokens/);
  assert.match(g.stdout, /attention weights softmax\(q·kᵀ\/√8\) of layer 0/);
  assert.match(g.stdout, /head 1:/);
  assert.equal(g.stdout.match(/^step +\d+ +top-5: /gm)?.length, 3);
  const full = cli("generate", "--model", dir, "--prompt", "the cat", "--explain", "--explain-level", "full", "--max-new-tokens", "2");
  assert.equal(full.status, 0, full.stderr);
  assert.match(full.stdout, /h\.1\.mlp_act/);
  assert.match(full.stdout, /strongest attention of the last token/);

  const s = cli("explain-step", "--model", dir, "--text", "the cat sat on the mat.");
  assert.equal(s.status, 0, s.stderr);
  assert.match(s.stdout, /== loss: mean cross-entropy/);
  assert.match(s.stdout, /h\.1 +\d\.\d+e[-+]\d+/);
  const none = cli("explain-step", "--model", dir);
  assert.equal(none.status, 1);
  assert.match(none.stderr, /give the text of the training step/);

  // outside the model folder: attention never writes into one (it belongs to training)
  const out = join(tempDir("minigpt-explain-out-"), "att.html");
  const a = cli("attention", "--model", dir, "--prompt", "the mat", "--out", out);
  assert.equal(a.status, 0, a.stderr);
  const html = readFileSync(out, "utf8");
  assert.equal(html.match(/<canvas class="map"/g)?.length, 4, "one map per layer and head");
  assert.ok(!/<script src|<link|https?:\/\//.test(html), "self-contained");
});

/** The maps in an attention page, read back by hand (base64 of uint16 weight x 65535, causal rows). */
function pageMaps(html: string): { tokens: string[]; maps: { layer: number; head: number; weights: number[] }[] } {
  const json = /<script id="attention-data" type="application\/json">(.*?)<\/script>/s.exec(html)?.[1];
  assert.ok(json, "the page has its data");
  const data = JSON.parse(json) as { tokens: string[]; maps: { layer: number; head: number; w: string }[] };
  const maps = data.maps.map(({ layer, head, w }) => {
    const bytes = Buffer.from(w, "base64");
    return { layer, head, weights: Array.from({ length: bytes.length / 2 }, (_, i) => bytes.readUInt16LE(2 * i) / 65535) };
  });
  return { tokens: data.tokens, maps };
}

test("attention's page for 31 tokens on the default 4x4 heads: at most 150 KB, a colour scale, and the weights in it", () => {
  const dir = tempDir("minigpt-attention-");
  const prompt = "the cat sat on the mat. the cat"; // 31 characters, 31 tokens
  const tok = CharTokenizer.fromText(prompt);
  const model = new GPT(makeConfig({ vocabSize: tok.vocabSize, blockSize: 32, nLayer: 4, nHead: 4, nEmbd: 16 }), 5);
  saveModel(model, dir);
  saveTokenizer(dir, tok);
  const out = join(tempDir("minigpt-attention-out-"), "att.html");
  const r = runCli(["attention", "--model", dir, "--prompt", prompt, "--out", out]);
  assert.equal(r.status, 0, r.stderr);
  const bytes = statSync(out).size;
  assert.ok(bytes <= 150_000, `the page is ${bytes} bytes`);
  const html = readFileSync(out, "utf8");
  // the colour scale: a labelled bar from 0 to 1
  const legend = /<div class="legend"[^>]*>(.*?)<\/div><\/div><\/div>/s.exec(html)?.[1];
  assert.ok(legend, "a colour scale");
  assert.match(legend, /attention weight/);
  assert.match(legend, /<canvas id="scale"/);
  for (const tick of ["0", "0.5", "1"]) assert.match(legend, new RegExp(`>${tick.replace(".", "\\.")}</span>`));
  // every head's causal triangle, within 1/65535 of the weights
  const { tokens, maps } = pageMaps(html);
  assert.equal(tokens.length, 31);
  assert.equal(maps.length, 16);
  const T = 31;
  const trace = traceForward(model, tok.encode(prompt));
  for (const { layer, head, weights } of maps) {
    const w = trace.attention[layer]?.[head] as Float32Array;
    assert.equal(weights.length, (T * (T + 1)) / 2);
    let i = 0;
    for (let t = 0; t < T; t++)
      for (let s = 0; s <= t; s++, i++)
        assert.ok(Math.abs((weights[i] as number) - (w[t * T + s] as number)) <= 1 / 65535, `layer ${layer} head ${head} (${t}, ${s})`);
  }
  model.dispose();
});
