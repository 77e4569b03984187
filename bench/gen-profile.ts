// Where a generated token's time goes: every backend call timed (per kernel and shape),
// KVCache.appendView (the model's step) timed as a whole, the rest (sampling, the generator) by difference. Prints a table per token.
//
//   node --import tsx bench/gen-profile.ts --part gen-cache|gen-kv [--threads N] [--tokens T]

import { KVCache } from "../src/generate/kvcache.js";
import { backend, GPT, generateTokens, makeConfig, useBackend } from "../src/index.js";
import { arg, expectArgs } from "./args.js";
import { timeBackendCalls } from "./backend-calls.js";
import { BIGGER_SHAPE, GPT2_SHAPE } from "./shapes.js";

expectArgs("bench/gen-profile.ts", ["part", "threads", "tokens"]);

const part = arg("part", "gen-kv");
const threads = Number(arg("threads", "1"));
const big = BIGGER_SHAPE;
const gpt2 = GPT2_SHAPE;
const shape = part === "gen-kv" ? gpt2 : big;
const tokens = Number(arg("tokens", part === "gen-kv" ? "100" : "250"));
const prompt = part === "gen-kv" ? [50256] : [0];

await useBackend("wasm", { threads });
const model = new GPT(makeConfig({ ...shape, dropout: 0 }), 1337);
const be = backend() as unknown as Record<string, unknown>;
const times = new Map<string, { ms: number; n: number }>();
let on = false;
timeBackendCalls(
  () => on,
  (name, args, dt) => {
    const nums = args.filter((a) => typeof a === "number");
    // attention: the position varies per token, so leave it out of the key (attentionRows has it in its rows)
    const shown = name === "attentionCached" ? [nums[0], nums[2], nums[3]] : nums;
    const key = `${name}(${shown.join(",")})`;
    if (inAppend) kernelsInAppend += dt;
    const e = times.get(key) ?? { ms: 0, n: 0 };
    e.ms += dt;
    e.n++;
    times.set(key, e);
  },
);
let appendMs = 0;
let inAppend = false;
let kernelsInAppend = 0;
const append = KVCache.prototype.appendView;
KVCache.prototype.appendView = function (ids) {
  const t0 = performance.now();
  inAppend = true;
  const r = append.call(this, ids);
  inAppend = false;
  if (on) appendMs += performance.now() - t0;
  return r;
};
const run = (n: number) => {
  for (const _ of generateTokens(model, prompt, { maxNewTokens: n, temperature: 0.8, seed: 7 }));
};
run(10);
on = true;
const t0 = performance.now();
run(tokens);
const total = performance.now() - t0;
const per = (ms: number) => (ms / tokens).toFixed(3);
let kernels = 0;
const rows = [...times.entries()].sort((a, b) => b[1].ms - a[1].ms);
for (const [, v] of rows) kernels += v.ms;
console.log(`${part} threads ${threads}: ${tokens} tokens, ${per(total)} ms/token (${((tokens * 1000) / total).toFixed(1)} tokens/s)`);
console.log(
  `  model step (KVCache.appendView) ${per(appendMs)} ms/token: kernels ${per(kernelsInAppend)}, JS ${per(appendMs - kernelsInAppend)}; ` +
    `sampling and the generator ${per(total - appendMs)} ms/token, of which kernels ${per(kernels - kernelsInAppend)}`,
);
console.log(`  backend stats ${JSON.stringify((be as { stats?: unknown }).stats)}`);
for (const [k, v] of rows.slice(0, 25))
  console.log(
    `  ${per(v.ms).padStart(8)} ms/token  ${(v.n / tokens).toFixed(1).padStart(5)} calls  ${((1000 * v.ms) / v.n).toFixed(1).padStart(8)} us/call  ${k}`,
  );
(backend() as { dispose?: () => void }).dispose?.();
process.exit(0);
