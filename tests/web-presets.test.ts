// The web playground's advice when a preset does not fit (web/src/presets.ts): only a smaller preset
// that would help is offered, never "pick a smaller preset" with tiny chosen. The page's own run of
// it (a too-short text, an out-of-memory large preset) is tests/web-playground.test.ts's.
import assert from "node:assert/strict";
import { test } from "node:test";
import { PRESETS, smallerPresets, tooShortAdvice } from "../web/src/presets.js";

const [tiny, small, medium, large] = PRESETS as [(typeof PRESETS)[0], (typeof PRESETS)[0], (typeof PRESETS)[0], (typeof PRESETS)[0]];

test("the presets grow, so 'smaller' means earlier in the list", () => {
  for (let i = 1; i < PRESETS.length; i++) {
    const [a, b] = [PRESETS[i - 1], PRESETS[i]] as [typeof tiny, typeof tiny];
    assert.ok(a.blockSize <= b.blockSize && a.nEmbd <= b.nEmbd && a.nLayer <= b.nLayer, `${a.name} before ${b.name}`);
  }
});

test("a text too short for tiny: paste more text, no smaller preset offered", () => {
  assert.deepEqual(smallerPresets(tiny), []);
  assert.equal(tooShortAdvice(tiny, 5), "paste more text");
});

test("a text too short for a bigger preset names the largest smaller one whose context it fills", () => {
  assert.equal(tooShortAdvice(large, 100), "paste more text or pick the small (nanoGPT CPU recipe) preset (context 64)");
  assert.equal(tooShortAdvice(large, 33), "paste more text or pick the tiny preset (context 32)");
  assert.equal(tooShortAdvice(medium, 10), "paste more text");
  assert.deepEqual(smallerPresets(small), [tiny]);
});

test("a loaded model's shape is no preset: nothing smaller to offer", () => {
  assert.deepEqual(smallerPresets({ ...tiny, name: "my-model" }), []);
  assert.equal(tooShortAdvice({ ...large, name: "my-model" }, 1000), "paste more text");
});
