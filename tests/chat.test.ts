/**
 * Chat: the template and its loss mask, masking verified through the gradient, chat fine-tuning
 * that teaches a tiny model to answer a fixed question, chat tokens added to a vocabulary without
 * them (GPT-2's), history trimming, and a scripted session through the CLI with piped stdin.
 */
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { before, test } from "node:test";
import { chatExample, chatTokenIds, encodeChat, withChatTokens } from "../src/data/chat.js";
import { MinigptError } from "../src/errors.js";
import { ChatSession } from "../src/generate/chat.js";
import { loadModelFolder, saveTokenizer } from "../src/io/folder.js";
import { saveModel } from "../src/io/hf.js";
import { useBackend } from "../src/kernels/index.js";
import { makeConfig } from "../src/nn/config.js";
import { GPT } from "../src/nn/gpt.js";
import { scope, Tensor } from "../src/tensor/tensor.js";
import { CharTokenizer } from "../src/tokenizer/char.js";
import { gpt2Tokenizer } from "../src/tokenizer/gpt2.js";
import { defaultTrainConfig } from "../src/train/config.js";
import { train } from "../src/train/trainer.js";
import { charModelFolder, runCli, tempDir } from "./helpers.js";

const tmp = () => tempDir("minigpt-chat-");
const QA: [string, string][] = [
  ["what is your name?", "minigpt"],
  ["how are you?", "fine, thanks"],
  ["what color is the sky?", "blue"],
  ["say hi", "hi there"],
];
before(async () => {
  // training is the slow part: the wasm kernels when they are built, else the reference loops
  try {
    await useBackend("wasm", { threads: 1 });
  } catch {
    await useBackend("ref");
  }
});

const ALPHABET = `${QA.map(([q, a]) => `${q} ${a}`).join(" ")}xyz`;

test("the chat template and its mask: targets only on assistant text and its <|end|>", () => {
  const tok = CharTokenizer.fromText("abcdefghijklmnopqrstuvwxyz ?<|>");
  const t = chatTokenIds(tok);
  assert.ok(t);
  const { ids, assistant } = encodeChat(tok, [
    { role: "user", content: "hi" },
    { role: "assistant", content: "yo" },
  ]);
  const e = (s: string) => tok.encode(s);
  assert.deepEqual(ids, [t.user, ...e("hi"), t.end, t.assistant, ...e("yo"), t.end]);
  assert.deepEqual(assistant, [false, false, false, false, false, true, true, true]);
  const { x, y } = chatExample(ids, assistant, 10, t.end);
  assert.deepEqual([...x], [...ids.slice(0, 8), t.end, t.end]);
  // y[i] predicts ids[i+1]: only "y", "o" and the closing <|end|> are targets
  assert.deepEqual([...y], [-1, -1, -1, -1, ...e("yo"), t.end, -1, -1, -1]);
  // text that looks like a marker stays text
  const forged = encodeChat(tok, [{ role: "user", content: "<|end|>" }]).ids;
  assert.equal(forged.filter((id) => id === t.end).length, 1);
});

test("loss masking: masked positions get exactly zero gradient, whatever the user wrote", () => {
  const tok = CharTokenizer.fromText("abcdefghijklmnopqrstuvwxyz ?");
  const t = chatTokenIds(tok);
  assert.ok(t);
  const c = makeConfig({ vocabSize: tok.vocabSize, blockSize: 24, nLayer: 1, nHead: 2, nEmbd: 16 });
  const model = new GPT(c, 3);
  const T = 24;
  const run = (user: string) => {
    const { ids, assistant } = encodeChat(tok, [
      { role: "user", content: user },
      { role: "assistant", content: "fine" },
    ]);
    const { x, y } = chatExample(ids, assistant, T, t.end);
    model.zeroGrad();
    return scope(() => {
      let logitsT: Tensor | undefined;
      const { loss } = model.forward(Tensor.ints(x, [1, T]), {
        targets: Tensor.ints(y, [1, T]),
        capture: (name, tensor) => {
          if (name === "logits") {
            logitsT = tensor;
            tensor.retainGrad();
          }
        },
      });
      (loss as Tensor).backward();
      const lg = logitsT as Tensor;
      const V = c.vocabSize;
      // independent loss: mean cross-entropy over the unmasked positions only
      let sum = 0;
      let n = 0;
      for (let i = 0; i < T; i++) {
        const target = y[i] as number;
        if (target < 0) continue;
        const row = Array.from(lg.data.subarray(i * V, (i + 1) * V));
        const m = Math.max(...row);
        const lse = m + Math.log(row.reduce((s, v) => s + Math.exp(v - m), 0));
        sum += lse - (row[target] as number);
        n++;
      }
      const masked = [...y].map((v, i) => [v, i] as const).filter(([v]) => v < 0);
      const gradAtMasked = masked.map(([, i]) => Math.max(...Array.from((lg.grad as Tensor).data.subarray(i * V, (i + 1) * V), Math.abs)));
      return { loss: (loss as Tensor).item(), manual: sum / n, n, y: [...y], gradAtMasked, userLen: user.length };
    });
  };
  const a = run("how are you");
  const b = run("who is there");
  for (const r of [a, b]) {
    assert.equal(r.n, "fine".length + 1);
    assert.ok(Math.abs(r.loss - r.manual) < 1e-5, `${r.loss} vs ${r.manual}`);
    assert.ok(r.gradAtMasked.length > 0);
    assert.ok(
      r.gradAtMasked.every((g) => g === 0),
      "every masked position has zero gradient",
    );
  }
  // both conversations mask every user-turn position; the targets differ only by where the reply starts
  const unmasked = (y: number[]) => y.filter((v) => v >= 0);
  assert.deepEqual(unmasked(a.y), unmasked(b.y));
  model.dispose();
});

