// Where the webgpu tests find an adapter without a GPU: Dawn (the npm package `webgpu`) on Vulkan's
// SwiftShader from Debian's chromium package, which CI installs. Each webgpu test runs its GPU work
// in a child process given these variables (the dynamic loader reads LD_LIBRARY_PATH only as a
// process starts), and skips with one line when no adapter can be had.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import type { TestContext } from "node:test";

const SWIFTSHADER_DIR = "/usr/lib/chromium";
const SWIFTSHADER_ICD = `${SWIFTSHADER_DIR}/vk_swiftshader_icd.json`;

/**
 * The environment for a child that uses webgpu: SwiftShader's Vulkan driver when present and no
 * VK_ICD_FILENAMES is set already; without NODE_TEST_CONTEXT, which would make a child test file
 * speak the runner's binary protocol instead of TAP.
 */
export function webgpuEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const { NODE_TEST_CONTEXT: _, ...inherited } = process.env;
  const env: NodeJS.ProcessEnv = { ...inherited, ...extra };
  if (existsSync(SWIFTSHADER_ICD) && !process.env.VK_ICD_FILENAMES) {
    env.VK_ICD_FILENAMES = SWIFTSHADER_ICD;
    env.LD_LIBRARY_PATH = [SWIFTSHADER_DIR, process.env.LD_LIBRARY_PATH].filter(Boolean).join(":");
  }
  return env;
}

/** printed by a child that found no adapter: the rest of the line says why */
export const NO_ADAPTER = "webgpu-unavailable:";

let cached: string | null | undefined;

/** null when a webgpu adapter can be had in a child process with webgpuEnv(), else why not (one line) */
export function webgpuUnavailable(): string | null {
  if (cached !== undefined) return cached;
  const probe = `import("webgpu").then(async (m) => { const a = await m.create([]).requestAdapter(); console.log(a ? "ok" : "none"); }, () => console.log("missing"));`;
  const r = spawnSync(process.execPath, ["--input-type=module", "-e", probe], { encoding: "utf8", env: webgpuEnv(), timeout: 60_000 });
  const said = r.stdout.trim();
  cached =
    said === "ok"
      ? null
      : said === "missing"
        ? "the optional package `webgpu` is not installed"
        : `no WebGPU adapter (Dawn found no Vulkan driver${existsSync(SWIFTSHADER_ICD) ? "" : `; SwiftShader is not at ${SWIFTSHADER_ICD}`})`;
  return cached;
}

/**
 * Run test file `file` again in a child on the available adapter (webgpuEnv plus `env` and
 * MINIGPT_WEBGPU_CHILD=1, which the file checks to run its GPU tests), or skip `t` with one line
 * saying why there is none. The child's diagnostics that match `show` are repeated in `t`'s.
 */
export function runInWebgpuChild(
  t: TestContext,
  file: string,
  { env = {}, timeout = 300_000, show = /./ }: { env?: NodeJS.ProcessEnv; timeout?: number; show?: RegExp } = {},
): void {
  const why = webgpuUnavailable();
  if (why) {
    t.skip(`webgpu: ${why}`);
    return;
  }
  const r = spawnSync(process.execPath, ["--import", "tsx", "--test-reporter=tap", file], {
    env: webgpuEnv({ MINIGPT_WEBGPU_CHILD: "1", MINIGPT_THREADS: "1", ...env }),
    encoding: "utf8",
    timeout,
  });
  const said = r.stdout
    .split("\n")
    .filter((l) => l.trim().startsWith("# ") && show.test(l))
    .map((l) => l.trim().slice(2));
  if (said.length > 0) t.diagnostic(said.join("; "));
  if (r.status !== 0) assert.fail(`child failed, exit ${r.status}:\n${r.stdout}\n${r.stderr}`);
  assert.match(r.stdout, /# fail 0/);
}
