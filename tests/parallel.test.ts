// Data-parallel training (src/train/parallel.ts) against one thread: the same micro-batch through
// DataParallel (the batch's rows split over 2 and 3 threads, replicas in worker threads on the same
// parameter storage) must give the one-thread loss and gradients within fp32 tolerance, with
// ignored targets (-1), a part of the batch without any target, odd row counts and gradient
// accumulation; dropout must be deterministic per seed; a shared heap must hand out disjoint blocks.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { useBackend } from "../src/kernels/index.js";
import type { WasmBackend } from "../src/kernels/wasm/loader.js";
import { PEER_BYTES, PeerLink } from "../src/kernels/wasm/peer.js";
import { makeConfig } from "../src/nn/config.js";
import { GPT } from "../src/nn/gpt.js";
import { Rng } from "../src/random.js";
import { heap, WasmHeap } from "../src/tensor/memory.js";
import { scope, Tensor } from "../src/tensor/tensor.js";
import { DataParallel } from "../src/train/parallel.js";

const T = 16;
const config = makeConfig({ vocabSize: 37, nLayer: 2, nHead: 3, nEmbd: 24, blockSize: T, dropout: 0 });
let be: WasmBackend;

before(async () => {
  be = (await useBackend("wasm", { threads: 3 })) as WasmBackend;
});
after(() => be.dispose());

function batch(rng: Rng, B: number, masked: (i: number) => boolean): [Tensor, Tensor] {
  const x = Int32Array.from({ length: B * T }, () => Math.floor(rng.random() * config.vocabSize));
  const y = Int32Array.from({ length: B * T }, (_, i) => (masked(i) ? -1 : Math.floor(rng.random() * config.vocabSize)));
  return [Tensor.ints(x, [B, T]), Tensor.ints(y, [B, T])];
}

function grads(model: GPT): Map<string, Float32Array> {
  return new Map([...model.params].map(([n, t]) => [n, Float32Array.from((t.grad as Tensor).data)]));
}

/** max |a - b| over every parameter's gradient, relative to the largest gradient entry */
function worstRelative(a: Map<string, Float32Array>, b: Map<string, Float32Array>): { diff: number; scale: number } {
  let diff = 0;
  let scale = 0;
  for (const [n, ga] of a) {
    const gb = b.get(n) as Float32Array;
    for (let i = 0; i < ga.length; i++) {
      diff = Math.max(diff, Math.abs((ga[i] as number) - (gb[i] as number)));
      scale = Math.max(scale, Math.abs(ga[i] as number));
    }
  }
  return { diff, scale };
}

test("a second heap on the same memory hands out blocks disjoint from the first", () => {
  const a = new WasmHeap(1 << 20);
  const b = new WasmHeap(0, a.memory);
  const blocks: [number, number][] = [];
  for (let i = 0; i < 200; i++) {
    const bytes = 64 + ((i * 7919) % 5000);
    blocks.push([(i % 2 ? a : b).alloc(bytes), bytes]);
  }
  blocks.sort((p, q) => p[0] - q[0]);
  for (let i = 1; i < blocks.length; i++) {
    const [p0, n0] = blocks[i - 1] as [number, number];
    assert.ok((blocks[i] as [number, number])[0] >= p0 + n0, "overlapping blocks");
  }
  assert.ok(a.memory.buffer.byteLength >= (blocks.at(-1) as [number, number])[0]);
  assert.throws(() => new WasmHeap(0, new WebAssembly.Memory({ initial: 17, maximum: 100, shared: true })), /no heap/);
});

test("data-parallel forward/backward equals one thread: 2 and 3 threads, masks, odd rows, accumulation", async () => {
  const model = new GPT(config, 7);
  const rng = new Rng(11);
  const cases: [string, number, (i: number) => boolean][] = [
    ["6 rows", 6, () => false],
    ["7 rows, every 5th target ignored", 7, (i) => i % 5 === 0],
    ["5 rows, the last 2 rows without targets", 5, (i) => i >= 3 * T],
    ["1 row", 1, () => false],
  ];
  for (const threads of [2, 3]) {
    const dp = await DataParallel.create(model, threads);
    assert.ok(dp, "DataParallel on the wasm backend in Node");
    assert.equal(dp.threads, threads);
    try {
      for (const [what, B, masked] of cases) {
        const [x, y] = batch(rng, B, masked);
        const [x2, y2] = batch(rng, B, masked);
        // one thread: two micro-batches, each scaled 1/2 (gradient accumulation)
        model.zeroGrad();
        let want = 0;
        be.useThreads(1);
        for (const [xs, ys] of [
          [x, y],
          [x2, y2],
        ] as const) {
          scope(() => {
            const l = model.forward(xs, { targets: ys }).loss as Tensor;
            l.backward(Float32Array.of(0.5));
            want += l.item() / 2;
          });
        }
        be.useThreads(3);
        const g1 = grads(model);
        model.zeroGrad();
        const got = dp.forwardBackward(x, y, 0.5) / 2 + dp.forwardBackward(x2, y2, 0.5) / 2;
        const g2 = grads(model);
        const { diff, scale } = worstRelative(g1, g2);
        const label = `${threads} threads, ${what}`;
        assert.ok(Math.abs(got - want) <= 1e-5 * Math.abs(want), `${label}: loss ${got} vs ${want}`);
        assert.ok(diff <= 1e-5 * scale, `${label}: max |grad diff| ${diff.toExponential(2)} of max |grad| ${scale.toExponential(2)}`);
        console.log(
          `# ${label}: loss diff ${Math.abs(got - want).toExponential(2)}, max grad diff ${diff.toExponential(2)} (max grad ${scale.toExponential(2)})`,
        );
      }
    } finally {
      dp.dispose();
    }
  }
});

