// Load on `minigpt serve` (startServer, the generation thread batching every request in flight):
// C concurrent clients on loopback, each a bounded loop of streamed /v1/completions requests with a
// fixed prompt length, max_tokens and seed (client k's request i: seed 1000·k + i), for C = 1, 4, 16.
// Per C: requests/s, generated tokens/s (usage's completion tokens over the wall time), latency and
// time to first token (p50, p99), and tokens per CPU-second (the process's CPU time, every thread:
// on a machine shared with other jobs it says what the work costs when wall time cannot), and how
// busy the HTTP thread was (its event loop's utilization: the server's parsing, chunks and writes and
// the clients' own work, all on this thread; whatever it does takes a core from a kernel thread when
// the generation thread runs two). Then a flood past --max-batch + --max-queue: every request must get
// 200 or a clean 429 with Retry-After, and nothing else.
//
// The clients run in this process, on the server's HTTP thread and the same cores, so what a client
// costs is paid from the server's CPU: by default each is a plain node:http request on a keep-alive
// connection (--client http); --client fetch uses fetch (undici, web streams), as the openai
// package does, whose request round trip took ~10-13 ms against ~5 ms between two requests of a
// client with 16 clients running (quiet, 2 cores), a place in the batch left empty meanwhile.
// Before the measured runs, one unmeasured round of every client count (C requests at once): every
// step size the runs meet is compiled and tiered up before any is timed, for one client as for 16.
//
// Models (random weights, GPT-2 init, seeded), saved to a temporary folder first:
//   big   the bigger recipe's model: 6 layers, 6 heads, 384 wide, block 256, a 65-character vocabulary
//   gpt2  GPT-2 124M's shape: 12 layers, 12 heads, 768 wide, block 1024, GPT-2's 50,257 tokens
//
//   node --import tsx bench/serve-load.ts [--model big|gpt2] [--clients 1,4,16] [--requests R]
//        [--prompt-tokens P] [--max-tokens N] [--threads T] [--max-batch B] [--max-queue Q] [--flood F]
//        [--client http|fetch] [--repeat N]
//
// --repeat N runs the client counts N times in turns (1, 16, 1, 16, ...) and gives each turn's ratio
// of the most clients' generated tokens/s over one client's, and their median: this host's speed
// drifts by ~40% within minutes, so a ratio of two phases measured a minute apart says as much about
// the drift as about batching; phases side by side, repeated, say it about batching.
// Prints a table on stderr and one JSON object on stdout.
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { Agent, request as httpRequest } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { CharTokenizer, GPT, gpt2Tokenizer, makeConfig, saveModel, saveTokenizer, startServer, type Tokenizer } from "../src/index.js";
import { arg, expectArgs } from "./args.js";

expectArgs("bench/serve-load.ts", [
  "model",
  "clients",
  "requests",
  "prompt-tokens",
  "max-tokens",
  "threads",
  "max-batch",
  "max-queue",
  "flood",
  "client",
  "repeat",
]);

const which = arg("model", "big");
const clientCounts = arg("clients", "1,4,16").split(",").map(Number);
const requestsPerClient = Number(arg("requests", "4"));
const promptTokens = Number(arg("prompt-tokens", "16"));
const maxTokens = Number(arg("max-tokens", "32"));
const threads = Number(arg("threads", "1"));
const maxBatch = Number(arg("max-batch", "16"));
const maxQueue = Number(arg("max-queue", "16"));
const flood = Number(arg("flood", String(3 * (maxBatch + maxQueue))));
const client = arg("client", "http");
const repeat = Number(arg("repeat", "1"));
if (!(Number.isInteger(repeat) && repeat >= 1)) throw new Error(`--repeat ${repeat}: a whole number from 1`);
if (client !== "http" && client !== "fetch") throw new Error(`--client ${client}: use http or fetch`);

const shapes = {
  big: { nLayer: 6, nHead: 6, nEmbd: 384, blockSize: 256 },
  gpt2: { nLayer: 12, nHead: 12, nEmbd: 768, blockSize: 1024 },
} as const;
const shape = shapes[which as keyof typeof shapes];
if (!shape) throw new Error(`--model ${which}: use big or gpt2`);

// the model folder: random weights, the recipe's tokenizer
const dir = mkdtempSync(join(tmpdir(), "minigpt-serve-load-"));
const folder = join(dir, which);
mkdirSync(folder);
const letters = "\n !$&',-.3:;?ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"; // tiny Shakespeare's 65
const tokenizer: Tokenizer = which === "gpt2" ? gpt2Tokenizer() : CharTokenizer.fromText(letters, [], { byteFallback: false });
{
  const model = new GPT(makeConfig({ vocabSize: tokenizer.vocabSize, ...shape, dropout: 0 }), 1337);
  // the bigger recipe trains on tiny Shakespeare, which has no <|endoftext|>: its folder says it was
  // trained to predict no special token, so generation never draws one, and every request runs to
  // max_tokens as a trained model's would (random weights would end ~1 in 69 tokens there)
  saveModel(model, folder, which === "big" ? { special_targets: [] } : {});
  saveTokenizer(folder, tokenizer);
  model.dispose();
}
// a prompt of exactly promptTokens tokens (" the" is one GPT-2 token; a letter is one character token)
const prompt = which === "gpt2" ? " the".repeat(promptTokens) : "the sea ".repeat(promptTokens).slice(0, promptTokens);
if (tokenizer.encode(prompt).length !== promptTokens) throw new Error("the prompt is not --prompt-tokens tokens long");

