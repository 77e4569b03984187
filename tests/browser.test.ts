// The wasm backend, thread pool included, in a real browser: headless Debian chromium driven by
// playwright-core. A tiny static server (tests/static-server.ts: 127.0.0.1, random port) serves the
// repository with the headers that make the page cross-origin isolated (needed for SharedArrayBuffer and shared
// WebAssembly memory); tests/browser/kernels.html loads the compiled dist/ modules, runs the wasm
// kernels against the ref kernels in the page (tests/browser/kernels.ts) and reports the
// differences, which are asserted here.
//
// README's browser page runs here too, taken from README.md as written, on a model folder that
// `minigpt train` made, from a plain static server (no isolation headers).
//
// The PyTorch fixtures run on the webgpu backend in the page too, through navigator.gpu: Chromium is
// started with WebGPU on and SwiftShader (its CPU implementation, in Debian's chromium package) as
// the adapter, since CI has no GPU; without an adapter those tests skip with the reason.
//
// Needs /usr/bin/chromium (apt-get install chromium; .ci/run installs it when it can), else every
// test here is skipped with the reason. Needs dist/: built here when missing or older than the sources.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { appendFileSync, copyFileSync, existsSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { dirname, join, relative } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { type Browser, chromium, type Page } from "playwright-core";
import { get_encoding } from "tiktoken";
import type { KernelReport, PageApi, RunOptions } from "./browser/kernels.js";
import type { GpuFixtureReport, ModelPageApi, ModelReport } from "./browser/model.js";
import { fixtureFolders, runCli, tempDir, wordCorpus } from "./helpers.js";
import { serve } from "./static-server.js";
import { TEMPERATURE_DRAWS } from "./temperature-draws.js";

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
const CHROMIUM = "/usr/bin/chromium";
const HAVE_CHROMIUM = existsSync(CHROMIUM);
const SKIP_REASON = `${CHROMIUM} not found (apt-get install chromium): the browser test cannot run`;
/** a page call that takes longer than this means the workers (or the page) stopped answering */
const CALL_MS = 120_000;
const FIXTURES = fixtureFolders();
/** WebGPU on a localhost page, on SwiftShader's adapter (headless Chromium offers none otherwise) */
const WEBGPU_FLAGS = ["--enable-unsafe-webgpu", "--use-webgpu-adapter=swiftshader"];

// ---- dist/ ---------------------------------------------------------------------------------------

const WASM = ["kernels-simd.wasm", "kernels-relaxed.wasm"];

function tsSources(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...tsSources(p));
    else if (name.endsWith(".ts") && !name.endsWith(".d.ts")) out.push(p);
  }
  return out;
}

/** sources (src/ and the page script) whose dist/ .js is missing or older */
function staleSources(): string[] {
  const pageSources = [
    "browser/kernels.ts",
    "kernel-cases.ts",
    "kernel-data.ts",
    "browser/model.ts",
    "browser/steps.ts",
    "browser/train-worker.ts",
    "fixture-check.ts",
    "temperature-draws.ts",
    "close.ts",
  ];
  const sources = [...tsSources(join(ROOT, "src")), ...pageSources.map((f) => join(ROOT, "tests", f))];
  return sources.filter((ts) => {
    const js = join(ROOT, "dist", relative(ROOT, ts)).replace(/\.ts$/, ".js");
    return !existsSync(js) || statSync(js).mtimeMs < statSync(ts).mtimeMs;
  });
}

function distWasm(name: string): string {
  return join(ROOT, "dist/src/kernels/wasm/build", name);
}

function srcWasm(name: string): string {
  return join(ROOT, "src/kernels/wasm/build", name);
}

function run(cmd: string, args: string[]): { ok: boolean; output: string } {
  const r = spawnSync(cmd, args, { cwd: ROOT, encoding: "utf8", timeout: 600_000 });
  return { ok: r.status === 0, output: `${r.stdout ?? ""}${r.stderr ?? ""}${r.error ? String(r.error) : ""}` };
}

/**
 * Makes dist/ what a browser should load: `npm run build` when the wasm builds are missing, tsc when
 * compiled modules are missing or older than their sources, and the wasm builds copied to dist/ when
 * they differ. Returns notes for the test output; throws when it cannot.
 */