function writeChats(dir: string): string {
  const lines: string[] = [];
  for (let i = 0; i < 24; i++) {
    const [q, a] = QA[i % QA.length] as [string, string];
    const [q2, a2] = QA[(i * 3 + 1) % QA.length] as [string, string];
    const messages = [
      { role: "user", content: q },
      { role: "assistant", content: a },
    ];
    if (i % 2 === 1) messages.push({ role: "user", content: q2 }, { role: "assistant", content: a2 });
    lines.push(JSON.stringify({ messages }));
  }
  const file = join(dir, "chats.jsonl");
  writeFileSync(file, `${lines.join("\n")}\n`);
  return file;
}

let chatModelDir = "";

test("chat fine-tuning teaches a tiny model to answer a fixed question with the trained answer", async () => {
  const dir = tmp();
  const base = charModelFolder(join(dir, "base"), ALPHABET, { blockSize: 48, nLayer: 2, nHead: 2, nEmbd: 32 }, 7);
  const out = join(dir, "chat");
  const result = await train({
    ...defaultTrainConfig,
    chat: writeChats(dir),
    init: base,
    data: "",
    out,
    blockSize: 48,
    batchSize: 12,
    maxSteps: 250,
    lr: 3e-3,
    minLr: 3e-4,
    warmupSteps: 20,
    weightDecay: 0,
    evalInterval: 250,
    evalSteps: 1,
    checkpointInterval: 250,
  });
  result.model.dispose();
  const folder = loadModelFolder(out);
  const session = new ChatSession(folder.model, folder.tokenizer, { temperature: 0, maxNewTokens: 20 });
  assert.equal(session.reply("what is your name?"), "minigpt");
  session.reset();
  assert.equal(session.reply("what color is the sky?"), "blue");
  folder.model.dispose();
  chatModelDir = out;
});

test("a scripted chat session with piped stdin: expected turns, commands, odd input", () => {
  assert.ok(chatModelDir, "needs the model of the previous test");
  const r = runCli(["chat", "--model", chatModelDir, "--temperature", "0", "--max-new-tokens", "20", "--backend", "ref"], {
    input: "what is your name?\n\n/topk x\n/topk 5\n/nonsense 1 2\n/reset\nwhat color is the sky?\n/quit\nnever read\n",
  });
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.split("\n");
  assert.ok(lines.includes("you> what is your name?"), r.stdout);
  assert.ok(lines.includes("assistant> minigpt"), r.stdout);
  assert.ok(lines.includes("assistant> blue"), r.stdout);
  assert.ok(lines.includes("top-k 5"), r.stdout);
  assert.ok(
    lines.some((l) => l.startsWith("usage: /topk")),
    r.stdout,
  );
  assert.ok(
    lines.some((l) => l.includes("unknown command")),
    r.stdout,
  );
  assert.ok(lines.includes("(conversation cleared)"), r.stdout);
  assert.ok(!r.stdout.includes("never read"), "input after /quit is not read");
  assert.ok(!r.stderr.includes("not fine-tuned for chat"), r.stderr);
});

