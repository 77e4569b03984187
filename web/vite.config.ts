// The web playground's build: `npm run build:web` (part of `npm run build`) bundles web/ into
// dist/web/, which `minigpt web` serves. The library comes in through src/browser.ts, its wasm
// kernels and data-parallel workers as assets beside the bundle.
import { fileURLToPath } from "node:url";
import { defineConfig, type Plugin } from "vite";
import { loadTextSource } from "../src/data/text.js";

/** the headers that make the page cross-origin isolated (SharedArrayBuffer: threads) */
const ISOLATION = {
  "Cross-Origin-Opener-Policy": "same-origin",
  "Cross-Origin-Embedder-Policy": "require-corp",
  "Cross-Origin-Resource-Policy": "same-origin",
};

/**
 * The library imports Node builtins only dynamically, behind its is-this-Node checks (platform.ts);
 * in the page they resolve to an empty module instead of Vite's "externalized" warnings.
 */
const nodeBuiltinsAbsent: Plugin = {
  name: "minigpt-node-builtins-absent",
  enforce: "pre",
  resolveId: (id) => (id.startsWith("node:") ? `\0absent:${id}` : null),
  load: (id) => (id.startsWith("\0absent:") ? "export default {};" : null),
};

/** the built-in corpus, as `minigpt train` reads it (its chapters joined), fetched only when picked */
const builtinBook: Plugin = {
  name: "minigpt-builtin-book",
  apply: "build",
  generateBundle() {
    this.emitFile({ type: "asset", fileName: "moby-dick.txt", source: loadTextSource("moby-dick").text });
  },
};

export default defineConfig({
  plugins: [nodeBuiltinsAbsent, builtinBook],
  root: import.meta.dirname,
  base: "./",
  // a static page: no public/ folder, no env files
  publicDir: false,
  envDir: false,
  logLevel: "warn",
  // the library's public browser API, from source (its .wasm and worker files come along as assets)
  resolve: { alias: { "minigpt-ts/browser": fileURLToPath(new URL("../src/browser.ts", import.meta.url)) } },
  build: {
    outDir: "../dist/web",
    emptyOutDir: true,
    target: "es2022",
    // the wasm kernels are fetched, never inlined as base64
    assetsInlineLimit: 0,
    reportCompressedSize: false,
  },
  // module workers (the model worker starts the data-parallel replicas from inside itself)
  worker: { format: "es", plugins: () => [nodeBuiltinsAbsent] },
  server: { headers: ISOLATION },
  preview: { headers: ISOLATION },
});
