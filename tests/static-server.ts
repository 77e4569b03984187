// A tiny static file server for pages that need to be cross-origin isolated (SharedArrayBuffer and
// shared WebAssembly memory need Cross-Origin-Opener-Policy and Cross-Origin-Embedder-Policy).
// Serves `root` on 127.0.0.1 at a random port; used by tests/browser.test.ts and bench/browser.ts
// (and, without those headers, for README's page as a plain static server serves it).
import { readFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import { extname, join, normalize, sep } from "node:path";

const MIME: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".map": "application/json; charset=utf-8",
  ".json": "application/json; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".txt": "text/plain; charset=utf-8",
  ".wasm": "application/wasm",
};

/**
 * Serve `root`, and each folder of `mounts` under its URL prefix ("/fixtures/0/" -> a folder outside
 * root, e.g. ../shared/fixtures/gpt-tiny). `isolated: false` leaves out the cross-origin isolation
 * headers, as any plain static server does.
 */
export function serve(root: string, mounts: Record<string, string> = {}, { isolated = true } = {}): Promise<Server> {
  const server = createServer((req, res) => {
    void (async () => {
      const isolation = {
        "Cross-Origin-Opener-Policy": "same-origin",
        "Cross-Origin-Embedder-Policy": "require-corp",
        "Cross-Origin-Resource-Policy": "same-origin",
      };
      const headers = { ...(isolated ? isolation : {}), "Cache-Control": "no-store" };
      const urlPath = decodeURIComponent(new URL(req.url ?? "/", "http://localhost").pathname);
      const mount = Object.keys(mounts).find((prefix) => urlPath.startsWith(prefix));
      const base = mount ? (mounts[mount] as string) : root;
      const path = normalize(join(base, mount ? urlPath.slice(mount.length) : urlPath));
      if (!path.startsWith(base + sep)) {
        res.writeHead(403, headers).end();
        return;
      }
      try {
        const body = await readFile(path);
        res.writeHead(200, { ...headers, "Content-Type": MIME[extname(path)] ?? "application/octet-stream" }).end(body);
      } catch {
        res.writeHead(404, headers).end();
      }
    })();
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve(server));
  });
}
