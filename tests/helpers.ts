import assert from "node:assert/strict";
import { existsSync, readdirSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { MinigptError } from "../src/errors.js";

/**
 * Every fixture folder to check: the copies in tests/fixtures (so a fresh clone has them),
 * ../shared/fixtures when it exists, and the folders named in MINIGPT_FIXTURES (paths joined by ":";
 * a path is either a fixture folder or a folder of fixture folders).
 */
export function fixtureFolders(): { name: string; dir: string }[] {
  const roots = [resolve("tests/fixtures"), resolve("../shared/fixtures")];
  const explicit = (process.env.MINIGPT_FIXTURES ?? "").split(":").filter((p) => p.length > 0);
  const found: { name: string; dir: string }[] = [];
  const seen = new Set<string>();
  const addFolder = (dir: string, origin: string) => {
    const abs = resolve(dir);
    if (seen.has(abs)) return;
    seen.add(abs);
    found.push({ name: `${abs.split("/").pop()} (${origin})`, dir: abs });
  };
  for (const root of roots) {
    if (!existsSync(root)) continue;
    for (const entry of readdirSync(root).sort()) {
      const dir = join(root, entry);
      if (statSync(dir).isDirectory()) addFolder(dir, root.includes("shared") ? "../shared/fixtures" : "tests/fixtures");
    }
  }
  for (const p of explicit) {
    if (!existsSync(p)) throw new Error(`MINIGPT_FIXTURES names ${p}, which does not exist`);
    if (existsSync(join(p, "config.json"))) addFolder(p, "MINIGPT_FIXTURES");
    else
      for (const entry of readdirSync(p).sort())
        if (existsSync(join(p, entry, "config.json"))) addFolder(join(p, entry), "MINIGPT_FIXTURES");
  }
  return found;
}

export { closeReport, maxAbsDiff } from "./close.js";

/** Assert fn throws a MinigptError (a user-fixable mistake) with a one-line message matching every pattern. */
export function throwsUser(fn: () => unknown, ...patterns: RegExp[]): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof MinigptError, `expected MinigptError, got ${String(err)}`);
    assert.ok(!err.message.includes("\n"), "error message should be one line");
    for (const p of patterns) assert.match(err.message, p);
    return true;
  });
}
