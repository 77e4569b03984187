// The one shared-memory protocol (src/threads/control.ts) and its users' error paths: a control
// block's layout and messages, a waiter that may not block giving up, and a kernel that fails in a
// pool helper thread (src/kernels/wasm/pool-worker.ts) reaching the caller with its message.
import assert from "node:assert/strict";
import { test } from "node:test";
import { WorkerPool } from "../src/kernels/wasm/pool.js";
import { compile } from "../src/kernels/wasm/runtime.js";
import { heap } from "../src/tensor/memory.js";
import { ControlBlock, controlBytes, Field, HEADER_BYTES, Waiter } from "../src/threads/control.js";

test("control blocks: block b's field f is i32[b·8 + f]; a task's failure carries its message, cut to the text's bytes", () => {
  const shape = { args: 4, text: 16 };
  const { buffer, blocks } = ControlBlock.create(shape, 2);
  assert.equal(buffer.byteLength, controlBytes(shape, 2));
  assert.equal(HEADER_BYTES, 32);
  const [caller, other] = blocks as [ControlBlock, ControlBlock];
  const worker = new ControlBlock(buffer, 0, 2, shape);
  const i32 = new Int32Array(buffer);
  other.set(Field.idle, 1);
  assert.equal(i32[8 + Field.idle], 1);

  caller.args.set([1, 2, 3, 4]);
  caller.post(7, 4);
  assert.equal(caller.finished(), false);
  const waiter = new Waiter();
  assert.equal(worker.next(waiter), 7);
  assert.equal(worker.field(Field.count), 4);
  assert.deepEqual([...worker.args], [1, 2, 3, 4]);
  assert.equal(other.args[0], 0, "blocks have their own arguments");
  worker.finish(new Error("kernel trapped: ünïcode and more than sixteen bytes"));
  assert.equal(caller.finished(), true);
  assert.equal(caller.await(waiter), "kernel trapped: ");

  caller.post(8);
  assert.equal(worker.posted(), true);
  assert.equal(worker.next(waiter), 8);
  worker.finish();
  assert.equal(caller.await(waiter), null, "a later task that succeeds does not report the earlier failure");
});

test("a waiter that may not block (a browser page's main thread) gives up after its stall limit with its message", () => {
  const { blocks } = ControlBlock.create({ args: 0, text: 0 });
  const block = blocks[0] as ControlBlock;
  block.post(1);
  const waiter = new Waiter({ noBlock: { stallMs: 20, stalled: (ms) => `nothing after ${ms > 20 ? "the limit" : ms}` } });
  assert.throws(() => block.await(waiter), /nothing after the limit/);
});

test("a kernel that fails in a pool worker: the caller's error carries the worker's message; the pool keeps working", async () => {
  const memory = heap().memory;
  const pool = await WorkerPool.create(1, await compile("plain"), memory, ["zero"]);
  try {
    const x = heap().alloc(64);
    const beyond = memory.buffer.byteLength;
    let local = 0;
    assert.throws(
      () =>
        pool.run(
          "zero",
          [
            [x, 16],
            [beyond, 1 << 20],
          ],
          () => {
            local++;
          },
        ),
      /wasm pool: kernel zero failed in a worker: .*memory access out of bounds/,
    );
    assert.equal(local, 1, "the calling thread did its part");
    new Float32Array(memory.buffer, x, 16).fill(1);
    pool.run(
      "zero",
      [
        [x, 8],
        [x + 32, 8],
      ],
      () => {},
    );
    assert.deepEqual([...new Float32Array(memory.buffer, x, 16)], [...Array(8).fill(1), ...Array(8).fill(0)], "the worker zeroed its half");
    heap().release(x, 64);
  } finally {
    pool.dispose();
  }
});
