import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { type LossPoint, lossPlotSvg } from "../src/train/plot.js";
import { sparkline } from "../src/train/sparkline.js";
import { runCli, tempDir, wordCorpus } from "./helpers.js";

/** Minimal well-formedness check: every opened tag is closed in order, and no stray `<` or `&`. */
function assertWellFormed(svg: string): void {
  const stack: string[] = [];
  for (const m of svg.matchAll(/<(\/?)([a-zA-Z][\w-]*)([^>]*?)(\/?)>/g)) {
    const [, closing, name, , selfClosing] = m;
    if (selfClosing) continue;
    if (closing) assert.equal(stack.pop(), name, `unbalanced </${name}>`);
    else stack.push(name as string);
  }
  assert.deepEqual(stack, [], "unclosed tags");
  const text = svg.replace(/<[^>]*>/g, "");
  assert.doesNotMatch(text, /<|>/);
  assert.doesNotMatch(text, /&(?!amp;|lt;|gt;|quot;|apos;)/);
}

/** The (x, y) coordinates of a path's M/L commands. */
function pathPoints(svg: string, cls: string): { x: number; y: number; move: boolean }[] {
  const d = new RegExp(`<path class="${cls}" d="([^"]*)"`).exec(svg)?.[1];
  assert.ok(d !== undefined, `no ${cls} path`);
  return [...d.matchAll(/([ML])(-?[\d.]+) (-?[\d.]+)/g)].map((m) => ({ x: Number(m[2]), y: Number(m[3]), move: m[1] === "M" }));
}

function viewBox(svg: string): [number, number] {
  const m = /viewBox="0 0 (\d+) (\d+)"/.exec(svg);
  assert.ok(m);
  return [Number(m[1]), Number(m[2])];
}

const curve: LossPoint[] = [];
for (let s = 0; s <= 1000; s += 10) {
  const p: LossPoint = { step: s, loss: 1 + 3 * Math.exp(-s / 200) };
  if (s % 100 === 0) p.val_loss = 1.2 + 3 * Math.exp(-s / 220);
  curve.push(p);
}