const server = await startServer({ model: folder, port: 0, threads, maxBatch, maxQueue, timeout: 0, notice: () => {} });
const url = `${server.url}/v1/completions`;
const eventLoopUtilization = performance.eventLoopUtilization.bind(performance);

interface Outcome {
  status: number;
  ms: number;
  /** time to the first streamed text */
  ttftMs: number;
  tokens: number;
  retryAfter: string | null;
}

/** the request's JSON body */
const body = (seed: number) =>
  JSON.stringify({
    model: which,
    prompt,
    max_tokens: maxTokens,
    temperature: 1,
    seed,
    stream: true,
    stream_options: { include_usage: true },
  });

/** reads a stream's server-sent events as they come: time to the first text, completion tokens from usage */
class EventReader {
  ttftMs = Number.NaN;
  tokens = 0;
  private buffered = "";
  constructor(private readonly t0: number) {}

  push(text: string): void {
    this.buffered += text;
    let at = this.buffered.indexOf("\n\n");
    while (at >= 0) {
      const event = this.buffered.slice(0, at);
      this.buffered = this.buffered.slice(at + 2);
      at = this.buffered.indexOf("\n\n");
      const data = event.startsWith("data: ") ? event.slice(6) : "";
      if (data === "" || data === "[DONE]") continue;
      const json = JSON.parse(data) as { choices: { text: string }[]; usage: { completion_tokens: number } | null };
      if (Number.isNaN(this.ttftMs) && json.choices[0]?.text) this.ttftMs = performance.now() - this.t0;
      if (json.usage) this.tokens = json.usage.completion_tokens;
    }
  }
}

/** one streamed completion with fetch; resolves when the stream ends */
async function completeFetch(seed: number): Promise<Outcome> {
  const t0 = performance.now();
  const res = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: body(seed) });
  if (res.status !== 200 || !res.body) {
    await res.text();
    return { status: res.status, ms: performance.now() - t0, ttftMs: Number.NaN, tokens: 0, retryAfter: res.headers.get("retry-after") };
  }
  const events = new EventReader(t0);
  const decoder = new TextDecoder();
  const reader = res.body.getReader();
  for (let r = await reader.read(); !r.done; r = await reader.read()) events.push(decoder.decode(r.value, { stream: true }));
  return { status: 200, ms: performance.now() - t0, ttftMs: events.ttftMs, tokens: events.tokens, retryAfter: null };
}

/** keep-alive connections for the node:http client, as many as requests at once (the flood) */
const agent = new Agent({ keepAlive: true, maxSockets: Math.max(flood, ...clientCounts) });

/** one streamed completion with node:http; resolves when the stream ends */
function completeHttp(seed: number): Promise<Outcome> {
  const t0 = performance.now();
  const json = body(seed);
  return new Promise<Outcome>((resolve, reject) => {
    const req = httpRequest(
      url,
      { method: "POST", agent, headers: { "content-type": "application/json", "content-length": Buffer.byteLength(json) } },
      (res) => {
        res.setEncoding("utf8");
        const events = new EventReader(t0);
        if (res.statusCode === 200) res.on("data", (text: string) => events.push(text));
        else res.resume();
        res.on("error", reject);
        res.on("end", () => {
          const ok = res.statusCode === 200;
          const retryAfter = res.headers["retry-after"];
          resolve({
            status: res.statusCode ?? 0,
            ms: performance.now() - t0,
            ttftMs: ok ? events.ttftMs : Number.NaN,
            tokens: ok ? events.tokens : 0,
            retryAfter: typeof retryAfter === "string" ? retryAfter : null,
          });
        });
      },
    );
    req.on("error", reject);
    req.end(json);
  });
}

const complete = client === "http" ? completeHttp : completeFetch;

const quantile = (xs: number[], q: number) => {
  const v = xs.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  return v.length === 0 ? Number.NaN : (v[Math.min(v.length - 1, Math.floor(q * v.length))] as number);
};

// warm-up, unmeasured: a round of every client count (wasm compile and tier-up, buffers, connections)
for (const clients of clientCounts) await Promise.all(Array.from({ length: clients }, (_, k) => complete(1000 * k + 999)));

