// Builds the WebAssembly kernels (src/kernels/wasm/assembly/*.as, one program: see wasm-sources.mjs)
// with AssemblyScript's asc:
//   src/kernels/wasm/build/kernels-simd.wasm     plain SIMD (f32x4 mul + add)
//   src/kernels/wasm/build/kernels-relaxed.wasm  relaxed SIMD (f32x4.relaxed_madd, FMA)
// and copies them to dist/src/kernels/wasm/build/ so the compiled loader finds them next to itself.
// It also writes src/kernels/wasm/build/exports.ts, the exports' TypeScript types (committed, so that
// tsc needs no build; tests/wasm-exports.test.ts checks it is current).
// The sources use a ".as" extension so that the project's tsc (which includes src/**/*.ts) ignores
// them; asc is given a readFile hook that serves "kernels.ts" as the files concatenated in order.
// Run by `npm run build:wasm` (and `npm run build`, which `prepare` runs on npm install).
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { exportsFile, exportsTs, kernelSource, sourceLocations } from "./wasm-sources.mjs";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const outDirs = [join(root, "src/kernels/wasm/build"), join(root, "dist/src/kernels/wasm/build")];

let asc;
try {
  asc = (await import("assemblyscript/asc")).default;
} catch (e) {
  console.error("build-wasm: assemblyscript is not installed (npm install --include=dev):", e.message);
  process.exit(1);
}

const common = [
  "kernels.ts",
  "--outFile",
  "kernels.wasm",
  "-O3",
  "--noAssert",
  "--runtime",
  "stub",
  // the tensor heap's memory (src/tensor/memory.ts): shared, up to 4 GiB; our static data (math tables,
  // a few KiB) sits at the start of the 1 MiB the heap reserves below its first tensor
  "--importMemory",
  "--sharedMemory",
  "--initialMemory",
  "16",
  "--maximumMemory",
  "65536",
  "--memoryBase",
  "1024",
  "--enable",
  "simd",
  "--enable",
  "threads",
  "--use",
  "abort=",
  "--noExportMemory",
  // a name section (~1 KB): CPU profiles and stack traces then say kern4x8 or packB, not
  // wasm-function[27]. The code section is byte-for-byte the same as without it (checked).
  "--debug",
];

/** src/tensor/memory.ts RESERVED_BYTES: tensors start above this; our static data must end below it */
const RESERVED_BYTES = 1 << 20;

/** End (byte offset) of the highest active data segment of a wasm binary. */
function staticDataEnd(bin) {
  let p = 8;
  const u32 = () => {
    let r = 0;
    let shift = 0;
    for (;;) {
      const b = bin[p++];
      r |= (b & 0x7f) << shift;
      shift += 7;
      if (!(b & 0x80)) return r >>> 0;
    }
  };
  const s32 = () => {
    let r = 0;
    let shift = 0;
    let b;
    do {
      b = bin[p++];
      r |= (b & 0x7f) << shift;
      shift += 7;
    } while (b & 0x80);
    return shift < 32 && b & 0x40 ? r | (-1 << shift) : r;
  };
  let end = 0;
  while (p < bin.length) {
    const id = bin[p++];
    const size = u32();
    const next = p + size;
    if (id === 11) {
      const count = u32();
      for (let i = 0; i < count; i++) {
        const flags = u32();
        let offset = 0;
        if (flags !== 1) {
          if (flags === 2) u32();
          if (bin[p++] !== 0x41) throw new Error("build-wasm: unexpected data segment offset expression");
          offset = s32();
          if (bin[p++] !== 0x0b) throw new Error("build-wasm: unexpected data segment offset expression");
        }
        const len = u32();
        p += len;
        end = Math.max(end, offset + len);
      }
    }
    p = next;
  }
  return end;
}

const source = kernelSource();
writeFileSync(exportsFile, exportsTs());

const variants = [
  { name: "kernels-simd.wasm", flags: [] },
  { name: "kernels-relaxed.wasm", flags: ["--enable", "relaxed-simd"] },
];

for (const v of variants) {
  let binary = null;
  const stderr = [];
  const { error } = await asc.main([...common, ...v.flags], {
    readFile(name) {
      return name === "kernels.ts" ? source : null;
    },
    writeFile(name, contents) {
      if (name.endsWith(".wasm")) binary = contents;
    },
    listFiles() {
      return [];
    },
    stderr: { write: (s) => stderr.push(String(s)) },
    stdout: { write: () => {} },
  });
  if (error || !binary) {
    console.error(sourceLocations(stderr.join("")));
    console.error(`build-wasm: ${v.name} failed: ${error ? error.message : "no output"}`);
    process.exit(1);
  }
  const end = staticDataEnd(binary);
  if (end > RESERVED_BYTES) {
    console.error(`build-wasm: ${v.name}: static data ends at ${end}, above the heap's reserved ${RESERVED_BYTES} bytes`);
    process.exit(1);
  }
  for (const dir of outDirs) {
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, v.name), binary);
  }
  console.log(`build-wasm: ${v.name} ${binary.length} bytes, static data below ${end}`);
}
