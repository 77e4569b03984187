// The web playground measured: training tokens/s in the page against Node's, first load time, and the
// bundle's size. One run:
//
//   node --import tsx bench/web.ts [--rounds 3] [--steps 200]
//
// Each round runs Node's `bench/train-step.ts --recipe small --threads 2` (nanoGPT's CPU recipe, data
// parallel, the median step of --steps after 5 warm-up steps), then the same recipe in the page: the
// "small (nanoGPT CPU recipe)" preset on tiny Shakespeare (../shared/data/tinyshakespeare, else the
// built-in book) with the character tokenizer, as a person starts it (a 2,000-step run: validation
// every 100 steps), timed from step 20 to step 20 + --steps by the page's own progress line, watched
// from inside the page so that nothing polls it while it trains (evaluations included: the page's
// real throughput; Node's median step has none). The
// page is dist/web/ served by `minigpt web`'s server (built when missing), in headless
// /usr/bin/chromium. First load: a fresh browser context, navigation to the engine being ready (wasm
// compiled, workers started). Bundle: every file of dist/web/assets gzipped (level 9), by kind.
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { loadavg } from "node:os";
import { dirname, extname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { chromium, type Page } from "playwright-core";
import { builtPageDir, pageServer } from "../src/cli/web.js";
import { loadTextSource } from "../src/data/text.js";
import { arg, expectArgs } from "./args.js";
import { median } from "./stats.js";

expectArgs("bench/web.ts", ["rounds", "steps"]);
const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
const CHROMIUM = "/usr/bin/chromium";
const rounds = Number(arg("rounds", "3"));
const steps = Number(arg("steps", "200"));
/** nanoGPT's CPU recipe: batch 12 of 64 tokens */
const TOKENS_PER_STEP = 12 * 64;
const FROM_STEP = 20;
/** the page's run: long enough for any --steps, its evaluations every RUN_STEPS / 20 steps */
const RUN_STEPS = Math.max(2000, FROM_STEP + steps + 50);

if (!existsSync(CHROMIUM)) {
  console.log(`bench/web.ts: ${CHROMIUM} not found (apt-get install chromium); nothing to measure`);
  process.exit(0);
}
const dir = builtPageDir();
if (!existsSync(join(dir, "index.html"))) {
  const b = spawnSync("npm", ["run", "build"], { cwd: ROOT, stdio: "inherit" });
  if (b.status !== 0) throw new Error("npm run build failed");
}

// ---- the bundle ------------------------------------------------------------------------------------
const sizes = new Map<string, { raw: number; gzip: number }>();
for (const name of readdirSync(join(dir, "assets"))) {
  const bytes = readFileSync(join(dir, "assets", name));
  const kind = name.startsWith("worker-")
    ? "model worker js"
    : name.startsWith("replica-")
      ? "replica worker js"
      : name.startsWith("pool-worker-")
        ? "kernel pool worker js"
        : extname(name).slice(1);
  const s = sizes.get(kind) ?? { raw: 0, gzip: 0 };
  s.raw += bytes.length;
  s.gzip += gzipSync(bytes, { level: 9 }).length;
  sizes.set(kind, s);
}
console.log("bundle (dist/web/assets), bytes raw / gzip -9:");
for (const [kind, s] of sizes) console.log(`  ${kind.padEnd(18)} ${s.raw.toLocaleString().padStart(9)} / ${s.gzip.toLocaleString()}`);
console.log("  (the page loads one of the two .wasm builds; loader js appears once per worker)");

// ---- the page --------------------------------------------------------------------------------------
const shakespeare = join(ROOT, "../shared/data/tinyshakespeare/input.txt");
const text = existsSync(shakespeare) ? readFileSync(shakespeare, "utf8") : loadTextSource("moby-dick").text;
const corpus = existsSync(shakespeare) ? "tiny Shakespeare" : "moby-dick";
const server = pageServer(dir);
await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
const browser = await chromium.launch({ executablePath: CHROMIUM });

async function firstLoad(): Promise<{ readyMs: number; loadMs: number }> {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(url);
  await page.waitForSelector('#engine[data-ready="true"]', { timeout: 120_000 });
  const readyMs = await page.evaluate(() => performance.now());
  const loadMs = await page.evaluate(() => {
    const nav = performance.getEntriesByType("navigation")[0] as PerformanceNavigationTiming;
    return nav.loadEventEnd;
  });
  await context.close();
  return { readyMs, loadMs };
}

/** what the page's progress line said when it reached a step: its time, its step, and every per-step rate it showed on the way */
interface Reached {
  at: number;
  step: number;
  rates: number[];
}

/**
 * Wait, inside the page, until its progress line shows step `to` or later. A MutationObserver sees
 * each change of the line (the worker sends metrics every 250 ms): nothing polls the page meanwhile.
 * (Reading the line through the DevTools protocol every 50 ms, as this bench did before, costs the
 * page's main thread and the browser process CPU that a person's page does not spend, ~0.1 of the
 * training's speed on 2 cores.) Rates are the per-step tokens/s of the lines after step `from`.
 */
const reach = (page: Page, from: number, to: number): Promise<Reached> =>
  // no functions named inside: tsx would wrap them in a helper the page does not have
  page.evaluate(
    async ({ from, to }) => {
      const line = document.querySelector("#progress") as HTMLElement;
      const rates: number[] = [];
      for (;;) {
        const text = line.textContent ?? "";
        // the line of the round before ("stopped · step 220/…") until this run starts
        const step = text.startsWith("training") ? Number(/step (\d+)\//.exec(text)?.[1] ?? -1) : -1;
        const rate = /([\d,]+) tokens\/s/.exec(text)?.[1];
        if (step > from && rate) rates.push(Number(rate.replaceAll(",", "")));
        if (step >= to) return { at: performance.now(), step, rates };
        await new Promise((wake) => {
          const seen = new MutationObserver(() => {
            seen.disconnect();
            wake(undefined);
          });
          seen.observe(line, { childList: true, characterData: true, subtree: true });
        });
      }
    },
    { from, to },
  );

/**
 * The page's training from FROM_STEP to FROM_STEP + steps: `overall` tokens/s by its progress line
 * (evaluations and messages included: what a person gets) and `step`, the median of the per-step
 * tokens/s the progress line shows (one training step, the quantity Node's median step measures).
 */
async function pageTokensPerS(page: Page): Promise<{ overall: number; step: number }> {
  await page.click("#tab-train");
  await page.fill("#steps", String(RUN_STEPS));
  await page.fill("#sample-every", "100000");
  await page.click("#start");
  // the start (tokenizing, the replicas starting) and the first steps are left out
  const start = await reach(page, FROM_STEP, FROM_STEP);
  const end = await reach(page, FROM_STEP, FROM_STEP + steps);
  await page.click("#stop");
  return { overall: ((end.step - start.step) * TOKENS_PER_STEP * 1000) / (end.at - start.at), step: median(end.rates) };
}

function nodeTokensPerS(): number {
  const r = spawnSync(
    process.execPath,
    ["--expose-gc", "--import", "tsx", "bench/train-step.ts", "--recipe", "small", "--threads", "2", "--steps", "40", "--warmup", "5"],
    { cwd: ROOT, encoding: "utf8" },
  );
  if (r.status !== 0) throw new Error(`bench/train-step.ts failed:\n${r.stderr}`);
  return (TOKENS_PER_STEP * 1000) / (JSON.parse(r.stdout) as { median_ms: number }).median_ms;
}

try {
  const loads = [await firstLoad(), await firstLoad(), await firstLoad()];
  console.log(
    `first load, fresh context (3 loads): load event ${loads.map((l) => l.loadMs.toFixed(0)).join(", ")} ms; engine ready ${loads.map((l) => l.readyMs.toFixed(0)).join(", ")} ms`,
  );
  const context = await browser.newContext();
  const page = await context.newPage();
  page.on("dialog", (d) => void d.accept());
  await page.goto(url);
  await page.waitForSelector('#engine[data-ready="true"]', { timeout: 120_000 });
  console.log(`engine: ${await page.textContent("#engine")}`);
  // as a paste: the value at once, then the input event the page listens for
  await page.evaluate((t) => {
    const area = document.querySelector("#text") as HTMLTextAreaElement;
    area.value = t;
    area.dispatchEvent(new Event("input"));
  }, text);
  await page.selectOption("#preset", "1");
  console.log(`nanoGPT CPU recipe (4L 128w, B12 T64), ${corpus}, char tokenizer; tokens/s, ${rounds} rounds in turns`);
  const nodeRates: number[] = [];
  const pageRates: number[] = [];
  const pageStepRates: number[] = [];
  for (let r = 1; r <= rounds; r++) {
    const load = loadavg()[0]?.toFixed(1);
    const node = nodeTokensPerS();
    const inPage = await pageTokensPerS(page);
    nodeRates.push(node);
    pageRates.push(inPage.overall);
    pageStepRates.push(inPage.step);
    console.log(
      `round ${r} (load ${load}): node 2 threads ${Math.round(node).toLocaleString()}, page ${Math.round(inPage.overall).toLocaleString()} (its steps alone ${Math.round(inPage.step).toLocaleString()}), page/node ${(inPage.overall / node).toFixed(2)} (steps alone ${(inPage.step / node).toFixed(2)})`,
    );
  }
  const n = median(nodeRates);
  console.log(
    `median: node ${Math.round(n).toLocaleString()} tokens/s, page ${Math.round(median(pageRates)).toLocaleString()} tokens/s, page/node ${(median(pageRates) / n).toFixed(2)}; the page's steps alone ${Math.round(median(pageStepRates)).toLocaleString()} tokens/s, ${(median(pageStepRates) / n).toFixed(2)} of node's`,
  );
} finally {
  await browser.close();
  server.closeAllConnections();
  server.close();
}
