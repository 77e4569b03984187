// Types of scripts/wasm-sources.mjs for the TypeScript that imports it (tests/wasm-exports.test.ts).
export const assemblyDir: string;
export const exportsFile: string;
export const kernelFiles: string[];
export function kernelSource(): string;
export function sourceLocations(message: string): string;
export function exportsTs(): string;
