// Opens one of bench/'s pages in headless Chromium (Debian's /usr/bin/chromium, driven by
// playwright-core), served cross-origin isolated from the repository (tests/static-server.ts), with
// dist/ compiled first: the pages load the compiled library. Shared by bench/browser.ts and
// bench/tiles.ts.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium, type Page } from "playwright-core";
import { serve } from "../tests/static-server.js";

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
export const CHROMIUM = "/usr/bin/chromium";

export interface BenchPage {
  page: Page;
  close(): Promise<void>;
}

/**
 * `path` (from the repository root) open and its script run far enough that `readyGlobal` exists on
 * globalThis; null when Chromium is not installed. Builds dist/ when its wasm is missing, else
 * recompiles the TypeScript (a no-op in effect when nothing changed).
 */
export async function openBenchPage(path: string, readyGlobal: string): Promise<BenchPage | null> {
  if (!existsSync(CHROMIUM)) return null;
  if (!existsSync(join(ROOT, "dist/src/kernels/wasm/build/kernels-relaxed.wasm"))) {
    const b = spawnSync("npm", ["run", "build"], { cwd: ROOT, stdio: "inherit" });
    if (b.status !== 0) throw new Error("npm run build failed");
  } else {
    const t = spawnSync(process.execPath, [join(ROOT, "node_modules/typescript/bin/tsc"), "-p", "tsconfig.json"], {
      cwd: ROOT,
      encoding: "utf8",
    });
    if (t.status !== 0) console.log(`tsc reported errors (dist/ may be stale):\n${t.stdout}`);
  }
  const server = await serve(ROOT);
  const browser = await chromium.launch({ executablePath: CHROMIUM });
  const close = async (): Promise<void> => {
    await browser.close();
    server.closeAllConnections();
    server.close();
  };
  try {
    const page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${(server.address() as AddressInfo).port}/${path}`);
    await page.waitForFunction((name) => name in globalThis, readyGlobal);
    return { page, close };
  } catch (e) {
    await close();
    throw e;
  }
}
