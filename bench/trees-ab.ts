// Two source trees of minigpt (e.g. a `git archive` of main before a change, and the working tree) in
// ONE process, each with its own modules, wasm memory and backend (1 thread), timed in alternating
// blocks: a training step of nanoGPT's CPU recipe (forward, backward, AdamW on a fixed batch) and 64
// one-token decode steps of the bigger recipe's model. CPU time per block (process.cpuUsage), so a
// busy machine's time slicing counts less than in wall time; medians over the rounds, B/A printed.
//
//   node --import tsx bench/trees-ab.ts DIR_A DIR_B [ROUNDS]
//   (make A with: git archive <commit> | tar -x -C /tmp/a; ln -s $PWD/node_modules /tmp/a/; build its wasm)
import { loadavg } from "node:os";
import { median } from "./stats.js";

const [dirA, dirB, roundsArg] = process.argv.slice(2);
if (!dirA || !dirB) throw new Error("usage: bench/trees-ab.ts DIR_A DIR_B [ROUNDS]");
const rounds = Number(roundsArg ?? 11);

interface Side {
  trainStep(): void;
  decode(): void;
}

// biome-ignore lint/suspicious/noExplicitAny: each tree's own modules, imported by path
type Any = any;

async function setup(root: string): Promise<Side> {
  const lib: Any = await import(`${root}/src/index.ts`);
  const { KVCache }: Any = await import(`${root}/src/generate/kvcache.ts`);
  const { Tensor, scope }: Any = await import(`${root}/src/tensor/tensor.ts`);
  await lib.useBackend("wasm", { threads: 1 });
  const small = new lib.GPT(lib.makeConfig({ vocabSize: 65, nLayer: 4, nHead: 4, nEmbd: 128, blockSize: 64, dropout: 0 }), 1);
  const opt = new lib.AdamW(small.params, { lr: 1e-3 });
  const [B, T] = [12, 64];
  const ids = Array.from({ length: B * T }, (_, i) => (i * 7 + 3) % 65);
  const targets = Array.from({ length: B * T }, (_, i) => (i * 11 + 5) % 65);
  const big = new lib.GPT(lib.makeConfig({ vocabSize: 65, nLayer: 6, nHead: 6, nEmbd: 384, blockSize: 256, dropout: 0 }), 1);
  return {
    trainStep: () =>
      scope(() => {
        const { loss } = small.forward(Tensor.ints(ids, [B, T]), { targets: Tensor.ints(targets, [B, T]) });
        loss.backward();
        opt.update(1e-3);
        small.zeroGrad();
      }),
    decode: () => {
      const cache = new KVCache(big);
      for (let i = 0; i < 64; i++) cache.appendView([(i * 13) % 65]);
      cache.dispose();
    },
  };
}

const sides = { A: await setup(dirA), B: await setup(dirB) };
const parts: [string, (s: Side) => void, number][] = [
  ["train-small step", (s) => s.trainStep(), 8],
  ["decode big (64 tokens)", (s) => s.decode(), 1],
];
const times = new Map(parts.map(([name]) => [name, { A: [] as number[], B: [] as number[] }]));
for (const [, f] of parts) for (const s of Object.values(sides)) f(s);
for (let r = 0; r < rounds; r++) {
  for (const [name, f, reps] of parts) {
    for (const side of r % 2 ? (["B", "A"] as const) : (["A", "B"] as const)) {
      const c0 = process.cpuUsage();
      for (let i = 0; i < reps; i++) f(sides[side]);
      const c = process.cpuUsage(c0);
      times.get(name)?.[side].push((c.user + c.system) / 1000 / reps);
    }
  }
}
for (const [name, t] of times) {
  const [a, b] = [median(t.A), median(t.B)];
  console.log(`${name}: A ${a.toFixed(2)} ms CPU, B ${b.toFixed(2)} ms CPU, B/A ${(b / a).toFixed(3)} (medians of ${rounds})`);
}
console.log(
  `load ${loadavg()
    .map((x) => x.toFixed(1))
    .join(" ")}`,
);
