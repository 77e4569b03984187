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

/** Largest |a - b| and where; lengths must agree. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): { diff: number; index: number } {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let diff = 0;
  let index = -1;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs((a[i] as number) - (b[i] as number));
    if (!(d <= diff)) {
      diff = d;
      index = i;
    }
  }
  return { diff, index };
}

/** Element i passes when |a - e| <= atol + rtol·|e|; returns the worst excess and a summary. */
export function closeReport(actual: ArrayLike<number>, expected: ArrayLike<number>, atol: number, rtol: number) {
  let worst = 0;
  let bad = -1;
  for (let i = 0; i < expected.length; i++) {
    const e = expected[i] as number;
    const d = Math.abs((actual[i] as number) - e);
    const excess = d - (atol + rtol * Math.abs(e));
    if (!(excess <= worst)) {
      worst = excess;
      bad = i;
    }
  }
  const { diff } = maxAbsDiff(actual, expected);
  return { ok: bad < 0, maxAbsDiff: diff, index: bad };
}

/** Assert fn throws a MinigptError (a user-fixable mistake) with a one-line message matching every pattern. */
export function throwsUser(fn: () => unknown, ...patterns: RegExp[]): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof MinigptError, `expected MinigptError, got ${String(err)}`);
    assert.ok(!err.message.includes("\n"), "error message should be one line");
    for (const p of patterns) assert.match(err.message, p);
    return true;
  });
}
