/**
 * The safetensors format (https://huggingface.co/docs/safetensors), read and written in plain TypeScript.
 *
 *   [8 bytes]  N, little-endian u64: length of the header
 *   [N bytes]  UTF-8 JSON: {"__metadata__": {str: str}?, "<name>": {"dtype", "shape", "data_offsets": [s, e]}, ...}
 *              (the reference writer pads it with spaces so N is a multiple of 8)
 *   [rest]     the tensors' bytes, little-endian, C order; offsets are relative to the start of this part
 *
 * Reading validates everything the reference implementation validates (and names the file and tensor
 * when something is wrong), so a truncated download fails here with a clear message instead of
 * producing garbage weights later.
 *
 * Bytes in, bytes out, no file system: the browser uses this module as it is. The file wrappers are
 * src/io/safetensors-file.ts.
 */
import { fail } from "../errors.js";

/**
 * Dtypes minigpt reads. F16/BF16 are widened to Float32Array on read; I64 stays a BigInt64Array; I8
 * and U8 (quantized weights, docs/quantization.md) stay Int8Array / Uint8Array.
 */
type SafetensorsDtype = "F32" | "F16" | "BF16" | "I64" | "I32" | "I8" | "U8";
/** Dtypes minigpt writes. F16 takes a Float32Array and rounds each value to the nearest half. */
type WritableDtype = "F32" | "I32" | "I64" | "F16" | "I8" | "U8";

export interface SafeTensor {
  /** The dtype stored in the file (F16/BF16 data has already been converted to float32). */
  dtype: SafetensorsDtype;
  shape: number[];
  data: Float32Array | Int32Array | BigInt64Array | Int8Array | Uint8Array;
}

export interface SafetensorsFile {
  /** Tensors in file order (sorted by data offset). */
  tensors: Map<string, SafeTensor>;
  /** The free-form `__metadata__` string map ({} when absent). */
  metadata: Record<string, string>;
}

export interface TensorToWrite {
  name: string;
  dtype: WritableDtype;
  shape: number[];
  /** F32, F16: Float32Array; I32: Int32Array; I64: BigInt64Array, or Int32Array (widened on write); I8: Int8Array; U8: Uint8Array. */
  data: Float32Array | Int32Array | BigInt64Array | Int8Array | Uint8Array;
}

const DTYPE_SIZE: Record<SafetensorsDtype, number> = { F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I8: 1, U8: 1 };

/** Every dtype the format defines, so an unsupported one gets a precise message rather than "unknown". */
const KNOWN_UNSUPPORTED = ["BOOL", "F8_E5M2", "F8_E4M3", "I16", "U16", "U32", "F64", "U64"];

/**
 * Rank of each dtype in the reference implementation's `Dtype` enum (increasing alignment). Its writer
 * orders tensors by descending rank, then by name; we do the same so files come out byte-identical.
 */
const DTYPE_RANK: Record<SafetensorsDtype, number> = { U8: 1, I8: 2, F16: 7, BF16: 8, I32: 9, F32: 11, I64: 13 };

/** The reference implementation refuses headers above 100 MB; so do we (a corrupt length is usually huge). */
const MAX_HEADER_BYTES = 100_000_000;

const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

