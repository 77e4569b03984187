/**
 * Interactive mode driven through a pipe, as a script would: `minigpt` with no arguments in a folder
 * of models, menus, generate (Enter continues), settings commands, chat, analyze, odd input; and on
 * a pseudo-terminal, Ctrl-C during a reply (interactive and chat).
 */
import assert from "node:assert/strict";
import { cpSync, mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { withChatTokens } from "../src/data/chat.js";
import { ChatSession } from "../src/generate/chat.js";
import { generate } from "../src/generate/generate.js";
import { loadModelFolder, saveTokenizer } from "../src/io/folder.js";
import { saveModel } from "../src/io/hf.js";
import { loraModules } from "../src/io/lora.js";
import { writeLoraAdapter } from "../src/io/lora-folder.js";
import { makeConfig } from "../src/nn/config.js";
import { GPT } from "../src/nn/gpt.js";
import { Rng } from "../src/random.js";
import { CharTokenizer } from "../src/tokenizer/char.js";
import { runCli, runInTerminal, SCRIPT, tempDir } from "./helpers.js";

function setUp() {
  const root = tempDir("minigpt-interactive-");
  // as a folder made before byte fallback: a character outside the vocabulary is left out
  const tok = CharTokenizer.fromText("abcdefgh ijklmnop?!", [], { byteFallback: false });
  for (const [name, seed] of [
    ["alpha", 1],
    ["beta", 2],
  ] as const) {
    const dir = join(root, name);
    mkdirSync(dir);
    const model = new GPT(makeConfig({ vocabSize: tok.vocabSize, blockSize: 32, nLayer: 1, nHead: 2, nEmbd: 16 }), seed);
    saveModel(model, dir);
    saveTokenizer(dir, tok);
    model.dispose();
  }
  mkdirSync(join(root, "not-a-model"));
  return { root, tok };
}

/** `minigpt` with no arguments, run in `cwd`, with `input` piped to stdin. */
function minigpt(cwd: string, input: string) {
  return runCli([], { cwd, input, env: { MINIGPT_BACKEND: "ref" } });
}

test("a scripted interactive session: folders, modes, Enter continues, settings, chat, analyze", () => {
  const { root, tok } = setUp();
  const script = [
    "7", // not a choice
    "beta", // by name
    "2", // chat
    "/temp 0",
    "/max 6",
    "/topk many", // bad value: answered, not fatal
    "abc",
    "/mode",
    "1", // generate
    "ab",
    "", // Enter: continue the text
    "zzz", // 'z' is not in the vocabulary: left out, with a warning
    "/mode",
    "3", // analyze
    "/quit",
    "after quit",
  ].join("\n");
  const r = minigpt(root, `${script}\n`);
  assert.equal(r.status, 0, r.stderr);
  const out = r.stdout;
  assert.match(out, /model folders:\n {2}1\) alpha\n {2}2\) beta\n/);
  assert.ok(!out.includes("not-a-model"));
  assert.match(out, /please type a number from 1 to 2/);
  assert.match(out, /loaded best model \(model.safetensors\) of beta: /);
  assert.match(out, /temperature 0\n/);
  assert.match(out, /usage: \/topk/);

  // the expected turns, computed in-process with the same model and settings
  const model = new GPT(makeConfig({ vocabSize: tok.vocabSize, blockSize: 32, nLayer: 1, nHead: 2, nEmbd: 16 }), 2);
  const session = new ChatSession(model, tok, { temperature: 0, maxNewTokens: 6, seed: 1337 });
  const reply = session.reply("abc");
  assert.ok(out.includes(`you> abc\nassistant> ${reply}`), out);
  const firstIds = generate(model, tok.encode("ab"), { temperature: 0, maxNewTokens: 6, seed: 1337 });
  const cont = tok.decode(generate(model, [...tok.encode("ab"), ...firstIds], { temperature: 0, maxNewTokens: 6, seed: 1338 }));
  assert.ok(out.includes(`> ab\nab${tok.decode(firstIds)}\n> \n${cont}\n`), out);
  assert.match(out, /\(warning: left out "z" \(U\+007A\): not in this model's character vocabulary/);
  assert.match(out, /parameters: [\d,]+ total/);
  assert.ok(!out.includes("after quit"));
  model.dispose();
});

test("odd input never crashes: end of input anywhere, empty lines, unknown commands, no models", () => {
  const { root } = setUp();
  for (const input of [
    "",
    "\n\n\n",
    "1\n",
    "1\n1\n",
    "1\n1\n/what\n\n\n",
    "2\n2\n/reset\n/help\n/max 0\n/max 5\n/topp 2\n/topp 0.5\n\u0000\u00ff\n",
  ]) {
    const r = minigpt(root, input);
    assert.equal(r.status, 0, `input ${JSON.stringify(input)}: ${r.stderr}`);
    assert.equal(r.stderr.trim(), "", `input ${JSON.stringify(input)}`);
  }
  const empty = tempDir("minigpt-interactive-empty-");
  const r = minigpt(empty, "1\n");
  assert.equal(r.status, 1);
  assert.match(r.stdout, /no model folders in .*train one with: minigpt train/);
  // what it looks for, LoRA adapters included (it lists them)
  assert.match(r.stdout, /, or a LoRA adapter's adapter_config\.json and adapter_model\.safetensors\)/);
});

test("--dir that is not a folder is one line saying so, not an empty list with advice to train into it", () => {
  const { root } = setUp();
  const notes = join(root, "notes.txt");
  writeFileSync(notes, "some text\n");
  for (const [dir, said] of [
    [join(root, "missing"), "does not exist"],
    [notes, "is a file, not a folder"],
  ] as const) {
    const r = runCli(["interactive", "--dir", dir], { input: "1\n" });
    assert.equal(r.status, 1, r.stdout);
    assert.equal(r.stdout, "");
    assert.equal(r.stderr, `minigpt interactive: --dir ${dir} ${said}; give the folder that holds your model folders\n`);
  }
});

test("the folder a training run replaced (OUT.replaced-PID) and one being made (OUT.partial-PID) are not offered as models; the replaced one is named", () => {
  const { root } = setUp();
  cpSync(join(root, "alpha"), join(root, "beta.replaced-4242"), { recursive: true });
  cpSync(join(root, "alpha"), join(root, "beta.partial-4243"), { recursive: true });
  const r = minigpt(root, "/quit\n");
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /model folders:\n {2}1\) alpha\n {2}2\) beta\nchoose/);
  assert.match(
    r.stdout,
    /\(not listed: beta\.replaced-4242, the model folder beta held before a training run replaced it, kept until that run finishes\)\n/,
  );
  assert.ok(!r.stdout.includes("partial"), r.stdout);
});

