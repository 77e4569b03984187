// Lists the exports of src/ that no other file uses: not imported by name, through a re-export
// (src/index.ts and src/browser.ts are the public API) or a namespace import, nor named in a
// file that imports the module dynamically. Each is a candidate to un-export, or to delete when
// its own file does not use it either.  Usage: node scripts/unused-exports.mjs
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import ts from "typescript";

const root = resolve(dirname(new URL(import.meta.url).pathname), "..");
const FOLDERS = ["src", "tests", "bench", "web", "scripts", "dev", "examples"];

function walk(dir, out = []) {
  for (const name of readdirSync(dir)) {
    if (name === "node_modules" || name === "dist" || name.startsWith(".")) continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (/\.(ts|mts|mjs|js)$/.test(name)) out.push(p);
  }
  return out;
}

/** the file an import specifier names (the package's own entry points included), or null for a package */
function resolveSpecifier(from, specifier) {
  if (specifier === "minigpt-ts/browser") return join(root, "src/browser.ts");
  if (specifier === "minigpt-ts") return join(root, "src/index.ts");
  if (!specifier.startsWith(".")) return null;
  const p = resolve(dirname(from), specifier);
  for (const c of [p, p.replace(/\.js$/, ".ts"), p.replace(/\.mjs$/, ".mts"), `${p}.ts`, join(p, "index.ts")])
    if (existsSync(c) && statSync(c).isFile()) return c;
  return p;
}

const files = FOLDERS.flatMap((d) => (existsSync(join(root, d)) ? walk(join(root, d)) : []));
const sources = new Map(files.map((f) => [f, ts.createSourceFile(f, readFileSync(f, "utf8"), ts.ScriptTarget.Latest, true)]));
const word = (name) => new RegExp(`\\b${name}\\b`);

/** file -> the names other files take from it */
const used = new Map();
/** file -> the files that import it dynamically, or re-export all of it */
const dynamic = new Map();
const starred = new Map();
const add = (map, key, value) => map.set(key, (map.get(key) ?? new Set()).add(value));

for (const [file, sf] of sources) {
  const visit = (node) => {
    const isImport = ts.isImportDeclaration(node);
    if ((isImport || ts.isExportDeclaration(node)) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
      const target = resolveSpecifier(file, node.moduleSpecifier.text);
      const bindings = isImport ? node.importClause?.namedBindings : node.exportClause;
      if (target && bindings && ts.isNamedImports(bindings))
        for (const el of bindings.elements) add(used, target, (el.propertyName ?? el.name).text);
      else if (target && bindings && ts.isNamedExports(bindings))
        for (const el of bindings.elements) add(used, target, (el.propertyName ?? el.name).text);
      else if (target && bindings && ts.isNamespaceImport(bindings))
        for (const m of sf.text.matchAll(new RegExp(`\\b${bindings.name.text}\\.(\\w+)`, "g"))) add(used, target, m[1]);
      else if (target && !isImport) add(starred, target, file);
    }
    if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      const arg = node.arguments[0];
      const target = arg && ts.isStringLiteral(arg) ? resolveSpecifier(file, arg.text) : null;
      if (target) add(dynamic, target, file);
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
}

const isUsed = (file, name) =>
  used.get(file)?.has(name) ||
  [...(starred.get(file) ?? [])].some((re) => isUsed(re, name)) ||
  [...(dynamic.get(file) ?? [])].some((f) => word(name).test(sources.get(f)?.text ?? ""));

const found = [];
for (const [file, sf] of sources) {
  const rel = relative(root, file);
  if (!rel.startsWith("src/") || rel.includes("/build/") || rel === "src/index.ts" || rel === "src/browser.ts") continue;
  for (const st of sf.statements) {
    const names = [];
    if (ts.canHaveModifiers(st) && ts.getModifiers(st)?.some((m) => m.kind === ts.SyntaxKind.ExportKeyword)) {
      if (ts.isVariableStatement(st)) for (const d of st.declarationList.declarations) names.push(d.name.getText());
      else if (st.name) names.push(st.name.getText());
    } else if (ts.isExportDeclaration(st) && !st.moduleSpecifier && st.exportClause && ts.isNamedExports(st.exportClause))
      for (const el of st.exportClause.elements) names.push(el.name.text);
    for (const name of names) {
      if (isUsed(file, name)) continue;
      const own = sf.text.match(new RegExp(word(name).source, "g"))?.length ?? 0;
      const line = sf.getLineAndCharacterOfPosition(st.getStart()).line + 1;
      found.push(`${rel}:${line} ${name}${own <= 1 ? " (used nowhere: delete it)" : ""}`);
    }
  }
}
console.log(found.sort().join("\n") || "every export of src/ is used by another file");
process.exitCode = found.length > 0 ? 1 : 0;