export function readSafetensors(bytes: Uint8Array, fileLabel: string): SafetensorsFile {
  if (!LITTLE_ENDIAN_HOST) fail(`cannot read ${fileLabel}: safetensors data is little-endian and this machine is big-endian`);
  const where = `${fileLabel} is not a valid safetensors file`;
  if (bytes.length < 8) {
    fail(`${where}: it is ${bytes.length} bytes long, shorter than the 8-byte header length; the file is truncated or empty`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen64 = view.getBigUint64(0, true);
  if (headerLen64 > BigInt(MAX_HEADER_BYTES)) {
    fail(`${where}: its header length field says ${headerLen64} bytes (limit ${MAX_HEADER_BYTES}); the file is corrupt or not safetensors`);
  }
  const headerLen = Number(headerLen64);
  if (8 + headerLen > bytes.length) {
    fail(
      `${where}: its header length field says ${headerLen} bytes but only ${bytes.length - 8} follow; the file is truncated (re-download or re-save it)`,
    );
  }

  let headerText: string;
  try {
    headerText = new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(8, 8 + headerLen));
  } catch {
    fail(`${where}: its JSON header is not valid UTF-8; the file is corrupt`);
  }
  let header: unknown;
  try {
    header = JSON.parse(headerText);
  } catch (err) {
    fail(`${where}: its JSON header does not parse (${(err as Error).message}); the file is corrupt or truncated`);
  }
  if (typeof header !== "object" || header === null || Array.isArray(header)) {
    fail(`${where}: its header is JSON but not an object of tensors`);
  }

  const metadata: Record<string, string> = {};
  interface Entry {
    name: string;
    dtype: SafetensorsDtype;
    shape: number[];
    start: number;
    end: number;
  }
  const entries: Entry[] = [];
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === "__metadata__") {
      if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
        fail(`${where}: "__metadata__" must be an object of strings`);
      }
      for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
        if (typeof v !== "string") fail(`${where}: "__metadata__" key "${k}" has a ${typeof v} value; only strings are allowed`);
        metadata[k] = v;
      }
      continue;
    }
    const t = `${fileLabel}: tensor "${name}"`;
    if (typeof raw !== "object" || raw === null || Array.isArray(raw))
      fail(`${t} has no {dtype, shape, data_offsets} entry in the header; the file is corrupt`);
    const info = raw as Record<string, unknown>;
    const dtype = info.dtype;
    if (typeof dtype !== "string") fail(`${t} has no "dtype" in the header; the file is corrupt`);
    if (!(dtype in DTYPE_SIZE)) {
      if (KNOWN_UNSUPPORTED.includes(dtype)) {
        fail(
          `${t} has dtype ${dtype}, which minigpt does not read (it reads F32, F16, BF16, I32, I64, and I8/U8 in quantized models); convert it, e.g. in PyTorch with .float() or .long()`,
        );
      }
      fail(`${t} has unknown dtype "${dtype}"; the file is corrupt or from a newer safetensors version`);
    }
    const shape = info.shape;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && (d as number) >= 0)) {
      fail(`${t} has an invalid "shape" (${JSON.stringify(shape)}); it must be a list of non-negative integers`);
    }
    const offsets = info.data_offsets;
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && (o as number) >= 0)) {
      fail(`${t} has invalid "data_offsets" (${JSON.stringify(offsets)}); it must be [start, end] byte offsets`);
    }
    const [start, end] = offsets as [number, number];
    if (end < start) fail(`${t} has data_offsets [${start}, ${end}] with end before start; the file is corrupt`);
    entries.push({ name, dtype: dtype as SafetensorsDtype, shape: shape as number[], start, end });
  }

  // Offsets must tile the data section exactly: sorted by start, each begins where the previous ended.
  entries.sort((a, b) => a.start - b.start || a.end - b.end);
  const dataStart = 8 + headerLen;
  const dataLen = bytes.length - dataStart;
  let expectedStart = 0;
  let previous = "";
  for (const e of entries) {
    const t = `${fileLabel}: tensor "${e.name}"`;
    if (e.start !== expectedStart) {
      const after = previous ? `the previous tensor "${previous}" ends at ${expectedStart}` : "the data section starts at 0";
      const what = e.start > expectedStart ? "leaves a gap" : "overlaps";
      fail(`${t} starts at byte ${e.start} but ${after}, so it ${what}; the file is corrupt`);
    }
    const numel = e.shape.reduce((a, d) => a * d, 1);
    const nbytes = numel * DTYPE_SIZE[e.dtype];
    if (!Number.isSafeInteger(nbytes)) fail(`${t} has shape [${e.shape.join(", ")}], too large to be real; the file is corrupt`);
    if (e.end - e.start !== nbytes) {
      fail(
        `${t} has shape [${e.shape.join(", ")}] ${e.dtype} (${nbytes} bytes) but data_offsets [${e.start}, ${e.end}] span ${e.end - e.start} bytes; the file is corrupt`,
      );
    }
    expectedStart = e.end;
    previous = e.name;
  }
  if (expectedStart !== dataLen) {
    if (expectedStart > dataLen) {
      fail(
        `${where}: the header describes ${expectedStart} bytes of tensor data but only ${dataLen} are present; the file is truncated (re-download or re-save it)`,
      );
    }
    fail(
      `${where}: the header describes ${expectedStart} bytes of tensor data but ${dataLen} are present; the file has trailing bytes or is corrupt`,
    );
  }

  const tensors = new Map<string, SafeTensor>();
  for (const e of entries) {
    // Copy into a fresh, aligned ArrayBuffer: offsets inside the file need not be aligned. (Not
    // bytes.slice(): on a Node Buffer that returns a view, not a copy.)
    const raw = new Uint8Array(e.end - e.start);
    raw.set(bytes.subarray(dataStart + e.start, dataStart + e.end));
    let data: SafeTensor["data"];
    switch (e.dtype) {
      case "F32":
        data = new Float32Array(raw.buffer);
        break;
      case "I32":
        data = new Int32Array(raw.buffer);
        break;
      case "I64":
        data = new BigInt64Array(raw.buffer);
        break;
      case "F16":
        data = f16ToF32(new Uint16Array(raw.buffer));
        break;
      case "BF16":
        data = bf16ToF32(new Uint16Array(raw.buffer));
        break;
      case "I8":
        data = new Int8Array(raw.buffer);
        break;
      case "U8":
        data = raw;
        break;
    }
    tensors.set(e.name, { dtype: e.dtype, shape: e.shape, data });
  }
  return { tensors, metadata };
}

