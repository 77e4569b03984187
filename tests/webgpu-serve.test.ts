// minigpt serve --backend webgpu: a real server process whose generation thread steps on the GPU
// (Engine.stepAsync: each step's logits read back asynchronously), on the adapter tests/webgpu-env.ts
// finds (SwiftShader), driven by the openai client: the same text as a wasm server from the same
// model, greedy and seeded (sampling is on the CPU, from logits within ~1e-6 of wasm's), completions
// and chat, whole and streamed, two requests decoded together, and the log probabilities of both of
// OpenAI's shapes (within 1e-4 of wasm's); the adapter is printed. Skips with
// one line when no adapter can be had.
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, test } from "node:test";
import OpenAI from "openai";
import { runCli, type StartedCli, startServe, tempDir, wordCorpus } from "./helpers.js";
import { webgpuEnv, webgpuUnavailable } from "./webgpu-env.js";

const servers: StartedCli[] = [];
after(async () => {
  for (const s of servers) s.child.kill("SIGTERM");
  await Promise.all(servers.map((s) => s.exited));
});

test("serve --backend webgpu answers the openai client with a wasm server's greedy and seeded text", async (t) => {
  const why = webgpuUnavailable();
  if (why) {
    t.skip(`webgpu: ${why}`);
    return;
  }
  const dir = tempDir("minigpt-webgpu-serve-");
  const model = join(dir, "tiny");
  // a tiny model, barely trained: its greedy text is mostly spaces, its seeded samples vary
  const trained = runCli([
    "train",
    "--backend",
    "wasm",
    "--data",
    wordCorpus(dir, 3000),
    "--out",
    model,
    ...["--n-layer", "1", "--n-head", "2", "--n-embd", "16", "--block-size", "32", "--batch-size", "4"],
    ...["--max-steps", "3", "--lr", "0.03", "--warmup-steps", "0", "--eval-steps", "1", "--sample-tokens", "0"],
  ]);
  assert.equal(trained.status, 0, trained.stderr);
  const env = webgpuEnv();
  const [gpu, wasm] = await Promise.all(
    ["webgpu", "wasm"].map(async (backend) => {
      const s = await startServe(model, ["--backend", backend], { env });
      servers.push(s.cli);
      return s;
    }),
  );
  assert.match(gpu?.cli.stderr() ?? "", /^backend: webgpu on .+/m);
  assert.doesNotMatch(wasm?.cli.stderr() ?? "", /webgpu|Vulkan/);

  /** what a server answers: two seeded completions decoded together, a greedy one streamed, and a chat reply */
  const answers = async (url: string) => {
    const ai = new OpenAI({ baseURL: `${url}/v1`, apiKey: "unused", maxRetries: 0 });
    const complete = (prompt: string, seed: number) =>
      ai.completions.create({ model: "tiny", prompt, max_tokens: 6, temperature: 1, seed });
    const both = await Promise.all([complete("the whale", 5), complete("a ship and", 6)]);
    let streamed = "";
    for await (const chunk of await ai.completions.create({
      model: "tiny",
      prompt: "the sea",
      max_tokens: 6,
      temperature: 0,
      stream: true,
    }))
      streamed += chunk.choices[0]?.text ?? "";
    const chat = await ai.chat.completions.create({
      model: "tiny",
      messages: [{ role: "user", content: "the storm" }],
      max_tokens: 4,
      temperature: 0,
    });
    return [...both.map((c) => c.choices[0]?.text), streamed, chat.choices[0]?.message.content];
  };
  const onGpu = await answers(gpu?.url ?? "");
  const onWasm = await answers(wasm?.url ?? "");
  t.diagnostic(`texts: ${JSON.stringify(onGpu)}`);
  assert.ok(onWasm.every((text) => typeof text === "string" && text.length > 0));
  assert.deepEqual(onGpu, onWasm);

  /** log probabilities in both of OpenAI's shapes: each token with its own and its top alternatives' */
  const logprobs = async (url: string) => {
    const ai = new OpenAI({ baseURL: `${url}/v1`, apiKey: "unused", maxRetries: 0 });
    const completion = await ai.completions.create({ model: "tiny", prompt: "the whale", max_tokens: 5, temperature: 0, logprobs: 3 });
    const chat = await ai.chat.completions.create({
      model: "tiny",
      messages: [{ role: "user", content: "the storm" }],
      max_tokens: 4,
      temperature: 0,
      logprobs: true,
      top_logprobs: 3,
    });
    const c = completion.choices[0]?.logprobs;
    const m = chat.choices[0]?.logprobs?.content ?? [];
    return {
      tokens: [...(c?.tokens ?? []), ...m.map((e) => e.token)],
      alternatives: [
        ...(c?.top_logprobs ?? []).map((top) => Object.keys(top ?? {}).sort()),
        ...m.map((e) => e.top_logprobs.map((a) => a.token).sort()),
      ],
      values: [
        ...(c?.token_logprobs ?? []),
        ...(c?.top_logprobs ?? []).flatMap((top) =>
          Object.keys(top ?? {})
            .sort()
            .map((k) => top?.[k] ?? Number.NaN),
        ),
        ...m.flatMap((e) => [e.logprob, ...[...e.top_logprobs].sort((a, b) => (a.token < b.token ? -1 : 1)).map((a) => a.logprob)]),
      ],
    };
  };
  const gpuLogprobs = await logprobs(gpu?.url ?? "");
  const wasmLogprobs = await logprobs(wasm?.url ?? "");
  assert.equal(wasmLogprobs.tokens.length, 9);
  assert.deepEqual(gpuLogprobs.tokens, wasmLogprobs.tokens);
  assert.deepEqual(gpuLogprobs.alternatives, wasmLogprobs.alternatives);
  assert.equal(gpuLogprobs.values.length, wasmLogprobs.values.length);
  // the GPU's logits are within ~1e-6 of wasm's (another summation order), and so their log-softmax
  wasmLogprobs.values.forEach((v, i) => {
    const g = gpuLogprobs.values[i] as number;
    assert.ok(v < 0 && Math.abs(g - v) < 1e-4, `log probability ${i}: ${g} on the GPU against ${v}`);
  });
});