test("a LoRA adapter folder is offered and loads as generate loads it: merged into its base", () => {
  const { root } = setUp();
  const adapterDir = join(root, "alpha-lora");
  mkdirSync(adapterDir);
  const base = loadModelFolder(join(root, "alpha"), () => {});
  const rng = new Rng(4);
  const rank = 2;
  const layers = loraModules(base.model.config, ["c_attn"]).map((m) => ({
    ...m,
    a: Float32Array.from({ length: rank * m.inFeatures }, () => rng.normal() * 0.5),
    b: Float32Array.from({ length: m.outFeatures * rank }, () => rng.normal() * 0.5),
  }));
  base.model.dispose();
  const config = { rank, alpha: 4, dropout: 0, targets: ["c_attn"], base: "../alpha", trainableTokens: [] };
  writeLoraAdapter(adapterDir, { config, layers });
  const r = minigpt(root, ["2", "1", "/temp 0", "/max 6", "ab", "/quit"].join("\n"));
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /model folders:\n {2}1\) alpha\n {2}2\) alpha-lora\n {2}3\) beta\n/);
  assert.match(r.stdout, /\(.*alpha-lora: a LoRA adapter \(r 2, \["c_attn"\]\) on .*alpha, merged into its weights to run\)\n/);
  assert.match(r.stdout, /loaded LoRA adapter on \.\.\/alpha of alpha-lora: /);
  // the same text as generate's (which stops at the end-of-text token, as interactive does)
  const generated = runCli(["generate", "--model", adapterDir, "--prompt", "ab", "--temperature", "0", "--max-new-tokens", "6"], {
    env: { MINIGPT_BACKEND: "ref" },
  });
  assert.equal(generated.status, 0, generated.stderr);
  assert.ok(r.stdout.includes(`> ab\n${generated.stdout}`), `${r.stdout}\ngenerate: ${generated.stdout}`);
});