/** Serialize tensors the way the reference implementation (and so PyTorch's `save_file`) does. */
export function writeSafetensors(tensors: TensorToWrite[], metadata?: Record<string, string>): Uint8Array {
  const seen = new Set<string>();
  for (const t of tensors) {
    const label = `cannot write tensor "${t.name}"`;
    if (t.name === "__metadata__") fail(`${label}: the name "__metadata__" is reserved by the format; rename the tensor`);
    if (seen.has(t.name)) fail(`${label}: the name appears twice; tensor names must be unique`);
    seen.add(t.name);
    if (!(t.dtype in WRITABLE)) fail(`${label}: dtype ${String(t.dtype)} cannot be written; use ${Object.keys(WRITABLE).join(", ")}`);
    if (!t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      fail(`${label}: shape [${t.shape.join(", ")}] must contain non-negative integers`);
    }
    const numel = t.shape.reduce((a, d) => a * d, 1);
    if (t.data.length !== numel) {
      fail(`${label}: shape [${t.shape.join(", ")}] has ${numel} elements but the data has ${t.data.length}`);
    }
    const ok = WRITABLE[t.dtype].some((kind) => t.data instanceof kind);
    if (!ok) fail(`${label}: dtype ${t.dtype} does not match its data (${t.data.constructor.name})`);
  }
  if (metadata) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== "string") fail(`cannot write safetensors metadata key "${k}": values must be strings`);
    }
  }

  const ordered = referenceOrder(tensors);
  const payloads = ordered.map(tensorBytes);
  const { json, headerLen, dataBytes } = layout(
    ordered,
    payloads.map((p) => p.length),
    metadata,
  );
  const out = new Uint8Array(8 + headerLen + dataBytes);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLen), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + headerLen); // pad with spaces (valid JSON whitespace)
  let pos = 8 + headerLen;
  for (const p of payloads) {
    out.set(p, pos);
    pos += p.length;
  }
  return out;
}

/**
 * The bytes writeSafetensors writes for tensors of these names, dtypes and shapes (header included),
 * without their data: what a file will take on disk before it is written.
 */
export function safetensorsFileBytes(tensors: readonly Omit<TensorToWrite, "data">[], metadata?: Record<string, string>): number {
  const ordered = referenceOrder(tensors);
  const { headerLen, dataBytes } = layout(
    ordered,
    ordered.map((t) => DTYPE_SIZE[t.dtype] * t.shape.reduce((a, d) => a * d, 1)),
    metadata,
  );
  return 8 + headerLen + dataBytes;
}

/** Reference order: descending dtype alignment, then name (byte-wise, like Rust's String ordering). */
function referenceOrder<T extends Omit<TensorToWrite, "data">>(tensors: readonly T[]): T[] {
  return [...tensors].sort((a, b) => DTYPE_RANK[b.dtype] - DTYPE_RANK[a.dtype] || compareBytes(a.name, b.name));
}

/** The JSON header of tensors in file order with their data's byte lengths, and its length padded to 8. */
function layout(
  ordered: readonly Omit<TensorToWrite, "data">[],
  byteLengths: readonly number[],
  metadata: Record<string, string> | undefined,
): { json: Uint8Array; headerLen: number; dataBytes: number } {
  const parts: string[] = [];
  if (metadata !== undefined) {
    // The reference keeps metadata in a hash map (arbitrary order); we sort keys so output is deterministic.
    const keys = Object.keys(metadata).sort(compareBytes);
    parts.push(`"__metadata__":{${keys.map((k) => `${JSON.stringify(k)}:${JSON.stringify(metadata[k])}`).join(",")}}`);
  }
  let offset = 0;
  ordered.forEach((t, i) => {
    const end = offset + (byteLengths[i] as number);
    parts.push(`${JSON.stringify(t.name)}:{"dtype":"${t.dtype}","shape":[${t.shape.join(",")}],"data_offsets":[${offset},${end}]}`);
    offset = end;
  });
  const json = new TextEncoder().encode(`{${parts.join(",")}}`);
  return { json, headerLen: json.length + ((8 - (json.length % 8)) % 8), dataBytes: offset };
}

