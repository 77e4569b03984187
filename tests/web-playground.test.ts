// The web playground end to end: `minigpt web` serves the built page (dist/web/, built here when
// older than web/ or src/), headless Debian chromium (playwright-core) uses it as a person would:
// isolation headers, paste text and train until the loss falls, pause and resume, reload and find
// the run, generate, look inside, download the model zip and get the same greedy text from
// `minigpt generate --model the.zip`, load a folder `minigpt train` made and get the CLI's greedy text,
// train that folder's model further in the page (the CLI generates the page's text from its zip),
// and the messages for a file that is not text, a zip that is not a model, a preset too big for the
// browser's memory and a page that is not isolated. No console errors.
// A phone-sized window never scrolls sideways, and the page does not shift while it trains.
//
// MINIGPT_SCREENSHOTS=DIR saves a screenshot of each view there. Needs /usr/bin/chromium, else skipped.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { dirname, join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";
import { runCli, type StartedCli, startCli, tempDir, wordCorpus } from "./helpers.js";
import { serve } from "./static-server.js";

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
const CHROMIUM = "/usr/bin/chromium";
const SKIP = existsSync(CHROMIUM) ? false : `${CHROMIUM} not found (apt-get install chromium): the web playground test cannot run`;
const SHOTS = process.env.MINIGPT_SCREENSHOTS;
/** one call into the page: past this the page (or its worker) stopped answering */
const WAIT_MS = 90_000;

function newestMtime(dir: string): number {
  let newest = 0;
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    const s = statSync(p);
    newest = Math.max(newest, s.isDirectory() ? newestMtime(p) : s.mtimeMs);
  }
  return newest;
}

/** dist/web/ built from the current web/ and src/ (the wasm kernels first when missing) */
function ensurePageBuilt(): void {
  const page = join(ROOT, "dist/web/index.html");
  if (existsSync(page) && statSync(page).mtimeMs > Math.max(newestMtime(join(ROOT, "web")), newestMtime(join(ROOT, "src")))) return;
  const npm = (script: string) => {
    const r = spawnSync("npm", ["run", script], { cwd: ROOT, encoding: "utf8" });
    if (r.status !== 0) throw new Error(`npm run ${script} failed:\n${r.stdout}${r.stderr}`);
  };
  if (!existsSync(join(ROOT, "src/kernels/wasm/build/kernels-simd.wasm"))) npm("build:wasm");
  npm("build:web");
}

/** the run's status and step, from the Train view's progress line */
async function progressOf(page: Page): Promise<{ status: string; step: number }> {
  const text = (await page.textContent("#progress")) ?? "";
  const m = /^(\w+) · step (\d+)\//.exec(text);
  return { status: m?.[1] ?? "", step: Number(m?.[2] ?? -1) };
}

/** the losses the loss chart's text alternative names: where it started and where it is now */
async function chartLosses(page: Page): Promise<number[]> {
  const label = (await page.getAttribute("#chart", "aria-label")) ?? "";
  return [...label.matchAll(/loss (\d+\.\d+)/g)].map((m) => Number(m[1]));
}

const root = tempDir("minigpt-web-");
const corpus = readFileSync(wordCorpus(root, 12_000), "utf8");
/** a folder `minigpt train` made, for the page to load */
const cliModel = join(root, "cli-model");
/** that model chat-tuned */
const chatModel = join(root, "chat-model");
const MODEL_FILES = ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"];
const PROMPT = "the whale";
const greedyCli = (model: string) =>
  runCli(["generate", "--model", model, "--prompt", PROMPT, "--temperature", "0", "--max-new-tokens", "40"]);

/** cliModel and chatModel, trained once for whichever part of this file needs them first */
let modelsTrained = false;
function trainModels(): void {
  if (modelsTrained) return;
  modelsTrained = true;
  const trained = runCli([
    "train",
    ...[
      "--data",
      join(root, "corpus.txt"),
      "--out",
      cliModel,
      "--max-steps",
      "150",
      "--warmup-steps",
      "10",
      "--n-layer",
      "1",
      "--n-head",
      "2",
    ],
    ...["--n-embd", "16", "--block-size", "48", "--batch-size", "4", "--eval-steps", "1", "--sample-tokens", "0"],
  ]);
  assert.equal(trained.status, 0, trained.stderr);
  // the same model chat-tuned (minigpt train --chat adds the chat tokens), for the chat view
  const users = ["call me", "the sea", "a ship", "the captain"];
  const chats = users.map((u) =>
    JSON.stringify({
      messages: [
        { role: "user", content: u },
        { role: "assistant", content: "the white whale" },
      ],
    }),
  );
  writeFileSync(join(root, "chats.jsonl"), `${chats.join("\n")}\n`);
  const tuned = runCli(["train", "--chat", join(root, "chats.jsonl"), "--init", cliModel, "--out", chatModel, "--max-steps", "100"]);
  assert.equal(tuned.status, 0, tuned.stderr);
}

