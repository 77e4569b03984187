// Preloaded into every test file's process by scripts/run-tests.mjs: a test file that calls
// process.exit(0) would end its process before its other tests ran, and node:test would count the
// file as passed. Exiting with 0 from a test file is therefore an error; other codes pass through
// (they fail the file anyway).
if (process.env.NODE_TEST_CONTEXT) {
  const exit = process.exit.bind(process);
  process.exit = (code) => {
    if (code === undefined || code === 0 || code === "0") {
      throw new Error("process.exit(0) in a test file would end it early and count as a pass; use assertions (or return)");
    }
    return exit(code);
  };
}