/** Int32 view of an integer tensor (token ids, targets). I64 values must fit in int32. */
export function toInt32(t: SafeTensor, label = "tensor"): Int32Array {
  if (t.data instanceof Int32Array) return t.data;
  if (!(t.data instanceof BigInt64Array)) fail(`${label} has dtype ${t.dtype}; an integer tensor (I32 or I64) is needed`);
  const src = t.data;
  const out = new Int32Array(src.length);
  for (let i = 0; i < src.length; i++) {
    const v = src[i] as bigint;
    if (v < -2147483648n || v > 2147483647n) {
      fail(`${label} holds ${v} at flat index ${i}, outside the int32 range minigpt uses for token ids`);
    }
    out[i] = Number(v);
  }
  return out;
}

/** what each written dtype takes as data */
const WRITABLE: Record<
  WritableDtype,
  (typeof Float32Array | typeof Int32Array | typeof BigInt64Array | typeof Int8Array | typeof Uint8Array)[]
> = {
  F32: [Float32Array],
  F16: [Float32Array],
  I32: [Int32Array],
  I64: [BigInt64Array, Int32Array],
  I8: [Int8Array],
  U8: [Uint8Array],
};

function tensorBytes(t: TensorToWrite): Uint8Array {
  if (t.dtype === "F16") return new Uint8Array(f32ToF16(t.data as Float32Array).buffer);
  if (t.dtype === "I64" && t.data instanceof Int32Array) {
    const wide = new BigInt64Array(t.data.length);
    for (let i = 0; i < t.data.length; i++) wide[i] = BigInt(t.data[i] as number);
    return new Uint8Array(wide.buffer);
  }
  return new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
}

/** Compare as UTF-8 bytes, which is how Rust orders Strings (JS `<` compares UTF-16 units). */
function compareBytes(a: string, b: string): number {
  if (a === b) return 0;
  const ea = new TextEncoder().encode(a);
  const eb = new TextEncoder().encode(b);
  const n = Math.min(ea.length, eb.length);
  for (let i = 0; i < n; i++) {
    const d = (ea[i] as number) - (eb[i] as number);
    if (d !== 0) return d;
  }
  return ea.length - eb.length;
}

/**
 * float32 -> IEEE half, rounded to nearest (ties to even); beyond ±65504 becomes ±Infinity, below
 * half's smallest subnormal 0. Exact for every value that is a half already.
 */
export function f32ToF16(src: Float32Array): Uint16Array {
  const out = new Uint16Array(src.length);
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  for (let i = 0; i < src.length; i++) {
    const x = bits[i]!;
    const sign = (x >>> 16) & 0x8000;
    const exp = (x >>> 23) & 0xff;
    let mant = x & 0x7fffff;
    if (exp === 0xff) {
      out[i] = sign | 0x7c00 | (mant ? 0x200 : 0); // Infinity or NaN
      continue;
    }
    const e = exp - 127 + 15; // the half's biased exponent
    if (e >= 0x1f) {
      out[i] = sign | 0x7c00;
      continue;
    }
    let shift = 13; // a normal half keeps the top 10 of the 23 mantissa bits
    let h: number;
    if (e <= 0) {
      // subnormal half: the implicit 1 joins the mantissa, shifted further right
      if (e < -10) {
        out[i] = sign;
        continue;
      }
      mant |= 0x800000;
      shift = 14 - e;
      h = 0;
    } else h = e << 10;
    const kept = mant >>> shift;
    const rest = mant - kept * 2 ** shift;
    const half = 2 ** (shift - 1);
    // round to nearest, ties to even; a carry out of the mantissa correctly bumps the exponent
    out[i] = sign | (h + kept + (rest > half || (rest === half && kept & 1) ? 1 : 0));
  }
  return out;
}

/** IEEE half -> float32: sign, 5-bit exponent (bias 15), 10-bit mantissa; subnormals, inf and NaN kept. */
export function f16ToF32(src: Uint16Array): Float32Array {
  const out = new Float32Array(src.length);
  for (let i = 0; i < src.length; i++) {
    const h = src[i] as number;
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >> 10) & 0x1f;
    const mant = h & 0x3ff;
    if (exp === 0) out[i] = sign * mant * 2 ** -24;
    else if (exp === 0x1f) out[i] = mant === 0 ? sign * Number.POSITIVE_INFINITY : Number.NaN;
    else out[i] = sign * (1 + mant / 1024) * 2 ** (exp - 15);
  }
  return out;
}

/** bfloat16 is the top half of a float32, so widening is a 16-bit shift. */
function bf16ToF32(src: Uint16Array): Float32Array {
  const bits = new Uint32Array(src.length);
  for (let i = 0; i < src.length; i++) bits[i] = (src[i] as number) << 16;
  return new Float32Array(bits.buffer);
}