/**
 * Load the chat-tuned model into the page (its Models tab open), say "call me" in its chat greedily
 * with `maxTokens`, and check the reply is the one `minigpt chat` gives.
 */
async function chatLikeCli(page: Page, maxTokens: number): Promise<void> {
  await page.setInputFiles(
    "#model-files",
    MODEL_FILES.map((n) => join(chatModel, n)),
  );
  await page.click("#tab-generate");
  await page.waitForSelector("#chat:not([hidden])");
  await page.fill("#temperature", "0");
  await page.fill("#max-tokens", String(maxTokens));
  await page.fill("#chat-input", "call me");
  await page.press("#chat-input", "Enter");
  await page.waitForSelector('.turn.assistant[data-done="true"]', { timeout: WAIT_MS });
  const reply = (await page.textContent(".turn.assistant")) ?? "";
  const max = String(maxTokens);
  const cli = runCli(["chat", "--model", chatModel, "--temperature", "0", "--max-new-tokens", max], { input: "call me\n" });
  assert.equal(cli.status, 0, cli.stderr);
  const cliReply = /assistant> (.*?)(?: \[reply cut at \d+ tokens.*)?\n/.exec(cli.stdout)?.[1];
  assert.equal(reply, cliReply, `the CLI said:\n${cli.stdout}`);
}

describe("the web playground in headless chromium, served by minigpt web", { skip: SKIP }, () => {
  let server: StartedCli;
  let url = "";
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  const problems: string[] = [];

  // the tests are steps of one session: after a failed one the rest only wait out their timeouts
  let broken = "";
  const step = (name: string, fn: () => Promise<void> | void): void => {
    test(name, async (t) => {
      if (broken) return t.skip(`an earlier step failed: ${broken}`);
      try {
        await fn();
      } catch (e) {
        broken = name;
        throw e;
      }
    });
  };

  const watch = (p: Page): void => {
    p.on("console", (m) => {
      if (m.type() === "error") problems.push(`console: ${m.text()}`);
    });
    p.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
    p.on("dialog", (d) => void d.accept());
  };

  const shot = async (name: string): Promise<void> => {
    if (!SHOTS) return;
    mkdirSync(SHOTS, { recursive: true });
    await page.screenshot({ path: join(SHOTS, `web-${name}.png`), fullPage: true });
  };

  const progress = () => progressOf(page);

  const waitFor = (fn: () => Promise<boolean>, what: string): Promise<void> =>
    (async () => {
      const end = Date.now() + WAIT_MS;
      while (!(await fn())) {
        if (Date.now() > end) throw new Error(`${what}: not within ${WAIT_MS / 1000} s; progress: ${await page.textContent("#progress")}`);
        await page.waitForTimeout(100);
      }
    })();

  const tab = async (name: "train" | "generate" | "inside" | "models"): Promise<void> => {
    await page.click(`#tab-${name}`);
  };

  /** the page's greedy text for PROMPT, from the model it has now */
  const greedyPage = async (): Promise<string> => {
    await tab("generate");
    await page.fill("#prompt", PROMPT);
    await page.fill("#temperature", "0");
    await page.fill("#max-tokens", "40");
    await page.click("#generate");
    await page.waitForSelector('#output[data-done="true"]', { timeout: WAIT_MS });
    return (await page.textContent("#output")) ?? "";
  };

  before(async () => {
    ensurePageBuilt();
    trainModels();
    server = startCli(["web", "--port", "0"]);
    assert.ok(await server.seen(/playground is at (http:\S+)/), server.stderr());
    url = /playground is at (http:\S+)/.exec(server.stderr())?.[1] as string;
    browser = await chromium.launch({ executablePath: CHROMIUM });
    context = await browser.newContext({ acceptDownloads: true });
    page = await context.newPage();
    // every layout shift while the page trains (cumulative layout shift: shifts without recent input)
    await page.addInitScript(() => {
      const w = window as unknown as { layoutShift: number };
      w.layoutShift = 0;
      new PerformanceObserver((list) => {
        for (const e of list.getEntries() as (PerformanceEntry & { value: number; hadRecentInput: boolean })[])
          if (!e.hadRecentInput) w.layoutShift += e.value;
      }).observe({ type: "layout-shift", buffered: true });
    });
    watch(page);
  });

  after(async () => {
    await browser?.close();
    server?.child.kill("SIGTERM");
    await server?.exited;
  });

  step("the page comes cross-origin isolated, with the engine on threads", async () => {
    const response = await page.goto(url);
    const headers = response?.headers() ?? {};
    assert.equal(headers["cross-origin-opener-policy"], "same-origin");
    assert.equal(headers["cross-origin-embedder-policy"], "require-corp");
    assert.equal(await page.evaluate(() => crossOriginIsolated), true);
    await page.waitForSelector('#engine[data-ready="true"]', { timeout: WAIT_MS });
    assert.match((await page.textContent("#engine")) ?? "", /on 2 threads \(Web Workers\)/);
  });

  step("a size's parameter count counts every character of the text, those past its first 200,000 too", async () => {
    // a character model has a row for every character of its text: 100 new ones are 3,200 more parameters
    // in the tiny preset (32 wide); the estimate once read only the text's first 200,000 characters
    const head = "ab ".repeat(70_000);
    const rare = Array.from({ length: 100 }, (_, i) => String.fromCodePoint(0x4e00 + i)).join("");
    const tiny = () => page.textContent("#preset option >> nth=0");
    await page.fill("#text", head);
    await page.waitForFunction(() => /parameters/.test(document.querySelector("#preset option")?.textContent ?? ""));
    const without = await tiny();
    await page.fill("#text", head + rare);
    await page
      .waitForFunction((before) => document.querySelector("#preset option")?.textContent !== before, without, { timeout: 10_000 })
      .catch(() => {});
    const parameters = (s: string | null) => Number(/([\d.]+)k parameters/.exec(s ?? "")?.[1]) * 1000;
    const added = parameters(await tiny()) - parameters(without);
    assert.ok(Math.abs(added - 3200) <= 100, `${without} -> ${await tiny()}: 100 more characters, 3,200 more parameters`);
  });

  step("paste text, train: the loss falls; pause and resume; the page does not shift", async () => {
    await page.fill("#text", corpus);
    await page.selectOption("#preset", "0");
    await page.fill("#steps", "4000");
    await page.fill("#sample-every", "100");
    await page.waitForFunction(() => /parameters/.test(document.querySelector("#preset-info")?.textContent ?? ""));
    await page.evaluate(() => {
      (window as unknown as { layoutShift: number }).layoutShift = 0;
    });
    await page.click("#start");
    await waitFor(async () => (await progress()).step >= 150, "150 steps");
    await page.click("#pause");
    await waitFor(async () => (await progress()).status === "paused", "paused");
    const paused = (await progress()).step;
    await page.waitForTimeout(1000);
    assert.equal((await progress()).step, paused, "no steps while paused");
    const losses = await chartLosses(page);
    assert.ok(losses.length >= 2 && (losses[1] as number) < (losses[0] as number) - 0.2, `the loss falls: ${losses.join(" -> ")}`);
    assert.ok(((await page.textContent("#samples")) ?? "").includes("step 100"), "a sample every 100 steps");
    // the charts' legends say where the run is (the newest step's values), not "--", while no cursor is
    // on them; validation loss once there is one (every 200th step of 4,000)
    const legend = await page.$$eval("#chart .u-value, #chart-rate .u-value", (cells) => cells.map((c) => c.textContent));
    assert.equal(legend.length, 6, legend.join(" "));
    const validated = /validation loss/.test((await page.getAttribute("#chart", "aria-label")) ?? "");
    assert.ok(
      legend.every((v, i) => (i === 2 && !validated ? v === "--" : v !== "--" && v !== "")),
      `legend values ${legend.join(" ")}`,
    );
    assert.equal(legend[0], String(paused), "the legend's step is the newest");
    const shift = await page.evaluate(() => (window as unknown as { layoutShift: number }).layoutShift);
    assert.ok(shift <= 0.05, `cumulative layout shift while training ${shift}`);
    await shot("train");
    await page.click("#resume");
    await waitFor(async () => (await progress()).step > paused + 20, "steps after resume");
    await page.click("#pause");
    await waitFor(async () => (await progress()).status === "paused", "paused again");
  });

  step("a reload finds the run where it was saved, and it resumes", async () => {
    const before = (await progress()).step;
    await page.reload();
    await page.waitForSelector('#engine[data-ready="true"]', { timeout: WAIT_MS });
    await waitFor(async () => (await progress()).status === "paused", "the restored run");
    assert.equal((await progress()).step, before, "saved on pause: the same step");
    assert.match((await page.getAttribute("#chart", "aria-label")) ?? "", /step 1 loss/);
    await page.click("#resume");
    await waitFor(async () => (await progress()).step > before + 20, "steps after the reload");
    await page.click("#stop");
    await waitFor(async () => (await progress()).status === "stopped", "stopped");
  });

  let pageText = "";
  step("generate streams text; look inside shows tokens, every head's attention and the next tokens", async () => {
    pageText = await greedyPage();
    assert.ok(pageText.startsWith(PROMPT) && pageText.length > PROMPT.length, pageText);
    await page.check("#show-top");
    await page.fill("#temperature", "0.8");
    await page.click("#generate");
    await page.waitForSelector('#output[data-done="true"]', { timeout: WAIT_MS });
    assert.equal(await page.locator(".step-top").count(), 40, "the top-5 of every step");
    await shot("generate");
    // streamed: text shows before the end, and Stop ends it early
    await page.uncheck("#show-top");
    await page.fill("#max-tokens", "20000");
    await page.click("#generate");
    await page.waitForFunction((n) => (document.querySelector("#output")?.textContent?.length ?? 0) > n, PROMPT.length + 20);
    await page.click("#stop-generate");
    await page.waitForSelector('#output[data-done="true"]', { timeout: WAIT_MS });
    const stopped = ((await page.textContent("#output")) ?? "").length;
    assert.ok(stopped < PROMPT.length + 20000, `stopped after ${stopped} characters`);
    await tab("inside");
    await page.fill("#inspect-prompt", "the whale and the sea");
    await page.click("#inspect");
    await page.waitForSelector(".token");
    const tokens = await page.locator(".token").count();
    assert.equal(tokens, "the whale and the sea".length, "a char model: one token per character");
    assert.equal(await page.locator(".map-row canvas").count(), 2 * 2, "2 layers x 2 heads");
    await page.hover(".token >> nth=5");
    const shaded = await page.evaluate(
      () => Array.from(document.querySelectorAll<HTMLElement>(".token")).filter((t) => t.style.backgroundColor !== "").length,
    );
    assert.equal(shaded, tokens, "hovering a token shades every token by its attention");
    assert.equal(await page.locator("#next li").count(), 5);
    assert.match((await page.textContent("#analysis")) ?? "", /parameters/);
    assert.equal(await page.isHidden("#tokens-note"), true, "nothing left out of a prompt within the context");
    await shot("inside");
    // a prompt longer than the context (32 tokens): its last 32 are shown, and the page says so
    await page.fill("#inspect-prompt", "the whale and the sea. ".repeat(3));
    await page.click("#inspect");
    await page.waitForSelector("#tokens-note:not([hidden])");
    assert.equal(await page.locator(".token").count(), 32);
    assert.equal(
      await page.textContent("#tokens-note"),
      "The prompt's first 37 tokens are left out: the model sees 32 tokens at a time, its context.",
    );
  });

  step("Look inside shows every line of the parameter report whole: long lines wrap, none is cut at the edge", async () => {
    const report = await page.evaluate(() => {
      const box = document.querySelector("#analysis") as HTMLElement;
      return { text: box.innerText, scrollWidth: box.scrollWidth, clientWidth: box.clientWidth };
    });
    assert.ok(report.scrollWidth <= report.clientWidth, `the report is ${report.scrollWidth} px wide in ${report.clientWidth} px`);
    assert.match(report.text, /activation grads [\d.]+ [KMG]?B \(an upper bound/);
    assert.match(report.text, /rule: forward = 2·N/);
  });

  step("generate draws its text once an animation frame, not once a token", async () => {
    await tab("generate");
    await page.check("#show-top");
    await page.fill("#temperature", "0.8");
    await page.fill("#max-tokens", "400");
    // count the page's frames and the changes to the text and the top-5 list while it generates (a
    // string: a function here would be compiled with helpers the page lacks)
    await page.evaluate(`(() => {
      window.draws = 0;
      window.frames = 0;
      window.counting = true;
      const count = new MutationObserver((records) => { window.draws += records.length; });
      for (const id of ["#output", "#step-tops"]) count.observe(document.querySelector(id), { childList: true, characterData: true });
      const tick = () => {
        if (!window.counting) { count.disconnect(); return; }
        window.frames++;
        requestAnimationFrame(tick);
      };
      requestAnimationFrame(tick);
    })()`);
    await page.click("#generate");
    await page.waitForSelector('#output[data-done="true"]', { timeout: WAIT_MS });
    const { draws, frames } = await page.evaluate(() => {
      const w = window as unknown as { draws: number; frames: number; counting: boolean };
      w.counting = false;
      return { draws: w.draws, frames: w.frames };
    });
    assert.equal(await page.locator(".step-top").count(), 400, "the top-5 of every step");
    assert.equal(await page.locator(".step-top .chosen").count(), 400, "and the token drawn at every step");
    // a frame draws the text and the top-5s (2), plus the start (the prompt, the list emptied) and the end
    assert.ok(draws <= 2 * frames + 4, `${draws} changes to the text in ${frames} frames`);
    await page.uncheck("#show-top");
  });

  step("a sampling field out of its range, or empty, says which and what it takes; nothing is generated", async () => {
    await tab("generate");
    const before = await page.textContent("#output");
    await page.fill("#temperature", "-1");
    await page.click("#generate");
    assert.equal(await page.isHidden("#message"), false);
    assert.equal(await page.textContent("#message"), 'Temperature: give a number from 0 to 5 (not "-1")');
    await page.fill("#temperature", "0.8");
    await page.fill("#max-tokens", "");
    await page.click("#generate");
    assert.equal(await page.textContent("#message"), "Max tokens: give a whole number from 1 to 100000 (it is empty)");
    assert.equal(await page.textContent("#output"), before, "no generation started");
    await page.fill("#max-tokens", "400");
    await tab("train");
    await page.fill("#text", corpus);
    await page.fill("#steps", "0");
    await page.click("#start");
    assert.equal(await page.textContent("#message"), 'Steps: give a whole number from 1 to 100000 (not "0")');
  });

  step("the downloaded zip gives `minigpt generate --model the.zip` the page's greedy text", async () => {
    await tab("models");
    const [download] = await Promise.all([page.waitForEvent("download"), page.click("#download")]);
    const zip = join(root, download.suggestedFilename());
    await download.saveAs(zip);
    const r = greedyCli(zip);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, `${pageText}\n`);
  });

  step("a folder minigpt train made loads by picking its files, and generates the CLI's greedy text", async () => {
    await tab("models");
    await page.setInputFiles(
      "#model-files",
      MODEL_FILES.map((n) => join(cliModel, n)),
    );
    await page.waitForFunction(() => /Model: model folder/.test(document.querySelector("#models-label")?.textContent ?? ""));
    // what the model before made (its text and top-5s in Generate, its tokens in Look inside) is gone
    assert.equal(await page.textContent("#output"), "");
    assert.equal(await page.locator(".step-top").count(), 0);
    assert.equal(await page.locator(".token").count(), 0);
    await shot("models");
    const r = greedyCli(cliModel);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(`${await greedyPage()}\n`, r.stdout);
  });

  step("the loaded CLI model trains further in the page; its zip gives the CLI the page's greedy text", async () => {
    const vocab = Number(/(\d+) tokens in its vocabulary/.exec((await page.textContent("#models-label")) ?? "")?.[1]);
    await tab("train");
    assert.match((await page.textContent("#continue")) ?? "", /Train model folder further/);
    await page.fill("#text", corpus);
    await page.fill("#steps", "60");
    await page.fill("#sample-every", "1000");
    await page.click("#continue");
    await waitFor(async () => (await progress()).status === "done", "the loaded model's run");
    assert.equal(await page.isHidden("#continue"), true, "the run took the loaded model over");
    // the CLI's weights, not a new model: its first loss is well below a guess among the vocabulary
    const first = Number(/step 1 loss (\d+\.\d+)/.exec((await page.getAttribute("#chart", "aria-label")) ?? "")?.[1]);
    assert.ok(
      first < Math.log(vocab) - 0.5,
      `first loss ${first}, a new model's would be near ln ${vocab} = ${Math.log(vocab).toFixed(2)}`,
    );
    const further = await greedyPage();
    await tab("models");
    assert.match((await page.textContent("#models-label")) ?? "", /model folder trained further on pasted text/);
    const [download] = await Promise.all([page.waitForEvent("download"), page.click("#download")]);
    const zip = join(root, "further.zip");
    await download.saveAs(zip);
    const r = greedyCli(zip);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, `${further}\n`);
  });

  step("a chat-tuned model gets a chat whose reply is minigpt chat's", async () => {
    await tab("models");
    assert.equal(await page.isHidden("#chat"), true, "no chat for a model trained on plain text");
    await chatLikeCli(page, 30);
    await shot("chat");
  });

  step("Stop ends a long chat reply: the text stops growing, and the chat goes on", async () => {
    const replies = page.locator(".turn.assistant");
    const before = await replies.count();
    const replyLength = () =>
      page.evaluate(() => Array.from(document.querySelectorAll(".turn.assistant")).at(-1)?.textContent?.length ?? 0);
    await page.fill("#temperature", "0");
    await page.fill("#max-tokens", "20000");
    await page.fill("#chat-input", "the sea");
    await page.press("#chat-input", "Enter");
    await page.waitForFunction(
      (n) => {
        const turns = document.querySelectorAll(".turn.assistant");
        return turns.length > n && (turns[turns.length - 1]?.textContent?.length ?? 0) > 100;
      },
      before,
      { timeout: WAIT_MS },
    );
    assert.equal(await page.isDisabled("#chat-send"), true, "Send waits while a reply streams");
    await page.click("#chat-stop");
    await page.waitForSelector(`.turn.assistant >> nth=${before} >> xpath=self::*[@data-done="true"]`, { timeout: WAIT_MS });
    const stopped = await replyLength();
    await page.waitForTimeout(500);
    assert.equal(await replyLength(), stopped, "no text after Stop");
    assert.match((await page.locator(".turn.notice").last().textContent()) ?? "", /^stopped: this exchange is not kept/);
    assert.equal(await page.isDisabled("#chat-send"), false);
    assert.equal(await page.isDisabled("#chat-stop"), true);
    await shot("chat-stopped");
    // usable again: the next message gets a whole reply
    await page.fill("#max-tokens", "30");
    await page.fill("#chat-input", "call me");
    await page.press("#chat-input", "Enter");
    await page.waitForSelector(`.turn.assistant >> nth=${before + 1} >> xpath=self::*[@data-done="true"]`, { timeout: WAIT_MS });
    assert.ok(((await replies.nth(before + 1).textContent()) ?? "").length > 0, "a reply after the stopped one");
  });

  step("a file that is not text, and a zip that is not a model, get one clear message", async () => {
    await tab("train");
    // a new run refused (its text too short) leaves the finished run as it was, its chart and its save
    const finished = await progress();
    assert.equal(finished.status, "done");
    const chart = await page.getAttribute("#chart", "aria-label");
    await page.fill("#text", "hello");
    await page.click("#start");
    await page.waitForFunction(() => /the text is too short/.test(document.querySelector("#message")?.textContent ?? ""));
    // the tiny preset is chosen: no smaller one to offer, only more text helps
    assert.match((await page.textContent("#message")) ?? "", /; paste more text$/);
    await waitFor(async () => (await progress()).status === "done", "the run before, back");
    assert.deepEqual(await progress(), finished);
    assert.equal(await page.getAttribute("#chart", "aria-label"), chart);
    await page.setInputFiles("#text-files", {
      name: "photo.txt",
      mimeType: "text/plain",
      buffer: Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 1]),
    });
    await page.waitForSelector("#message:not([hidden])");
    assert.match((await page.textContent("#message")) ?? "", /photo\.txt is not a text file/);
    await tab("models");
    await page.setInputFiles("#model-files", { name: "notes.zip", mimeType: "application/zip", buffer: Buffer.from("not a zip at all") });
    await page.waitForFunction(() => /notes\.zip is not a model folder zip/.test(document.querySelector("#message")?.textContent ?? ""));
  });

  step("a 375x667 screen never scrolls sideways; every control is reachable with Tab", async () => {
    await page.setViewportSize({ width: 375, height: 667 });
    for (const view of ["train", "generate", "inside", "models"] as const) {
      await tab(view);
      const width = await page.evaluate(() => document.documentElement.scrollWidth);
      assert.ok(width <= 375, `${view}: the page is ${width} px wide`);
      if (view === "train") {
        // each chart's legend (two lines at this width) lies within its box, not cut off below the plot
        const cut = async () =>
          page.evaluate(() =>
            ["chart", "chart-rate"].map((id) => {
              const box = document.getElementById(id) as HTMLElement;
              const legend = box.querySelector(".u-legend") as HTMLElement;
              return { id, below: legend.getBoundingClientRect().bottom - box.getBoundingClientRect().bottom };
            }),
          );
        // (the charts refit on a ResizeObserver's callback: give it a few frames)
        let legends = await cut();
        for (let i = 0; i < 30 && legends.some((l) => l.below > 0.5); i++) {
          await page.waitForTimeout(100);
          legends = await cut();
        }
        for (const { id, below } of legends)
          assert.ok(below <= 0.5, `#${id}: its legend ends ${below.toFixed(1)} px below the chart's box`);
        await shot("train-phone");
      }
    }
    // from each view's tab, Tab alone reaches its controls (the chat's too: a chat model is loaded)
    const controls = {
      train: ["text", "text-files", "builtin", "tokenizer", "steps", "sample-every", "preset", "start"],
      generate: [
        "prompt",
        "temperature",
        "top-k",
        "top-p",
        "max-tokens",
        "seed",
        "show-top",
        "generate",
        "chat-input",
        "chat-send",
        "chat-reset",
      ],
      inside: ["inspect-prompt", "inspect", "layer", "head"],
      models: ["download", "model-files", "model-folder", "dropzone"],
    };
    for (const [view, ids] of Object.entries(controls) as [keyof typeof controls, string[]][]) {
      await tab(view);
      await page.focus(`#tab-${view}`);
      await page.evaluate(() => {
        const w = window as unknown as { reached: string[] };
        w.reached = [];
        document.addEventListener("focusin", (e) => w.reached.push((e.target as HTMLElement).id));
      });
      for (let i = 0; i < 60; i++) await page.keyboard.press("Tab");
      const reached = await page.evaluate(() => (window as unknown as { reached: string[] }).reached);
      for (const id of ids) assert.ok(reached.includes(id), `${view}: #${id} is reachable with Tab (reached: ${reached.join(", ")})`);
    }
  });

  step("a preset too big for the memory the browser gives says so, and what to do", async () => {
    // V8 limited to 256 MiB of wasm memory: the large preset's first step cannot get its activations
    const small = await chromium.launch({ executablePath: CHROMIUM, args: ["--js-flags=--wasm-max-mem-pages=4096"] });
    try {
      const other = await small.newPage();
      watch(other);
      await other.goto(url);
      await other.waitForSelector('#engine[data-ready="true"]', { timeout: WAIT_MS });
      await other.fill("#text", corpus);
      await other.selectOption("#preset", "3");
      await other.click("#start");
      await other.waitForFunction(() => /out of memory/.test(document.querySelector("#message")?.textContent ?? ""), undefined, {
        timeout: WAIT_MS,
      });
      assert.match((await other.textContent("#message")) ?? "", /^out of memory for the large preset \(.*\); pick a smaller preset/);
      assert.match((await other.textContent("#progress")) ?? "", /^paused · step 0\//);
      await other.close();
    } finally {
      await small.close();
    }
  });

  step("served without the isolation headers, the page says it trains on one thread", async () => {
    const plain = await serve(join(ROOT, "dist/web"), {}, { isolated: false });
    const other = await context.newPage();
    watch(other);
    try {
      await other.goto(`http://127.0.0.1:${(plain.address() as AddressInfo).port}/index.html`);
      await other.waitForSelector('#engine[data-ready="true"]', { timeout: WAIT_MS });
      assert.match((await other.textContent("#engine")) ?? "", /one thread\. This page is not cross-origin isolated/);
    } finally {
      await other.close();
      plain.closeAllConnections();
      plain.close();
    }
  });

  test("no console errors in any of it", () => {
    assert.deepEqual(problems, []);
  });
});

