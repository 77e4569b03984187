import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { writeFileAtomic } from "../src/io/atomic.js";
import { readSafetensors, type SafeTensor, type TensorToWrite, toInt32, writeSafetensors } from "../src/io/safetensors.js";
import { readSafetensorsFile, writeSafetensorsFile } from "../src/io/safetensors-file.js";
import { throwsUser } from "./helpers.js";

const FIXTURES = "tests/fixtures/gpt-tiny";
const tmp = mkdtempSync(join(tmpdir(), "minigpt-st-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** Build a file by hand: 8-byte length, the header text exactly as given, then the data bytes. */
function rawFile(header: string, data: Uint8Array = new Uint8Array(0)): Uint8Array {
  const h = new TextEncoder().encode(header);
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(h.length), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

function asWritable(file: ReturnType<typeof readSafetensors>): TensorToWrite[] {
  return [...file.tensors].map(([name, t]) => ({ name, dtype: t.dtype as "F32" | "I32" | "I64", shape: t.shape, data: t.data }));
}

describe("reading the PyTorch fixtures", () => {
  test("model.safetensors: names, shapes, metadata, values", () => {
    const { tensors, metadata } = readSafetensorsFile(join(FIXTURES, "model.safetensors"));
    assert.deepEqual(metadata, { format: "pt" });
    assert.equal(tensors.size, 28); // 2 embeddings + 2 layers x 12 + final LayerNorm (2)
    const wte = tensors.get("transformer.wte.weight");
    assert.ok(wte);
    assert.equal(wte.dtype, "F32");
    assert.deepEqual(wte.shape, [65, 32]);
    assert.ok(wte.data instanceof Float32Array);
    assert.equal(wte.data.length, 65 * 32);
    const cAttn = tensors.get("transformer.h.0.attn.c_attn.weight");
    assert.deepEqual(cAttn?.shape, [32, 96]); // Conv1D layout [in, out]
    // Values decoded independently with Python's struct.unpack('<f', ...) on the same bytes.
    assert.deepEqual([...wte.data.subarray(0, 3)], [-0.030511917546391487, -0.015004635788500309, -0.013079618103802204]);
    assert.equal(wte.data[wte.data.length - 1], -0.007750124204903841);
    const ln = tensors.get("transformer.ln_f.weight");
    assert.deepEqual([...(ln?.data ?? []).slice(0, 3)], [1.0497217178344727, 1.037013292312622, 0.910033643245697]);
  });

  test("batch.safetensors: int64 token ids convert to Int32Array in range", () => {
    const { tensors } = readSafetensorsFile(join(FIXTURES, "batch.safetensors"));
    const idx = tensors.get("idx");
    assert.ok(idx);
    assert.equal(idx.dtype, "I64");
    assert.deepEqual(idx.shape, [3, 16]);
    assert.ok(idx.data instanceof BigInt64Array);
    const ids = toInt32(idx, "idx");
    assert.equal(ids.length, 48);
    assert.ok(ids.every((v) => v >= 0 && v < 65));
  });

  for (const name of ["model", "batch", "expected"]) {
    test(`${name}.safetensors: write(read(file)) is byte-identical to PyTorch's file`, () => {
      const original = readFileSync(join(FIXTURES, `${name}.safetensors`));
      const file = readSafetensors(original, name);
      const meta = Object.keys(file.metadata).length > 0 ? file.metadata : undefined;
      const again = writeSafetensors(asWritable(file), meta);
      assert.equal(again.length, original.length);
      assert.ok(Buffer.from(again).equals(original), "bytes differ");
    });
  }
});

describe("writer", () => {
  test("matches the reference implementation's own serialization", () => {
    // The reference test: one F32 tensor "attn.0" of shape [1,2,3] holding 0..5. The 56-byte JSON is
    // already a multiple of 8, so no padding.
    const data = new Float32Array([0, 1, 2, 3, 4, 5]);
    const out = writeSafetensors([{ name: "attn.0", dtype: "F32", shape: [1, 2, 3], data }]);
    const expected = rawFile('{"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}}', new Uint8Array(data.buffer));
    assert.deepEqual(out, expected);
  });

  test("pads the header with spaces to a multiple of 8 bytes", () => {
    const data = new Float32Array([0, 1, 2, 3, 4, 5]);
    const out = writeSafetensors([{ name: "attn0", dtype: "F32", shape: [1, 1, 2, 3], data }]);
    const json = '{"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}}';
    assert.equal(json.length, 65);
    const expected = rawFile(json + " ".repeat(7), new Uint8Array(data.buffer));
    assert.deepEqual(out, expected);
    // Empty file with and without metadata.
    assert.deepEqual(writeSafetensors([]), rawFile("{}      "));
    assert.deepEqual(writeSafetensors([], { framework: "pt" }), rawFile('{"__metadata__":{"framework":"pt"}}     '));
  });

  test("orders tensors like the reference: wider dtypes first, then by name", () => {
    const out = writeSafetensors([
      { name: "b", dtype: "F32", shape: [1], data: new Float32Array([1]) },
      { name: "a", dtype: "I32", shape: [1], data: new Int32Array([2]) },
      { name: "c", dtype: "I64", shape: [1], data: new BigInt64Array([3n]) },
      { name: "a2", dtype: "F32", shape: [1], data: new Float32Array([4]) },
    ]);
    const headerLen = Number(new DataView(out.buffer).getBigUint64(0, true));
    const header = new TextDecoder().decode(out.subarray(8, 8 + headerLen));
    assert.deepEqual(Object.keys(JSON.parse(header)), ["c", "a2", "b", "a"]);
    const back = readSafetensors(out, "mixed");
    assert.deepEqual([...back.tensors.keys()], ["c", "a2", "b", "a"]);
  });

  test("round-trips every writable dtype, scalars, empty tensors and metadata", () => {
    const tensors: TensorToWrite[] = [
      { name: "w", dtype: "F32", shape: [2, 3], data: new Float32Array([0.5, -1.25, 3e-8, -0, 1e30, 7]) },
      { name: "ids", dtype: "I32", shape: [4], data: new Int32Array([0, -1, 2147483647, -2147483648]) },
      { name: "big", dtype: "I64", shape: [2], data: new BigInt64Array([-(2n ** 62n), 5n]) },
      { name: "widened", dtype: "I64", shape: [3], data: new Int32Array([1, -2, 3]) },
      { name: "scalar", dtype: "F32", shape: [], data: new Float32Array([42]) },
      { name: "empty", dtype: "F32", shape: [0, 4], data: new Float32Array(0) },
    ];
    const meta = { step: "100", note: 'héllo "quoted"' };
    const { tensors: back, metadata } = readSafetensors(writeSafetensors(tensors, meta), "roundtrip");
    assert.deepEqual(metadata, meta);
    for (const t of tensors) {
      const got = back.get(t.name) as SafeTensor;
      assert.equal(got.dtype, t.dtype, t.name);
      assert.deepEqual(got.shape, t.shape, t.name);
      if (t.name === "widened") assert.deepEqual(got.data, new BigInt64Array([1n, -2n, 3n]));
      else assert.deepEqual(got.data, t.data, t.name);
    }
  });

  test("rejects bad input with a message naming the tensor", () => {
    const f = new Float32Array(6);
    throwsUser(() => writeSafetensors([{ name: "w", dtype: "F32", shape: [2, 2], data: f }]), /"w"/, /4 elements/, /6/);
    throwsUser(() => writeSafetensors([{ name: "w", dtype: "I32", shape: [6], data: f }]), /"w"/, /does not match/);
    throwsUser(
      () =>
        writeSafetensors([
          { name: "w", dtype: "F32", shape: [6], data: f },
          { name: "w", dtype: "F32", shape: [6], data: f },
        ]),
      /"w"/,
      /twice/,
    );
    throwsUser(() => writeSafetensors([{ name: "__metadata__", dtype: "F32", shape: [6], data: f }]), /reserved/);
    throwsUser(() => writeSafetensors([{ name: "h", dtype: "BF16" as "F32", shape: [6], data: f }]), /"h"/, /BF16/);
    throwsUser(() => writeSafetensors([{ name: "q", dtype: "I8", shape: [6], data: new Uint8Array(6) }]), /"q"/, /does not match/);
  });

  test("I8, U8 and F16 (quantized weights and their scales) round-trip in the reference order", () => {
    const tensors: TensorToWrite[] = [
      { name: "s", dtype: "F16", shape: [3], data: new Float32Array([0.5, -2, 65504]) },
      { name: "q", dtype: "I8", shape: [2, 2], data: new Int8Array([-127, 0, 5, 127]) },
      { name: "p", dtype: "U8", shape: [3], data: new Uint8Array([0, 0x9e, 255]) },
    ];
    const bytes = writeSafetensors(tensors);
    const header = new TextDecoder().decode(bytes.subarray(8, 8 + Number(new DataView(bytes.buffer).getBigUint64(0, true))));
    // the reference writer orders by dtype alignment: F16 before I8 before U8
    assert.ok(header.indexOf('"s"') < header.indexOf('"q"') && header.indexOf('"q"') < header.indexOf('"p"'), header);
    const read = readSafetensors(bytes, "q.safetensors").tensors;
    assert.deepEqual([...(read.get("s")?.data ?? [])], [0.5, -2, 65504]);
    assert.ok(read.get("q")?.data instanceof Int8Array);
    assert.deepEqual([...(read.get("q")?.data ?? [])], [-127, 0, 5, 127]);
    assert.ok(read.get("p")?.data instanceof Uint8Array);
    assert.deepEqual([...(read.get("p")?.data ?? [])], [0, 0x9e, 255]);
  });
});

describe("F16 and BF16 are widened to float32 on read", () => {
  test("F16 values including subnormals, infinities and -0 (expected values from numpy)", () => {
    // numpy: np.array([1, -2.5, 65504, 6.1035156e-05, 5.96e-08, inf, -inf, 0.333, -0.0], np.float16)
    const bits = new Uint16Array([15360, 49408, 31743, 1024, 1, 31744, 64512, 13652, 32768]);
    const expected = [1, -2.5, 65504, 2 ** -14, 2 ** -24, Infinity, -Infinity, 0.3330078125, -0];
    const file = rawFile('{"h":{"dtype":"F16","shape":[9],"data_offsets":[0,18]}}', new Uint8Array(bits.buffer));
    const h = readSafetensors(file, "half.safetensors").tensors.get("h");
    assert.equal(h?.dtype, "F16");
    assert.ok(h?.data instanceof Float32Array);
    assert.deepEqual([...h.data], expected);
    assert.ok(Object.is(h.data[8], -0));
    const nan = rawFile('{"h":{"dtype":"F16","shape":[1],"data_offsets":[0,2]}}', new Uint8Array(new Uint16Array([0x7e00]).buffer));
    assert.ok(Number.isNaN(readSafetensors(nan, "nan").tensors.get("h")?.data[0]));
  });

  test("BF16 (expected values from numpy)", () => {
    const bits = new Uint16Array([16256, 49184, 16457, 29001, 36258]);
    // numpy prints 9.953037915854457e+29 and -9.98402083170343e-31 for the last two; written exactly:
    // 0x7149 = +(1 + 73/128) * 2^99, 0x8da2 = -(1 + 34/128) * 2^-100.
    const expected = [1, -2.5, 3.140625, (1 + 73 / 128) * 2 ** 99, -(1 + 34 / 128) * 2 ** -100];
    const file = rawFile('{"b":{"dtype":"BF16","shape":[5],"data_offsets":[0,10]}}', new Uint8Array(bits.buffer));
    const b = readSafetensors(file, "bf16.safetensors").tensors.get("b");
    assert.ok(b);
    assert.equal(b.dtype, "BF16");
    assert.deepEqual([...(b.data as Float32Array)], expected);
  });

  test("reads data at unaligned offsets (header not padded)", () => {
    // 7-byte-misaligned: header length is odd, so the F32 data does not start on a 4-byte boundary.
    const vals = new Float32Array([1.5, -2]);
    const file = rawFile('{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}} ', new Uint8Array(vals.buffer));
    assert.deepEqual(readSafetensors(file, "odd").tensors.get("x")?.data, vals);
  });
});

describe("toInt32", () => {
  test("passes I32 through, checks the I64 range, refuses floats", () => {
    const i32: SafeTensor = { dtype: "I32", shape: [2], data: new Int32Array([1, 2]) };
    assert.equal(toInt32(i32), i32.data);
    const ok: SafeTensor = { dtype: "I64", shape: [2], data: new BigInt64Array([-1n, 2147483647n]) };
    assert.deepEqual(toInt32(ok), new Int32Array([-1, 2147483647]));
    const big: SafeTensor = { dtype: "I64", shape: [2], data: new BigInt64Array([0n, 2147483648n]) };
    throwsUser(() => toInt32(big, "targets"), /targets/, /2147483648/, /index 1/);
    const f: SafeTensor = { dtype: "F32", shape: [1], data: new Float32Array([1]) };
    throwsUser(() => toInt32(f, "idx"), /idx/, /F32/);
  });
});

describe("corrupt and truncated files are MinigptErrors naming the file and tensor", () => {
  const good = readFileSync(join(FIXTURES, "batch.safetensors"));
  const goodLen = Number(good.readBigUInt64LE(0));
  const F = "bad.safetensors";
  const entry = (dtype: string, shape: string, offsets: string) => `{"dtype":"${dtype}","shape":${shape},"data_offsets":${offsets}}`;

  test("truncated anywhere", () => {
    throwsUser(() => readSafetensors(good.subarray(0, 5), F), /bad\.safetensors/, /truncated/);
    throwsUser(() => readSafetensors(good.subarray(0, 100), F), /bad\.safetensors/, /header length/, /truncated/);
    throwsUser(() => readSafetensors(good.subarray(0, good.length - 1), F), /bad\.safetensors/, /truncated/);
    throwsUser(() => readSafetensors(new Uint8Array(0), F), /bad\.safetensors/);
  });

  test("trailing bytes", () => {
    const longer = new Uint8Array(good.length + 4);
    longer.set(good);
    throwsUser(() => readSafetensors(longer, F), /bad\.safetensors/, /trailing/);
  });

  test("absurd header length", () => {
    const b = new Uint8Array(good);
    new DataView(b.buffer).setBigUint64(0, 2n ** 60n, true);
    throwsUser(() => readSafetensors(b, F), /bad\.safetensors/, /header length/);
  });

  test("header that is not JSON / not UTF-8 / not an object", () => {
    const b = new Uint8Array(good);
    b[8] = "x".charCodeAt(0); // breaks the JSON but keeps lengths
    throwsUser(() => readSafetensors(b, F), /bad\.safetensors/, /JSON/);
    const c = new Uint8Array(good);
    c[8 + 3] = 0xff;
    throwsUser(() => readSafetensors(c, F), /bad\.safetensors/, /UTF-8/);
    throwsUser(() => readSafetensors(rawFile("[1,2]   "), F), /not an object/);
    assert.ok(goodLen > 0);
  });

  test("missing or malformed dtype / shape / data_offsets", () => {
    const d = new Uint8Array(8);
    throwsUser(() => readSafetensors(rawFile('{"t":{"shape":[2],"data_offsets":[0,8]}}', d), F), /bad\.safetensors/, /"t"/, /dtype/);
    throwsUser(() => readSafetensors(rawFile('{"t":{"dtype":"F32","data_offsets":[0,8]}}', d), F), /"t"/, /shape/);
    throwsUser(() => readSafetensors(rawFile(`{"t":${entry("F32", "[2,-1]", "[0,8]")}}`, d), F), /"t"/, /shape/);
    throwsUser(() => readSafetensors(rawFile('{"t":{"dtype":"F32","shape":[2]}}', d), F), /"t"/, /data_offsets/);
    throwsUser(() => readSafetensors(rawFile(`{"t":${entry("F32", "[2]", "[8,0]")}}`, d), F), /"t"/, /end before start/);
    throwsUser(() => readSafetensors(rawFile('{"t":5}', d), F), /"t"/);
    throwsUser(() => readSafetensors(rawFile(`{"t":${entry("F64", "[1]", "[0,8]")}}`, d), F), /"t"/, /F64/, /convert/);
    throwsUser(() => readSafetensors(rawFile(`{"t":${entry("Q4", "[1]", "[0,8]")}}`, d), F), /"t"/, /unknown dtype/);
    throwsUser(() => readSafetensors(rawFile('{"__metadata__":{"a":1}}'), F), /__metadata__/, /"a"/);
  });

  test("gaps, overlaps and size mismatches", () => {
    const d16 = new Uint8Array(16);
    // Valid control case: two F32[2] tensors tiling 16 bytes (in reverse name order: sorting is by offset).
    const ok = `{"b":${entry("F32", "[2]", "[0,8]")},"a":${entry("F32", "[2]", "[8,16]")}}`;
    assert.deepEqual([...readSafetensors(rawFile(ok, d16), F).tensors.keys()], ["b", "a"]);
    const gap = `{"a":${entry("F32", "[2]", "[0,8]")},"b":${entry("F32", "[1]", "[12,16]")}}`;
    throwsUser(() => readSafetensors(rawFile(gap, d16), F), /bad\.safetensors/, /"b"/, /gap/);
    const overlap = `{"a":${entry("F32", "[3]", "[0,12]")},"b":${entry("F32", "[1]", "[8,12]")}}`;
    throwsUser(() => readSafetensors(rawFile(overlap, new Uint8Array(12)), F), /"b"/, /overlaps/);
    const notZero = `{"a":${entry("F32", "[2]", "[8,16]")}}`;
    throwsUser(() => readSafetensors(rawFile(notZero, d16), F), /"a"/, /starts at byte 8/);
    const wrongSize = `{"a":${entry("F32", "[3]", "[0,16]")}}`;
    throwsUser(() => readSafetensors(rawFile(wrongSize, d16), F), /"a"/, /12 bytes/, /16 bytes/);
    const i64 = `{"a":${entry("I64", "[3]", "[0,16]")}}`;
    throwsUser(() => readSafetensors(rawFile(i64, d16), F), /"a"/, /I64/);
  });

  test("missing file and folder", () => {
    throwsUser(() => readSafetensorsFile(join(tmp, "nope.safetensors")), /nope\.safetensors/, /does not exist/);
    throwsUser(() => readSafetensorsFile(tmp), /is a folder/);
  });
});

describe("writeFileAtomic", () => {
  test("writes, replaces, and leaves no temp files behind", () => {
    const p = join(tmp, "atomic.bin");
    writeFileAtomic(p, new Uint8Array([1, 2, 3]));
    assert.deepEqual(new Uint8Array(readFileSync(p)), new Uint8Array([1, 2, 3]));
    writeFileSync(p, "old contents that are longer");
    writeFileAtomic(p, "new");
    assert.equal(readFileSync(p, "utf8"), "new");
    assert.deepEqual(
      readdirSync(tmp).filter((f) => f.includes(".tmp-")),
      [],
    );
  });

  test("writeSafetensorsFile + readSafetensorsFile round-trip on disk", () => {
    const p = join(tmp, "w.safetensors");
    writeSafetensorsFile(p, [{ name: "x", dtype: "F32", shape: [2], data: new Float32Array([1, 2]) }], { k: "v" });
    const back = readSafetensorsFile(p);
    assert.deepEqual(back.metadata, { k: "v" });
    assert.deepEqual(back.tensors.get("x")?.data, new Float32Array([1, 2]));
  });

  test("missing folder and a folder as target are MinigptErrors", () => {
    throwsUser(() => writeFileAtomic(join(tmp, "no", "such", "dir", "f.bin"), "x"), /does not exist/, /create it/);
    throwsUser(() => writeFileAtomic(tmp, "x"), /cannot write/);
    assert.deepEqual(
      readdirSync(tmp).filter((f) => f.includes(".tmp-")),
      [],
    );
  });
});