describe("lossPlotSvg", () => {
  test("a self-contained, well-formed SVG with both curves, axes and legend", () => {
    const svg = lossPlotSvg(curve, "tiny run");
    assert.ok(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"'));
    assertWellFormed(svg);
    assert.doesNotMatch(svg, /<script|href=|url\(/, "must not reference anything external");
    assert.match(svg, /<title>tiny run<\/title>/);
    const train = pathPoints(svg, "train");
    const val = pathPoints(svg, "val");
    assert.equal(train.length, 101);
    assert.equal(val.length, 11);
    assert.equal((svg.match(/<circle /g) ?? []).length, 11);
    // Legend, axis labels, tick labels at round numbers.
    assert.match(svg, />train</);
    assert.match(svg, />val</);
    assert.match(svg, />step</);
    assert.match(svg, />loss</);
    for (const tick of ["0", "200", "400", "600", "800", "1000"]) assert.match(svg, new RegExp(`>${tick}</text>`));
    assert.match(svg, />1\.0<\/text>/);
    assert.match(svg, />4\.0<\/text>/);
    assert.match(svg, /train 1\.0202 at step 1000/);
  });

  test("coordinates follow the data: inside the canvas, x increasing, lower loss is lower on the page", () => {
    const svg = lossPlotSvg(curve, "t");
    const [w, h] = viewBox(svg);
    const train = pathPoints(svg, "train");
    for (const p of [...train, ...pathPoints(svg, "val")]) {
      assert.ok(p.x >= 0 && p.x <= w && p.y >= 0 && p.y <= h, `point ${p.x},${p.y} outside ${w}x${h}`);
    }
    for (let i = 1; i < train.length; i++) {
      assert.ok((train[i]?.x as number) > (train[i - 1]?.x as number));
      // Loss decreases monotonically, so SVG y (downwards) increases.
      assert.ok((train[i]?.y as number) >= (train[i - 1]?.y as number));
    }
    // Linear y: equal loss differences map to equal pixel differences (up to 0.1 px rounding).
    const lin = lossPlotSvg(
      [0, 1, 2, 3].map((s) => ({ step: s, loss: 4 - s })),
      "linear",
    );
    const ys = pathPoints(lin, "train").map((p) => p.y);
    const gaps = ys.slice(1).map((y, i) => y - (ys[i] as number));
    for (const g of gaps) assert.ok(Math.abs(g - (gaps[0] as number)) < 0.2, `uneven gaps ${gaps}`);
    // Train and val at the same step and the same loss land on the same pixel.
    const same = lossPlotSvg(
      [
        { step: 0, loss: 3, val_loss: 3 },
        { step: 10, loss: 2, val_loss: 2 },
      ],
      "same",
    );
    assert.deepEqual(pathPoints(same, "train"), pathPoints(same, "val"));
  });

  test("escapes the title", () => {
    const svg = lossPlotSvg(curve, `a <b> & "c"`);
    assertWellFormed(svg);
    assert.match(svg, /a &lt;b&gt; &amp; &quot;c&quot;/);
    assert.doesNotMatch(svg, /<b>/);
  });

  test("only train, only val, a single point, no data", () => {
    const trainOnly = lossPlotSvg(
      [
        { step: 1, loss: 2 },
        { step: 2, loss: 1.5 },
      ],
      "t",
    );
    assertWellFormed(trainOnly);
    assert.doesNotMatch(trainOnly, /class="val"/);
    assert.doesNotMatch(trainOnly, />val</);
    const valOnly = lossPlotSvg(
      [
        { step: 5, val_loss: 2 },
        { step: 10, val_loss: 1 },
      ],
      "v",
    );
    assertWellFormed(valOnly);
    assert.doesNotMatch(valOnly, /class="train"/);
    const single = lossPlotSvg([{ step: 3, loss: 2.5 }], "one");
    assertWellFormed(single);
    assert.doesNotMatch(single, /NaN|Infinity/);
    assert.equal(pathPoints(single, "train").length, 1);
    const empty = lossPlotSvg([], "nothing");
    assertWellFormed(empty);
    assert.match(empty, /no loss values yet/);
  });

  test("non-finite losses break the line and do not wreck the scale", () => {
    const pts: LossPoint[] = [
      { step: 0, loss: 3 },
      { step: 1, loss: 2.5 },
      { step: 2, loss: Number.NaN },
      { step: 3, loss: Number.POSITIVE_INFINITY },
      { step: 4, loss: 2 },
      { step: 5, loss: 1.5 },
    ];
    const svg = lossPlotSvg(pts, "diverged");
    assertWellFormed(svg);
    assert.doesNotMatch(svg, /NaN|Infinity/);
    const p = pathPoints(svg, "train");
    assert.equal(p.length, 4);
    assert.deepEqual(
      p.map((q) => q.move),
      [true, false, true, false],
    );
  });

  test("long runs are thinned but keep spikes", () => {
    const pts: LossPoint[] = [];
    for (let s = 0; s < 100_000; s++) pts.push({ step: s, loss: s === 50_000 ? 9 : 2 + Math.sin(s / 1000) * 0.1 });
    const svg = lossPlotSvg(pts, "long");
    assert.ok(svg.length < 100_000, `svg is ${svg.length} bytes`);
    const train = pathPoints(svg, "train");
    const minY = Math.min(...train.map((q) => q.y));
    // The spike (loss 9, the maximum) is the top of the y range, so it must reach the top tick line.
    assert.match(svg, />(9|10)(\.0)?<\/text>/);
    assert.ok(minY < 100, `spike lost (highest point at y=${minY})`);
  });
});

test("a run and its --resume through the CLI: loss.svg draws the learning rate on its own axis and marks the resume", () => {
  const dir = tempDir("minigpt-plot-");
  const out = join(dir, "out");
  const tiny = ["--n-layer", "1", "--n-head", "2", "--n-embd", "8", "--block-size", "8", "--batch-size", "2", "--eval-steps", "1"];
  const common = [...tiny, "--sample-tokens", "0", "--eval-interval", "3", "--warmup-steps", "2", "--lr", "1e-2", "--min-lr", "1e-3"];
  const first = runCli(["train", "--data", wordCorpus(dir), "--out", out, "--max-steps", "6", ...common]);
  assert.equal(first.status, 0, first.stderr);
  const resumed = runCli(["train", "--resume", "--out", out, "--max-steps", "10"]);
  assert.equal(resumed.status, 0, resumed.stderr);

  // metrics.jsonl records where the resume started: on the first step it trained
  const metrics = readFileSync(join(out, "metrics.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as { step: number; lr: number; resumed_from?: number });
  assert.deepEqual(
    metrics.map((m) => m.step),
    [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
  );
  assert.deepEqual(
    metrics.filter((m) => m.resumed_from !== undefined).map((m) => [m.step, m.resumed_from]),
    [[7, 6]],
  );

  const svg = readFileSync(join(out, "loss.svg"), "utf8");
  assertWellFormed(svg);
  const train = pathPoints(svg, "train");
  const lr = pathPoints(svg, "lr");
  assert.equal(lr.length, 10, "one learning-rate point per step");
  assert.deepEqual(
    lr.map((p) => p.x),
    train.map((p) => p.x),
    "the rate shares the steps' x axis",
  );
  // its own linear axis from zero: y = bottom - lr * k for one k at every step
  const bottom = Math.max(...[...svg.matchAll(/<path d="M[\d.]+ [\d.]+V([\d.]+)H/g)].map((m) => Number(m[1])));
  const k = (bottom - (lr[0]?.y as number)) / (metrics[0]?.lr as number);
  for (const [i, p] of lr.entries())
    assert.ok(Math.abs(bottom - p.y - k * (metrics[i]?.lr as number)) < 0.3, `lr point ${i + 1} at y ${p.y}`);
  assert.match(svg, /<g class="lr-axis"[^>]*>(\s*<text[^>]*>[^<]+<\/text>)+\s*<\/g>/);
  assert.match(svg, />learning rate<\/text>/);
  // the resume: a dashed line at step 6's x, labelled, and in the legend
  const line = /<line class="resume" x1="([\d.]+)" y1="[\d.]+" x2="([\d.]+)"[^>]*stroke-dasharray/.exec(svg);
  assert.ok(line, "a resume line");
  assert.equal(Number(line[1]), train[5]?.x);
  assert.equal(Number(line[2]), train[5]?.x);
  assert.match(svg, />resumed at 6<\/text>/);
  assert.match(svg, /<g class="legend"[\s\S]*>resumed<\/text>/);
});

describe("sparkline", () => {
  test("maps min..max onto the eight bars", () => {
    assert.equal(sparkline([0, 1, 2, 3, 4, 5, 6, 7]), "▁▂▃▄▅▆▇█");
    assert.equal(sparkline([4, 3, 2, 1]), "█▆▃▁");
    assert.equal(sparkline([10, 10, 10]), "▄▄▄");
    assert.equal(sparkline([]), "");
    assert.equal(sparkline([5]), "▄");
  });

  test("non-finite values are spaces and do not set the scale", () => {
    assert.equal(sparkline([1, Number.NaN, 2, Number.POSITIVE_INFINITY]), "▁ █ ");
    assert.equal(sparkline([Number.NaN, Number.NaN]), "  ");
  });

  test("long series are averaged down to width", () => {
    const values = Array.from({ length: 1000 }, (_, i) => 1000 - i);
    const s = sparkline(values, 40);
    assert.equal([...s].length, 40);
    assert.equal([...s][0], "█");
    assert.equal([...s][39], "▁");
    // Monotone input stays monotone.
    const bars = "▁▂▃▄▅▆▇█";
    const levels = [...s].map((c) => bars.indexOf(c));
    for (let i = 1; i < levels.length; i++) assert.ok((levels[i] as number) <= (levels[i - 1] as number));
    // Bucket means: [1,3] and [5,7] -> 2 and 6 -> lowest and highest bars.
    assert.equal(sparkline([1, 3, 5, 7], 2), "▁█");
    assert.equal([...sparkline(values)].length, 40);
    assert.equal([...sparkline([1, 2, 3], 40)].length, 3);
    assert.throws(() => sparkline([1, 2], 0), RangeError);
  });
});
