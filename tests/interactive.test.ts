/**
 * Interactive mode driven through a pipe, as a script would: `minigpt` with no arguments in a folder
 * of models, menus, generate (Enter continues), settings commands, chat, analyze, odd input.
 */
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { ChatSession } from "../src/generate/chat.js";
import { generate } from "../src/generate/generate.js";
import { saveTokenizer } from "../src/io/folder.js";
import { saveModel } from "../src/io/hf.js";
import { makeConfig } from "../src/nn/config.js";
import { GPT } from "../src/nn/gpt.js";
import { CharTokenizer } from "../src/tokenizer/char.js";
import { runCli, tempDir } from "./helpers.js";

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
});