test("data-parallel dropout: the same dropout PRNG state gives the same loss and gradients", async () => {
  const model = new GPT({ ...config, dropout: 0.2 }, 3);
  const dp = await DataParallel.create(model, 2);
  assert.ok(dp);
  try {
    const [x, y] = batch(new Rng(5), 6, () => false);
    const run = (seed: number) => {
      model.zeroGrad();
      const loss = dp.forwardBackward(x, y, 1, new Rng(seed));
      return { loss, g: grads(model) };
    };
    const a = run(1);
    const b = run(1);
    const c = run(2);
    assert.equal(a.loss, b.loss);
    assert.equal(worstRelative(a.g, b.g).diff, 0);
    assert.notEqual(a.loss, c.loss, "another dropout seed gives other masks");
  } finally {
    dp.dispose();
  }
  // without worker threads to split over there is no DataParallel
  assert.equal(await DataParallel.create(model, 1), null);
  assert.ok(heap().stats().liveBytes > 0);
});

test("two threads sharing work (the one that finishes first does halves of the other's kernel calls) give bit-identical gradients", async () => {
  // big enough for matmuls to be offered (>= 4 MFLOP); 3 rows: this thread has 2, the replica 1, so
  // the replica waits for this thread and takes work from it
  const big = makeConfig({ vocabSize: 37, nLayer: 2, nHead: 4, nEmbd: 128, blockSize: 64, dropout: 0 });
  const model = new GPT(big, 5);
  const rng = new Rng(9);
  const x = Tensor.ints(
    Int32Array.from({ length: 3 * 64 }, () => Math.floor(rng.random() * 37)),
    [3, 64],
  );
  const y = Tensor.ints(
    Int32Array.from({ length: 3 * 64 }, () => Math.floor(rng.random() * 37)),
    [3, 64],
  );
  const plain = await DataParallel.create(model, 2, { shareWork: false });
  const sharing = await DataParallel.create(model, 2);
  assert.ok(plain && sharing);
  try {
    model.zeroGrad();
    const want = plain.forwardBackward(x, y, 1);
    const g1 = grads(model);
    assert.deepEqual(plain.shared, { helped: 0, taken: 0 });
    // whether the replica takes a half depends on timing: try until it did (the result may not vary)
    for (let i = 0; i < 20 && (i < 3 || sharing.shared.taken === 0); i++) {
      model.zeroGrad();
      const got = sharing.forwardBackward(x, y, 1);
      assert.equal(got, want, "loss");
      const g2 = grads(model);
      for (const [n, a] of g1) assert.deepEqual(g2.get(n), a, `gradient of ${n}`);
    }
    console.log(`# sharing: ${JSON.stringify(sharing.shared)} (halves this thread did for the replica, the replica for this thread)`);
    assert.ok(sharing.shared.taken > 0, "the replica never took a kernel-call half while it waited");
  } finally {
    plain.dispose();
    sharing.dispose();
  }
});

