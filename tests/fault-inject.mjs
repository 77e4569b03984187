// Injected disk errors for tests: preloaded into a CLI child process (NODE_OPTIONS="--import <this file>")
// it makes chosen node:fs calls fail as a full or broken disk would, so the error paths of the real
// program run without a full disk.
//
//   MINIGPT_FAULT="op:path-substring:nth:CODE[:count]"
//
// fails the nth call of `op` whose path contains the substring (1 = the first), and the `count - 1`
// matching calls after it ("all": every one after it, like a disk that stays full), with an error
// shaped like Node's own (err.code CODE, e.g. ENOSPC or EIO). `op` is open, write, fsync, rename,
// mkdir, mkdtemp, rm, unlink or readdir; "write" matches writeFileSync, appendFileSync and a writeSync on a
// file opened with openSync (by the opened path), "fsync" an fsyncSync likewise.
import fs from "node:fs";
import { syncBuiltinESMExports } from "node:module";

const spec = process.env.MINIGPT_FAULT;
if (spec) {
  const [op, needle, nthText, code, countText = "1"] = spec.split(":");
  const nth = Number(nthText);
  const count = countText === "all" ? Number.POSITIVE_INFINITY : Number(countText);
  if (!op || needle === undefined || !(nth >= 1) || !code || !(count >= 1)) throw new Error(`MINIGPT_FAULT=${spec}: expected op:path:nth:CODE[:count]`);
  const ERRNO = { ENOSPC: -28, EIO: -5, EACCES: -13, EROFS: -30 };
  let seen = 0;
  const maybeFail = (name, path) => {
    if (name !== op || !String(path).includes(needle)) return;
    seen++;
    if (seen < nth || seen >= nth + count) return;
    const err = new Error(`${code}: injected fault, ${name} '${path}'`);
    Object.assign(err, { code, errno: ERRNO[code] ?? -1, syscall: name, path: String(path) });
    throw err;
  };
  const fdPaths = new Map();
  const original = { ...fs };
  const wrapped = {
    openSync(path, ...rest) {
      maybeFail("open", path);
      const fd = original.openSync(path, ...rest);
      fdPaths.set(fd, String(path));
      return fd;
    },
    closeSync(fd) {
      fdPaths.delete(fd);
      return original.closeSync(fd);
    },
    writeSync(fd, ...rest) {
      maybeFail("write", fdPaths.get(fd) ?? "");
      return original.writeSync(fd, ...rest);
    },
    fsyncSync(fd) {
      maybeFail("fsync", fdPaths.get(fd) ?? "");
      return original.fsyncSync(fd);
    },
    writeFileSync(path, ...rest) {
      maybeFail("write", path);
      return original.writeFileSync(path, ...rest);
    },
    appendFileSync(path, ...rest) {
      maybeFail("write", path);
      return original.appendFileSync(path, ...rest);
    },
    renameSync(from, to) {
      maybeFail("rename", `${from} -> ${to}`);
      return original.renameSync(from, to);
    },
    mkdirSync(path, ...rest) {
      maybeFail("mkdir", path);
      return original.mkdirSync(path, ...rest);
    },
    mkdtempSync(prefix, ...rest) {
      maybeFail("mkdtemp", prefix);
      return original.mkdtempSync(prefix, ...rest);
    },
    rmSync(path, ...rest) {
      maybeFail("rm", path);
      return original.rmSync(path, ...rest);
    },
    unlinkSync(path) {
      maybeFail("unlink", path);
      return original.unlinkSync(path);
    },
    readdirSync(path, ...rest) {
      maybeFail("readdir", path);
      return original.readdirSync(path, ...rest);
    },
  };
  Object.assign(fs, wrapped);
  // `import { renameSync } from "node:fs"` in the program sees the wrapped functions too
  syncBuiltinESMExports();
}