// WebGPU in the page. Headless Chromium offers SwiftShader's adapter (WebGPU on the CPU; CI has no
// GPU) with these flags: the automatic choice must keep WebAssembly on it, and `?backend=webgpu` trains
// on it. Skipped with the reason when this Chromium offers no adapter.
/** few: a step of the tiny preset takes SwiftShader ~0.5-5 s on the 2-core machine */
const GPU_STEPS = 10;

describe("the web playground on WebGPU (SwiftShader's adapter in headless chromium)", { skip: SKIP }, () => {
  let server: Server;
  let base = "";
  let browser: Browser;
  const problems: string[] = [];
  let noAdapter = "";

  before(async () => {
    ensurePageBuilt();
    server = await serve(join(ROOT, "dist/web"));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/index.html`;
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--enable-unsafe-webgpu", "--use-webgpu-adapter=swiftshader"] });
  });

  after(async () => {
    await browser?.close();
    server?.closeAllConnections();
    server?.close();
  });

  /** the playground at `query`, its engine started; null (the test skipped) when Chromium has no adapter */
  const open = async (t: { skip(message: string): void }, query: string): Promise<Page | null> => {
    const page = await browser.newPage();
    page.on("console", (m) => {
      if (m.type() === "error") problems.push(`console: ${m.text()}`);
    });
    page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
    await page.goto(`${base}${query}`);
    noAdapter ||= await page.evaluate(async () =>
      !("gpu" in navigator)
        ? "no navigator.gpu"
        : (await (navigator as Navigator & { gpu: GPU }).gpu.requestAdapter())
          ? ""
          : "no WebGPU adapter",
    );
    if (noAdapter) {
      t.skip(`webgpu: this Chromium offers ${noAdapter}`);
      await page.close();
      return null;
    }
    await page.waitForSelector('#engine[data-ready="true"]', { timeout: WAIT_MS });
    return page;
  };

  test("the automatic choice keeps WebAssembly on a software adapter, and says why", async (t) => {
    const page = await open(t, "");
    if (!page) return;
    const engine = (await page.textContent("#engine")) ?? "";
    assert.equal(await page.getAttribute("#engine", "data-backend"), "wasm", engine);
    assert.match(engine, /Not WebGPU: its only WebGPU adapter \(.*swiftshader.*\) runs on the CPU/i);
    await page.close();
  });

  test("?backend=webgpu trains on the GPU backend: the loss falls; it generates; no console errors", async (t) => {
    const page = await open(t, "?backend=webgpu");
    if (!page) return;
    const engine = (await page.textContent("#engine")) ?? "";
    t.diagnostic(engine);
    assert.equal(await page.getAttribute("#engine", "data-backend"), "webgpu", engine);
    assert.match(engine, /^Engine: WebGPU on .*swiftshader.*software adapter/i);
    await page.fill("#text", corpus);
    await page.selectOption("#preset", "0");
    await page.fill("#steps", String(GPU_STEPS));
    await page.fill("#sample-every", String(GPU_STEPS));
    await page.click("#start");
    const end = Date.now() + 2 * WAIT_MS;
    while ((await progressOf(page)).status !== "done") {
      if (Date.now() > end) throw new Error(`training did not finish: ${await page.textContent("#progress")}\n${problems.join("\n")}`);
      await page.waitForTimeout(200);
    }
    const losses = await chartLosses(page);
    t.diagnostic(`loss ${losses.join(" -> ")}; ${await page.textContent("#progress")}`);
    assert.ok(losses.length >= 2 && (losses[1] as number) < (losses[0] as number) - 0.2, `the loss falls: ${losses.join(" -> ")}`);
    assert.ok(((await page.textContent("#samples")) ?? "").includes(`step ${GPU_STEPS}`), "a sample at the end");
    await page.click("#tab-generate");
    await page.fill("#prompt", PROMPT);
    await page.fill("#temperature", "0");
    await page.fill("#max-tokens", "20");
    await page.click("#generate");
    await page.waitForSelector('#output[data-done="true"]', { timeout: WAIT_MS });
    const text = (await page.textContent("#output")) ?? "";
    assert.ok(text.startsWith(PROMPT) && text.length > PROMPT.length, `generated ${JSON.stringify(text)}`);
    assert.deepEqual(problems, []);
    await page.close();
  });

  test("?backend=webgpu: a chat-tuned model's chat gives minigpt chat's reply, Look inside its attention", async (t) => {
    const page = await open(t, "?backend=webgpu");
    if (!page) return;
    trainModels();
    await page.click("#tab-models");
    await chatLikeCli(page, 12);
    await page.click("#tab-inside");
    await page.fill("#inspect-prompt", PROMPT);
    await page.click("#inspect");
    await page.waitForSelector(".token", { timeout: WAIT_MS });
    assert.equal(await page.locator(".token").count(), PROMPT.length, "a char model: one token per character");
    assert.equal(await page.locator(".map-row canvas").count(), 1 * 2, "1 layer x 2 heads");
    assert.equal(await page.locator("#next li").count(), 5);
    assert.deepEqual(problems, []);
    await page.close();
  });
});