test("offered kernel halves that the other thread does not take are done by the offering thread, same result", () => {
  // a link whose other side says it is idle (i32[8], see peer.ts) but never takes anything: every
  // offer falls back to the offering thread, which then does both halves with its own scratch
  const big = makeConfig({ vocabSize: 37, nLayer: 2, nHead: 4, nEmbd: 128, blockSize: 64, dropout: 0 });
  const model = new GPT(big, 6);
  const rng = new Rng(4);
  const [x, y] = [0, 1].map(() =>
    Tensor.ints(
      Int32Array.from({ length: 4 * 64 }, () => Math.floor(rng.random() * 37)),
      [4, 64],
    ),
  );
  const run = (link: PeerLink | null) => {
    model.zeroGrad();
    be.useThreads(1);
    be.setPeer(link);
    try {
      return scope(() => {
        const l = model.forward(x as Tensor, { targets: y as Tensor }).loss as Tensor;
        l.backward();
        return { loss: l.item(), g: grads(model) };
      });
    } finally {
      be.setPeer(null);
      be.useThreads(3);
    }
  };
  const want = run(null);
  const buffer = new SharedArrayBuffer(PEER_BYTES);
  new Int32Array(buffer)[8] = 1;
  const link = new PeerLink(buffer, 0);
  const got = run(link);
  assert.ok(link.offered > 0, "nothing was offered");
  assert.equal(link.taken, 0);
  assert.equal(got.loss, want.loss);
  for (const [n, a] of want.g) assert.deepEqual(got.g.get(n), a, `gradient of ${n}`);
});

test("a kernel half that fails while its other half is on offer: the offer is withdrawn and the error surfaces", () => {
  const buffer = new SharedArrayBuffer(PEER_BYTES);
  new Int32Array(buffer)[8] = 1; // the other side says it is idle but never takes anything
  const link = new PeerLink(buffer, 0);
  const ran: number[] = [];
  const run = (a: number[]) => {
    if (a[0] === 1) throw new Error("half 1 failed");
    ran.push(a[0] as number);
  };
  assert.throws(() => link.share(0, [1], [2], run), /half 1 failed/);
  assert.deepEqual(ran, [], "the offered half is not run after the first failed");
  link.share(0, [3], [4], run);
  assert.deepEqual(ran, [3, 4], "the next offer, not taken, is done by the offering side");
  assert.equal(link.offered, 2);
  assert.equal(link.taken, 0);
});

test("shards make the gradients independent of the threads: 4 shards on 1, 2 and 3 threads give the same bits", async () => {
  // big enough that one thread splits its matmuls over the kernel pool (1 thread here means no
  // replicas, kernels on the pool's 3 threads): a kernel split must give one call's bits too
  const big = makeConfig({ vocabSize: 37, nLayer: 2, nHead: 4, nEmbd: 64, blockSize: 32, dropout: 0.1 });
  const model = new GPT(big, 8);
  const rng = new Rng(12);
  const micro = [0, 1].map(() => {
    const x = Int32Array.from({ length: 8 * 32 }, () => Math.floor(rng.random() * 37));
    // the third shard (rows 4, 5) has no target at all: it adds nothing, wherever it would run
    const y = Int32Array.from({ length: 8 * 32 }, (_, i) => (i >= 4 * 32 && i < 6 * 32 ? -1 : Math.floor(rng.random() * 37)));
    return [Tensor.ints(x, [8, 32]), Tensor.ints(y, [8, 32])] as const;
  });
  let want: { loss: number; g: Map<string, Float32Array> } | null = null;
  for (const threads of [1, 2, 3]) {
    const dp = await DataParallel.create(model, threads, { shards: 4 });
    assert.ok(dp);
    assert.equal(dp.threads, threads);
    try {
      // a step of two micro-batches: the first writes the zeroed gradients, the second adds
      model.zeroGrad();
      const dropout = new Rng(77);
      const loss = micro.reduce((sum, [x, y], i) => sum + dp.forwardBackward(x, y, 0.5, dropout, i === 0) / 2, 0);
      const got = { loss, g: grads(model) };
      if (!want) want = got;
      assert.equal(got.loss, want.loss, `${threads} threads: loss`);
      for (const [n, a] of want.g) assert.deepEqual(got.g.get(n), a, `${threads} threads: gradient of ${n}`);
    } finally {
      dp.dispose();
    }
  }
});

test("a matmul split over 3 threads gives one thread's bits, also when the rows do not divide evenly", () => {
  // 25 rows over 3 threads: pieces of 12, 12 and 1 rows once; a piece of < 4 rows sums in another order
  const rng = new Rng(3);
  const [M, K, N] = [25, 200, 200];
  const a = Tensor.fromArray(
    Float32Array.from({ length: M * K }, () => rng.normal()),
    [M, K],
  );
  const b = Tensor.fromArray(
    Float32Array.from({ length: K * N }, () => rng.normal()),
    [K, N],
  );
  const out = Tensor.zeros([M, N]);
  const product = (threads: number) => {
    be.useThreads(threads);
    be.matmul(out.data, a.data, b.data, M, K, N, false);
    return Float32Array.from(out.data);
  };
  const one = product(1);
  assert.deepEqual(product(3), one);
  be.useThreads(3);
  for (const t of [a, b, out]) t.dispose();
});
