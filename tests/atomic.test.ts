/**
 * writeFileAtomic under SIGKILL: a child process rewrites one 32 MB file over and over, each time
 * with a different byte, and is killed at random moments after its first whole write, most of them
 * in the middle of a later one (writing and fsyncing 32 MB takes tens of milliseconds or more). After every kill the file must be
 * whole: 32 MB of one byte value, never a mix or a short file. A plain writeFileSync, or an in-place
 * write, fails this (checked by mutating src/io/atomic.ts).
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { test } from "node:test";
import { Rng } from "../src/random.js";
import { tempDir } from "./helpers.js";

const SIZE = 32 << 20;
const root = tempDir("minigpt-atomic-");

/** the writer: prints "ready" and then rewrites `path` with byte 1, 2, 3, ... until killed */
const WRITER = `
import { writeFileAtomic } from ${JSON.stringify(resolve("src/io/atomic.ts"))};
const [path, size] = [process.argv[1], Number(process.argv[2])];
process.stdout.write("ready\\n");
for (let i = 1; ; i++) {
  writeFileAtomic(path, new Uint8Array(size).fill(i & 255));
  process.stdout.write("w\\n");
}
`;

/** null when the file is SIZE bytes of one value, else what is wrong with it */
function wholeFile(path: string): string | null {
  const bytes = readFileSync(path);
  if (bytes.length !== SIZE) return `${bytes.length} bytes, not ${SIZE}`;
  const first = bytes[0] as number;
  const mixed = bytes.findIndex((b) => b !== first);
  return mixed < 0 ? null : `byte ${mixed} is ${bytes[mixed]}, byte 0 is ${first}: two writes mixed`;
}

test("SIGKILL during writeFileAtomic leaves the old file or the new one, whole", async () => {
  const path = join(root, "target.bin");
  writeFileSync(path, new Uint8Array(SIZE)); // the "old" file: all zeros
  const rng = new Rng(7);
  const seen = new Set<number>();
  for (let kill = 0; kill < 8; kill++) {
    const child: ChildProcess = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", WRITER, path, String(SIZE)], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    child.stderr?.on("data", (d) => {
      stderr += String(d);
    });
    const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
    // "ready" once the writer runs, then "w" after each whole write: the kill comes after at least
    // one write went through (on a loaded machine a fixed delay could end before the first one)
    let out = "";
    const wrote = new Promise<"wrote">((r) =>
      child.stdout?.on("data", (d) => {
        out += String(d);
        if (out.includes("w\n")) r("wrote");
      }),
    );
    assert.equal(await Promise.race([exited, wrote]), "wrote", `the writer did not start: ${stderr}`);
    // then a random point, most likely inside a later write
    await new Promise((r) => setTimeout(r, rng.int(400)));
    child.kill("SIGKILL");
    const code = await exited;
    assert.equal(code, null, `the writer ended on its own before the kill: ${stderr}`);
    const problem = wholeFile(path);
    assert.equal(problem, null, `after kill ${kill + 1}: ${problem}`);
    seen.add(readFileSync(path)[0] as number);
  }
  // the writer got through writes between kills (else this test would prove nothing)
  assert.ok(seen.size >= 2 || !seen.has(0), `the file never changed: ${[...seen].join(", ")}`);
  // a killed write leaves its temp file (nothing can remove it after SIGKILL); it never replaces the target
  const leftovers = readdirSync(root).filter((f) => f.includes(".tmp-"));
  assert.ok(
    leftovers.every((f) => f.startsWith(".target.bin.tmp-")),
    leftovers.join(", "),
  );
});
