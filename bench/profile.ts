// Where a run's time goes: the self time of each function in a V8 CPU profile (.cpuprofile), the
// wasm kernels by name (the build keeps a name section), JS functions with file and line.
//
//   node --cpu-prof --cpu-prof-dir=tmp/prof --import tsx bench/train-step.ts --recipe big --threads 1 --warmup 1 --steps 1
//   node --import tsx bench/profile.ts tmp/prof/CPU.*.cpuprofile [--top 25]
//
// With several files (one per thread: --cpu-prof writes one for each worker), each gets its own
// table. Run with --threads 1 (or `--parallel kernels` off) for one table of the whole step.
import { readFileSync } from "node:fs";
import { basename } from "node:path";
import { expectArgs } from "./args.js";

expectArgs("bench/profile.ts", ["top"], [], true);

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const argv = process.argv.slice(2);
const topAt = argv.indexOf("--top");
const top = topAt >= 0 ? Number(argv[topAt + 1]) : 25;
const files = argv.filter((a, i) => a.endsWith(".cpuprofile") && argv[i - 1] !== "--top");
if (files.length === 0 || !(top > 0)) {
  console.error("usage: node --import tsx bench/profile.ts FILE.cpuprofile ... [--top N]");
  process.exit(2);
}

/** a readable name for a profile node: kernels by their wasm name, JS as name (file:line) */
function label(n: ProfileNode): { name: string; kind: "wasm" | "js" | "vm" } {
  const { functionName, url, lineNumber } = n.callFrame;
  if (url === "" && /^\(.*\)$/.test(functionName)) return { name: functionName, kind: "vm" };
  if (url.startsWith("wasm://") || functionName.startsWith("$") || /^wasm-function\[/.test(functionName)) {
    return { name: `wasm ${functionName.replace(/^\$?kernels\//, "")}`, kind: "wasm" };
  }
  const file = url.split("/").slice(-2).join("/");
  return { name: `${functionName || "(anonymous)"} (${file}:${lineNumber + 1})`, kind: "js" };
}

for (const file of files) {
  const p = JSON.parse(readFileSync(file, "utf8")) as CpuProfile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<string, number>();
  const kinds = { wasm: 0, js: 0, vm: 0 };
  let total = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const node = byId.get(p.samples[i] as number);
    const dt = p.timeDeltas[i] ?? 0;
    if (!node) continue;
    const { name, kind } = label(node);
    self.set(name, (self.get(name) ?? 0) + dt);
    kinds[kind] += dt;
    total += dt;
  }
  const pct = (us: number) => `${((100 * us) / Math.max(total, 1)).toFixed(1).padStart(5)}%`;
  const ms = (us: number) => `${(us / 1000).toFixed(0).padStart(8)} ms`;
  console.log(
    `${basename(file)}: ${(total / 1e6).toFixed(1)} s sampled; wasm ${pct(kinds.wasm)}, JS ${pct(kinds.js)}, VM (idle, GC, program) ${pct(kinds.vm)}`,
  );
  for (const [name, us] of [...self].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${ms(us)} ${pct(us)}  ${name}`);
  console.log("");
}