const rows: Record<string, number>[] = [];
for (let turn = 1; turn <= repeat; turn++)
  for (const clients of clientCounts) {
    const outcomes: Outcome[] = [];
    const c0 = process.cpuUsage();
    const elu0 = eventLoopUtilization();
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: clients }, async (_, k) => {
        for (let i = 0; i < requestsPerClient; i++) outcomes.push(await complete(1000 * k + i));
      }),
    );
    const wall = (performance.now() - t0) / 1000;
    const c = process.cpuUsage(c0);
    const httpBusy = eventLoopUtilization(elu0).utilization;
    const cpu = (c.user + c.system) / 1e6;
    const ok = outcomes.filter((o) => o.status === 200);
    const generated = ok.reduce((s, o) => s + o.tokens, 0);
    const latencies = ok.map((o) => o.ms);
    const firstTokens = ok.map((o) => o.ttftMs);
    rows.push({
      turn,
      clients,
      requests: outcomes.length,
      failed: outcomes.length - ok.length,
      requests_per_s: ok.length / wall,
      tokens_per_s: generated / wall,
      tokens_per_cpu_s: generated / cpu,
      http_thread_busy: httpBusy,
      latency_p50_ms: quantile(latencies, 0.5),
      latency_p99_ms: quantile(latencies, 0.99),
      ttft_p50_ms: quantile(firstTokens, 0.5),
      ttft_p99_ms: quantile(firstTokens, 0.99),
    });
  }

// past the queue: each request gets 200 or a clean 429
const flooded = await Promise.all(Array.from({ length: flood }, (_, i) => complete(i)));
const status = new Map<number, number>();
for (const o of flooded) status.set(o.status, (status.get(o.status) ?? 0) + 1);
const clean429 = flooded.filter((o) => o.status === 429).every((o) => o.retryAfter !== null);
await server.close();
agent.destroy();
rmSync(dir, { recursive: true, force: true });

const f = (x: number, d = 1) => (Number.isNaN(x) ? "-" : x.toFixed(d));
const generatedPerRequest = rows.reduce((s, r) => s + (r.tokens_per_s as number) / (r.requests_per_s as number), 0) / rows.length;
console.error(
  `serve-load: ${which} model, prompt ${promptTokens} tokens, max_tokens ${maxTokens} (${generatedPerRequest.toFixed(1)} generated a request), ${requestsPerClient} requests per client, ${threads} kernel thread(s), --max-batch ${maxBatch}, ${client} clients`,
);
console.error(
  `${repeat > 1 ? "turn  " : ""}clients  requests  failed  req/s   gen tok/s  latency p50/p99 ms  TTFT p50/p99 ms  tok/CPU-s  HTTP thread busy`,
);
for (const r of rows)
  console.error(
    `${repeat > 1 ? `${String(r.turn).padStart(4)}  ` : ""}${String(r.clients).padStart(7)}  ${String(r.requests).padStart(8)}  ${String(r.failed).padStart(6)}  ${f(r.requests_per_s as number, 2).padStart(5)}  ${f(r.tokens_per_s as number).padStart(9)}  ${`${f(r.latency_p50_ms as number, 0)}/${f(r.latency_p99_ms as number, 0)}`.padStart(18)}  ${`${f(r.ttft_p50_ms as number, 0)}/${f(r.ttft_p99_ms as number, 0)}`.padStart(15)}  ${f(r.tokens_per_cpu_s as number).padStart(9)}  ${`${f(100 * (r.http_thread_busy as number))}%`.padStart(16)}`,
  );
// each turn's ratio of the most clients over one client, side by side in time
const most = clientCounts[clientCounts.length - 1] as number;
const ratios: { turn: number; tokens: number; cpu: number }[] = [];
for (let turn = 1; turn <= repeat; turn++) {
  const one = rows.find((r) => r.turn === turn && r.clients === 1);
  const many = rows.find((r) => r.turn === turn && r.clients === most);
  if (one && many && most !== 1)
    ratios.push({
      turn,
      tokens: (many.tokens_per_s as number) / (one.tokens_per_s as number),
      cpu: (many.tokens_per_cpu_s as number) / (one.tokens_per_cpu_s as number),
    });
}
const middle = (xs: number[]) => {
  const v = [...xs].sort((a, b) => a - b);
  return v.length % 2 ? (v[(v.length - 1) / 2] as number) : ((v[v.length / 2 - 1] as number) + (v[v.length / 2] as number)) / 2;
};
if (ratios.length === 1)
  console.error(
    `${most} clients: ${f(ratios[0]?.tokens as number, 2)}x one client's generated tokens/s (${f(ratios[0]?.cpu as number, 2)}x its tokens per CPU-second)`,
  );
else if (ratios.length > 1)
  console.error(
    `${most} clients over one client's generated tokens/s, turn by turn: ${ratios.map((r) => `${f(r.tokens, 2)}x`).join(", ")}; median ${f(middle(ratios.map((r) => r.tokens)), 2)}x (tokens per CPU-second: median ${f(middle(ratios.map((r) => r.cpu)), 2)}x)`,
  );
console.error(
  `flood of ${flood} at once (--max-batch ${maxBatch} + --max-queue ${maxQueue}): ${[...status].map(([s, n]) => `${n} x ${s}`).join(", ")}${clean429 ? "" : " (a 429 without Retry-After!)"}`,
);
console.log(
  JSON.stringify({
    model: which,
    prompt_tokens: promptTokens,
    max_tokens: maxTokens,
    threads,
    client,
    repeat,
    max_batch: maxBatch,
    max_queue: maxQueue,
    rows,
    ratios,
    flood: { requests: flood, status: Object.fromEntries(status), clean_429: clean429 },
  }),
);