/** A folder with one model whose vocabulary has the chat tokens but that was never chat-fine-tuned. */
function chatTokensModel(): string {
  const root = tempDir("minigpt-ctrl-c-");
  const dir = join(root, "plain");
  mkdirSync(dir);
  const { tokenizer } = withChatTokens(CharTokenizer.fromText("abcdefgh ijklmnop?!"));
  const model = new GPT(makeConfig({ vocabSize: tokenizer.vocabSize, blockSize: 32, nLayer: 1, nHead: 2, nEmbd: 16 }), 3);
  saveModel(model, dir, { special_targets: [] });
  saveTokenizer(dir, tokenizer);
  model.dispose();
  return dir;
}

const CTRL_C = "\x03";
const STOPPED = /\[stopped by Ctrl-C; Ctrl-C at the prompt quits\]/;

test("Ctrl-C in interactive stops a reply (chat and generate) and goes back to the prompt; Ctrl-C at the prompt quits", async (t) => {
  if (!SCRIPT) return t.skip("no script command (util-linux) to make a pseudo-terminal: Ctrl-C is not tested");
  const dir = chatTokensModel();
  const r = await runInTerminal(
    [],
    [
      { waitFor: /choose 1-3> /, type: "2\n" },
      // the same note as `minigpt chat` gives
      { waitFor: /note: \S*plain was not fine-tuned for chat .*minigpt train --chat conversations\.jsonl --init/ },
      { waitFor: /you> /, type: "/max 100000\n" },
      { waitFor: /max 100000 tokens\r?\nyou> /, type: "hello\n" },
      { waitFor: /assistant> /, type: CTRL_C },
      { waitFor: STOPPED },
      { waitFor: /you> /, type: "/mode\n" },
      { waitFor: /choose 1-3> /, type: "1\n" },
      { waitFor: /\n> /, type: "ab\n" },
      // the pseudo-terminal echoes "ab", then the program shows it and continues it
      { waitFor: /ab\r?\nab./, type: CTRL_C },
      { waitFor: STOPPED },
      { waitFor: /\n> /, type: CTRL_C },
    ],
    { cwd: dirname(dir), env: { MINIGPT_BACKEND: "ref" } },
  );
  assert.equal(r.status, 0, r.output);
});

test("Ctrl-C in chat stops the reply, which is not kept; the next message is answered; Ctrl-C at the prompt quits", async (t) => {
  if (!SCRIPT) return t.skip("no script command (util-linux) to make a pseudo-terminal: Ctrl-C is not tested");
  const dir = chatTokensModel();
  const r = await runInTerminal(
    ["chat", "--model", dir, "--backend", "ref", "--max-new-tokens", "100000"],
    [
      { waitFor: /you> /, type: "hello\n" },
      { waitFor: /assistant> /, type: CTRL_C },
      { waitFor: /\(this exchange is not kept\)\r?\nyou> /, type: "/max 3\n" },
      { waitFor: /you> /, type: "hi\n" },
      { waitFor: /assistant> [^\n]*\n(\r)?you> /, type: CTRL_C },
    ],
  );
  assert.equal(r.status, 0, r.output);
  assert.match(r.output, STOPPED);
});