function ensureBuilt(): string[] {
  const notes: string[] = [];
  if (WASM.some((w) => !existsSync(srcWasm(w)) || !existsSync(distWasm(w)))) {
    notes.push("dist/ or the wasm builds are missing: ran npm run build");
    const r = run("npm", ["run", "build"]);
    if (!r.ok) throw new Error(`npm run build failed; the browser test needs dist/:\n${r.output}`);
  }
  const stale = staleSources();
  if (stale.length > 0) {
    notes.push(`${stale.length} compiled module(s) missing or older than the sources: ran tsc`);
    // tsc emits even when some file has a type error (npm run check reports those); what matters here is the output
    const r = run(process.execPath, [join(ROOT, "node_modules/typescript/bin/tsc"), "-p", "tsconfig.json"]);
    const still = staleSources();
    if (still.length > 0)
      throw new Error(`tsc did not bring dist/ up to date (${still.map((f) => relative(ROOT, f)).join(", ")}):\n${r.output}`);
  }
  for (const w of WASM) {
    if (!readFileSync(srcWasm(w)).equals(readFileSync(distWasm(w)))) {
      copyFileSync(srcWasm(w), distWasm(w));
      notes.push(`copied the newer ${w} into dist/`);
    }
  }
  return notes;
}

// ---- a static server for a cross-origin-isolated page ----------------------------------------------

// ---- the page ----------------------------------------------------------------------------------------