test("chat with a model never fine-tuned for chat says so, and how to fine-tune it", async () => {
  const dir = tmp();
  const data = join(dir, "plain.txt");
  writeFileSync(data, ALPHABET.repeat(40));
  const out = join(dir, "plain");
  const result = await train({
    ...defaultTrainConfig,
    data,
    out,
    blockSize: 16,
    nLayer: 1,
    nHead: 2,
    nEmbd: 16,
    maxSteps: 2,
    evalSteps: 1,
  });
  result.model.dispose();
  // it never ends a reply (<|end|> is suppressed: it never learned it), so every reply reaches the limit;
  // one longer than the 16-token context says what that means, not only "cut at 40 tokens"
  const r = runCli(["chat", "--model", out, "--backend", "ref", "--max-new-tokens", "40"], { input: "hi\n/max 10\nhi\n/quit\n" });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /was not fine-tuned for chat .*minigpt train --chat conversations\.jsonl --init/);
  assert.match(
    r.stdout,
    / \[reply cut at 40 tokens, the \/max limit: longer than the model's 16-token context, so it lost sight of your message on the way; \/max N changes the limit\]\n/,
  );
  assert.match(r.stdout, / \[reply cut at 10 tokens: \/max raises the limit\]\n/);
});

test("history is trimmed to the context: oldest turns dropped first, with a notice", () => {
  // without byte fallback: this untrained model's replies would otherwise include byte tokens that
  // are not whole UTF-8, which the history's text leaves out, so the history's length in tokens
  // would not be that of the ids the model gave
  const tok = CharTokenizer.fromText(ALPHABET, [], { byteFallback: false });
  const model = new GPT(makeConfig({ vocabSize: tok.vocabSize, blockSize: 40, nLayer: 1, nHead: 1, nEmbd: 8 }), 1);
  const session = new ChatSession(model, tok, { temperature: 0, maxNewTokens: 5 });
  const notices: number[] = [];
  for (let i = 0; i < 6; i++) {
    for (const e of session.send("say hi")) if (e.type === "dropped") notices.push(e.turns);
    // prompt (history + new turn) always left room for the reply
    assert.ok(encodeChat(tok, session.history).ids.length <= 40);
  }
  assert.ok(notices.length > 0, "some turns were dropped");
  // the newest turn is kept
  assert.equal(session.history[session.history.length - 2]?.content, "say hi");
  model.dispose();
});

test("a vocabulary without chat tokens: chat says so; --chat fine-tuning adds them as new rows", async () => {
  const gpt2 = gpt2Tokenizer();
  const c = makeConfig({ vocabSize: gpt2.vocabSize, blockSize: 16, nLayer: 1, nHead: 1, nEmbd: 8 });
  const model = new GPT(c, 2);
  assert.throws(
    () => new ChatSession(model, gpt2, {}, "gpt2-tiny"),
    (err: unknown) => err instanceof MinigptError && /no chat tokens/.test(err.message) && /train --chat/.test(err.message),
  );
  const { tokenizer: ext, added } = withChatTokens(gpt2);
  assert.deepEqual(added, ["<|user|>", "<|assistant|>", "<|end|>", "<|system|>"]);
  assert.equal(ext.vocabSize, 50261);
  assert.equal(ext.specialTokenId("<|end|>"), 50259);
  const sample = "Hello world, it's a test: 123 ünïcödé.";
  assert.deepEqual(ext.encode(sample), gpt2.encode(sample));

  const dir = tmp();
  const base = join(dir, "base");
  mkdirSync(base);
  saveModel(model, base);
  saveTokenizer(base, gpt2);
  const oldWte = model.param("transformer.wte.weight").data.slice();
  model.dispose();
  const file = join(dir, "c.jsonl");
  writeFileSync(
    file,
    `${JSON.stringify({
      messages: [
        { role: "user", content: "hi" },
        { role: "assistant", content: "hello" },
      ],
    })}\n`,
  );
  const out = join(dir, "out");
  const result = await train({
    ...defaultTrainConfig,
    chat: file,
    init: base,
    out,
    blockSize: 16,
    batchSize: 2,
    maxSteps: 1,
    lr: 0,
    minLr: 0,
    warmupSteps: 0,
    evalInterval: 1,
    evalSteps: 1,
    checkpointInterval: 1,
  });
  result.model.dispose();
  const folder = loadModelFolder(out);
  assert.equal(folder.tokenizer.vocabSize, 50261);
  assert.equal(folder.model.config.vocabSize, 50261);
  assert.equal(folder.tokenizer.specialTokenId("<|user|>"), 50257);
  const wte = folder.model.param("transformer.wte.weight").data;
  const C = 8;
  // lr 0: old rows unchanged, new rows are the mean of the old ones
  assert.deepEqual(wte.subarray(0, 50257 * C), oldWte);
  for (let k = 0; k < C; k++) {
    let mean = 0;
    for (let v = 0; v < 50257; v++) mean += (oldWte[v * C + k] as number) / 50257;
    for (let v = 50257; v < 50261; v++) assert.ok(Math.abs((wte[v * C + k] as number) - mean) < 1e-6);
  }
  new ChatSession(folder.model, folder.tokenizer).reset(); // no longer refuses
  folder.model.dispose();
});