/** p, or a rejection naming `what` after ms */
async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms / 1000} s (workers never answered, or the page hung)`)), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

describe("wasm and webgpu backends in a browser (headless chromium, cross-origin isolated page)", () => {
  let server: Server | null = null;
  let browser: Browser | null = null;
  let page: Page | null = null;
  let modelPage: Page | null = null;
  const problems: string[] = [];
  let setupError: unknown = null;
  let notes: string[] = [];

  before(
    async () => {
      if (!HAVE_CHROMIUM) return;
      try {
        notes = ensureBuilt();
        server = await serve(ROOT, Object.fromEntries(FIXTURES.map(({ dir }, i) => [`/fixtures/${i}/`, dir])));
        const { port } = server.address() as AddressInfo;
        browser = await chromium.launch({ executablePath: CHROMIUM, args: WEBGPU_FLAGS, timeout: 60_000 });
        page = await browser.newPage();
        page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
        page.on("console", (m) => {
          if (m.type() === "error") problems.push(`console error: ${m.text()}`);
        });
        page.setDefaultTimeout(CALL_MS);
        await page.goto(`http://127.0.0.1:${port}/tests/browser/kernels.html`);
        await page.waitForFunction(() => "minigptKernels" in globalThis, undefined, { timeout: 30_000 });
        modelPage = await browser.newPage();
        modelPage.on("pageerror", (e) => problems.push(`model page error: ${e.message}`));
        modelPage.on("console", (m) => {
          if (m.type() === "error") problems.push(`model page console error: ${m.text()}`);
        });
        modelPage.setDefaultTimeout(CALL_MS);
        await modelPage.goto(`http://127.0.0.1:${port}/tests/browser/model.html`);
        await modelPage.waitForFunction(() => "minigptModel" in globalThis, undefined, { timeout: 30_000 });
      } catch (e) {
        setupError = e;
      }
    },
    { timeout: 900_000 },
  );

  after(async () => {
    await browser?.close();
    server?.closeAllConnections();
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  });

  /** the page, or a skip / failure explaining why there is none */
  function ready(t: { skip(message?: string): void; diagnostic(message: string): void }): Page | null {
    if (!HAVE_CHROMIUM) {
      t.skip(SKIP_REASON);
      return null;
    }
    for (const n of notes.splice(0)) t.diagnostic(n);
    if (setupError)
      throw new Error(
        `browser test setup failed: ${setupError instanceof Error ? setupError.stack : String(setupError)}\n${problems.join("\n")}`,
      );
    problems.length = 0; // each test answers for the page errors during it
    return page as Page;
  }

  async function runInPage(p: Page, options: RunOptions): Promise<KernelReport> {
    const what = `kernels in the page (${JSON.stringify(options)})`;
    try {
      return await within(
        p.evaluate((o) => (globalThis as unknown as { minigptKernels: PageApi }).minigptKernels.run(o), options),
        CALL_MS,
        what,
      );
    } catch (e) {
      throw new Error(`${what} failed: ${e instanceof Error ? e.message : String(e)}\n${problems.join("\n")}`);
    }
  }

  test("the page is cross-origin isolated and defaults to navigator.hardwareConcurrency threads", async (t) => {
    const p = ready(t);
    if (!p) return;
    assert.equal(await p.evaluate(() => globalThis.crossOriginIsolated), true, "the page is not cross-origin isolated");
    const d = await within(
      p.evaluate(() => (globalThis as unknown as { minigptKernels: PageApi }).minigptKernels.defaults()),
      CALL_MS,
      "loading the backend with its defaults",
    );
    t.diagnostic(`default: ${d.simd} SIMD, ${d.threads} threads (hardwareConcurrency ${d.hardwareConcurrency})`);
    assert.equal(d.threads, Math.max(1, d.hardwareConcurrency));
  });

  // the 3x12 matmul tile (not the browser's default) once, with the relaxed build
  const settings = [
    ...(["relaxed", "plain"] as const).flatMap((simd) => [1, 2].map((threads) => ({ simd, threads, tile: "4x8" as const }))),
    ...[1, 2].map((threads) => ({ simd: "relaxed" as const, threads, tile: "3x12" as const })),
  ];
  for (const { simd, threads, tile } of settings) {
    test(`matmul, layernorm, gelu, softmax, sampling, attention match ref: ${simd} SIMD, ${threads} thread${threads > 1 ? "s" : ""}, ${tile} matmul tile`, async (t) => {
      const p = ready(t);
      if (!p) return;
      const r = await runInPage(p, { simd, threads, tile });
      t.diagnostic(`${r.cases.length} cases in ${Math.round(r.ms)} ms; stats ${JSON.stringify(r.stats)}`);
      let worstCase = r.cases[0];
      for (const c of r.cases) if (worstCase && !(c.worst <= worstCase.worst)) worstCase = c;
      if (worstCase) {
        t.diagnostic(
          `closest to its tolerance: ${worstCase.name}, max|diff| ${worstCase.maxAbsDiff.toExponential(2)} (${worstCase.worst.toFixed(3)}x the tolerance)`,
        );
      }
      for (const c of r.cases.filter((c) => c.name.startsWith("matmulBT 256x128x300") || c.name.startsWith("attentionForward 4,64"))) {
        t.diagnostic(`${c.name}: max|diff| ${c.maxAbsDiff.toExponential(2)}`);
      }
      assert.equal(r.crossOriginIsolated, true);
      assert.equal(r.simd, simd);
      assert.equal(r.tile, tile);
      assert.equal(r.threads, threads);
      assert.ok(r.cases.length >= 90, `only ${r.cases.length} cases ran`);
      // the shared table's sampling cases too (tests/kernel-cases.ts), not only the Node copy's
      assert.ok(r.cases.filter((c) => c.name.startsWith("sampleTemperature V=50257")).length >= 4, "sampleTemperature's cases ran");
      const failed = r.cases.filter((c) => !(c.worst <= 1));
      assert.deepEqual(
        failed.map((c) => `${c.name}: max|diff| ${c.maxAbsDiff}, ${c.worst}x the tolerance`),
        [],
        "cases beyond their tolerance",
      );
      assert.equal(r.stats.fallback, 0, "every heap array took the wasm path");
      if (threads > 1) assert.ok(r.stats.parallel > 0, "big calls were split over the Web Workers");
      else assert.equal(r.stats.parallel, 0);
      assert.deepEqual(problems, [], "errors in the page");
    });
  }
  // the whole engine in the page: every PyTorch fixture folder the Node test checks (tests/fixtures,
  // ../shared/fixtures, MINIGPT_FIXTURES), each served at /fixtures/<i>/
  FIXTURES.forEach(({ name }, i) => {
    const base = `/fixtures/${i}/`;
    for (const threads of [1, 2]) {
      test(`fixture ${name} matches PyTorch in the page: logits, loss, gradients, AdamW steps (wasm, ${threads} thread${threads > 1 ? "s" : ""})`, async (t) => {
        if (!ready(t)) return;
        const p = modelPage as Page;
        const what = `fixture ${name} in the page (${threads} threads)`;
        let r: ModelReport;
        try {
          r = await within(
            p.evaluate(([b, th]) => (globalThis as unknown as { minigptModel: ModelPageApi }).minigptModel.fixture(b, th), [
              base,
              threads,
            ] as const),
            CALL_MS,
            what,
          );
        } catch (e) {
          throw new Error(`${what} failed: ${e instanceof Error ? e.message : String(e)}\n${problems.join("\n")}`);
        }
        const worst = [...r.checks].sort((a, b) => b.maxAbsDiff - a.maxAbsDiff).slice(0, 3);
        t.diagnostic(
          `${r.checks.length} tensors in ${Math.round(r.ms)} ms (${r.simd} SIMD, ${r.parallel} split calls); largest max-abs-diff: ${worst.map((c) => `${c.label} ${c.maxAbsDiff.toExponential(2)}`).join(", ")}`,
        );
        assert.equal(r.crossOriginIsolated, true);
        assert.equal(r.threads, threads);
        assert.ok(r.checks.length > 50, `only ${r.checks.length} tensors compared`);
        assert.deepEqual(
          r.checks.filter((c) => !c.ok).map((c) => `${c.label}: max-abs-diff ${c.maxAbsDiff.toExponential(2)}`),
          [],
          "tensors beyond PyTorch's tolerance",
        );
        assert.deepEqual(problems, [], "errors in the page");
      });
    }
  });

  // the same on the webgpu backend, through navigator.gpu
  FIXTURES.forEach(({ name }, i) => {
    test(`fixture ${name} matches PyTorch in the page: logits, loss, gradients, AdamW steps (webgpu, navigator.gpu)`, async (t) => {
      if (!ready(t)) return;
      const p = modelPage as Page;
      const what = `fixture ${name} on webgpu in the page`;
      let r: GpuFixtureReport;
      try {
        r = await within(
          p.evaluate((b) => (globalThis as unknown as { minigptModel: ModelPageApi }).minigptModel.fixtureOnWebGpu(b), `/fixtures/${i}/`),
          CALL_MS,
          what,
        );
      } catch (e) {
        throw new Error(`${what} failed: ${e instanceof Error ? e.message : String(e)}\n${problems.join("\n")}`);
      }
      if ("unavailable" in r) {
        t.skip(`webgpu: ${r.unavailable}`);
        return;
      }
      const worst = [...r.checks].sort((a, b) => b.maxAbsDiff - a.maxAbsDiff).slice(0, 3);
      t.diagnostic(
        `${r.checks.length} tensors in ${Math.round(r.ms)} ms on ${r.adapter}${r.software ? " (software)" : ""}; largest max-abs-diff: ${worst.map((c) => `${c.label} ${c.maxAbsDiff.toExponential(2)}`).join(", ")}`,
      );
      assert.ok(r.checks.length > 50, `only ${r.checks.length} tensors compared`);
      assert.deepEqual(
        r.checks.filter((c) => !c.ok).map((c) => `${c.label}: max-abs-diff ${c.maxAbsDiff.toExponential(2)}`),
        [],
        "tensors beyond PyTorch's tolerance",
      );
      assert.deepEqual(problems, [], "errors in the page");
    });
  });

  // WebGPU has no sampleTemperature kernel: sampleToken's path for it, in the page
  test("plain temperature sampling on webgpu in the page draws what its float64 definition draws (vocabularies of 4,096 and 50,257, a model's seeded generation)", async (t) => {
    if (!ready(t)) return;
    const p = modelPage as Page;
    const r = await within(
      p.evaluate(() => (globalThis as unknown as { minigptModel: ModelPageApi }).minigptModel.samplingOnWebGpu()),
      CALL_MS,
      "temperature sampling on webgpu in the page",
    );
    if ("unavailable" in r) {
      t.skip(`webgpu: ${r.unavailable}`);
      return;
    }
    t.diagnostic(`${r.draws} draws on ${r.adapter}`);
    assert.deepEqual(r.mismatches, []);
    assert.equal(r.draws, TEMPERATURE_DRAWS);
    assert.deepEqual(problems, [], "errors in the page");
  });

  // data parallel on the page's main thread (which spins: it may not Atomics.wait) and inside a module
  // worker, where a web app would train (which waits and shares kernel halves as in Node)
  for (const where of ["the page's main thread", "a module worker"] as const) {
    test(`data parallel on ${where}: a replica in a module Web Worker gives one thread's gradients`, async (t) => {
      if (!ready(t)) return;
      const p = modelPage as Page;
      const inWorker = where === "a module worker";
      const r = await within(
        p.evaluate((w) => {
          const api = (globalThis as unknown as { minigptModel: ModelPageApi }).minigptModel;
          return w ? api.dataParallelInWorker() : api.dataParallel();
        }, inWorker),
        CALL_MS,
        `data parallel on ${where}`,
      );
      t.diagnostic(
        `${r.threads} threads; |loss diff| ${r.lossDiff.toExponential(2)}; worst gradient max|diff|/max|grad| ${r.worstRelDiff.toExponential(2)}; forward/backward ${r.msDataParallel.toFixed(1)} ms data parallel vs ${r.msKernels.toFixed(1)} ms kernels split (in turns: ${r.samples.map((ms) => ms.toFixed(1)).join(", ")})`,
      );
      assert.equal(r.created, true, `DataParallel.create gave no replicas on ${where} of a cross-origin-isolated page`);
      assert.equal(r.threads, 2);
      assert.ok(r.lossDiff <= 1e-5, `loss differs by ${r.lossDiff}`);
      assert.ok(r.worstRelDiff <= 1e-5, `gradients differ by ${r.worstRelDiff} of their tensor's largest`);
      assert.deepEqual(problems, [], "errors in the page");
    });
  }

  test("the GPT-2 tokenizer in the page (src/browser.ts, ranks through an import map) gives tiktoken's ids", async (t) => {
    if (!ready(t)) return;
    const p = modelPage as Page;
    const text = "Hello world! minigpt runs in a browser, naïvely 🙂 and\n\n  indented.";
    const got = await p.evaluate((s) => (globalThis as unknown as { minigptModel: ModelPageApi }).minigptModel.gpt2(s), text);
    const enc = get_encoding("gpt2");
    try {
      assert.deepEqual(got, Array.from(enc.encode(text)));
    } finally {
      enc.free();
    }
    assert.deepEqual(problems, [], "errors in the page");
  });

  test("README's browser page, as written, prints a generation from a model folder minigpt train made (plain static server)", async (t) => {
    if (!ready(t)) return;
    const readme = readFileSync(join(ROOT, "README.md"), "utf8");
    const blocks = [...readme.matchAll(/```html\n([\s\S]*?)```/g)].map((m) => m[1] as string);
    assert.equal(blocks.length, 1, "README.md has one html block: the browser page");
    // README's layout: demo.html next to out/, in the clone (which the server's root stands for)
    const site = tempDir("minigpt-readme-page-");
    writeFileSync(join(site, "demo.html"), blocks[0] as string);
    const data = wordCorpus(site);
    appendFileSync(data, "Call me Ishmael.\n".repeat(20));
    const tiny = ["--n-layer", "1", "--n-head", "2", "--n-embd", "16", "--block-size", "16", "--batch-size", "2", "--eval-steps", "1"];
    const r = runCli(["train", "--data", data, "--out", join(site, "out"), "--max-steps", "2", "--sample-tokens", "0", ...tiny]);
    assert.equal(r.status, 0, r.stderr);
    const plain = await serve(ROOT, { "/site/": site }, { isolated: false });
    const p = await (browser as Browser).newPage();
    const errors: string[] = [];
    p.on("pageerror", (e) => errors.push(`page error: ${e.message}`));
    p.on("response", (res) => {
      // the browser's own favicon.ico request is not the page's
      if (res.status() >= 400 && !res.url().endsWith("/favicon.ico")) errors.push(`HTTP ${res.status()}: ${res.url()}`);
    });
    try {
      await p.goto(`http://127.0.0.1:${(plain.address() as AddressInfo).port}/site/demo.html`);
      await p.waitForFunction(() => !document.getElementById("output")?.textContent?.startsWith("loading"), undefined, {
        timeout: CALL_MS,
      });
      const text = (await p.textContent("#output")) ?? "";
      t.diagnostic(`the page printed: ${JSON.stringify(text.slice(0, 80))}...`);
      assert.ok(text.startsWith("Call me") && text.length >= "Call me".length + 50, `the page printed ${JSON.stringify(text)}`);
      assert.equal(await p.evaluate(() => globalThis.crossOriginIsolated), false, "served as a plain static server serves it");
      assert.deepEqual(errors, [], "errors in the page");
    } finally {
      await p.close();
      plain.closeAllConnections();
      await new Promise<void>((resolve) => plain.close(() => resolve()));
    }
  });

  // the fixtures are too small for any kernel to be split: a wider model's training step is
  test("a 256-wide model's loss and gradients on 2 threads (Web Workers) match the ref backend in the page", async (t) => {
    if (!ready(t)) return;
    const p = modelPage as Page;
    const r = await within(
      p.evaluate(() => (globalThis as unknown as { minigptModel: ModelPageApi }).minigptModel.backends(2)),
      CALL_MS,
      "wasm vs ref in the page",
    );
    const worst = [...r.grads].sort((a, b) => b.relDiff - a.relDiff)[0];
    t.diagnostic(
      `${r.parallel} split calls; |loss diff| ${r.lossDiff.toExponential(2)}; worst gradient ${worst?.name} max|diff|/max|grad| ${worst?.relDiff.toExponential(2)}`,
    );
    assert.equal(r.threads, 2);
    assert.ok(r.parallel > 0, "kernels were split over the Web Workers");
    assert.ok(r.lossDiff <= 1e-5, `loss differs by ${r.lossDiff}`);
    assert.equal(r.grads.length, 28);
    assert.deepEqual(
      r.grads.filter((g) => !(g.relDiff <= 1e-4)).map((g) => `${g.name}: ${g.relDiff.toExponential(2)}`),
      [],
      "gradients beyond 1e-4 of their tensor's largest",
    );
    assert.deepEqual(problems, [], "errors in the page");
  });
});
