// Files the user gives the page: text to train on (strict UTF-8, or a clear message), and a model
// (a .zip, the files of a model folder, or a dropped folder).
import { MODEL_FILE_NAMES } from "minigpt-ts/browser";

export class UserFileError extends Error {}

/** a .txt file's text; anything that is not UTF-8 text (a picture, a PDF, a zip) is refused by name */
export async function readText(file: File): Promise<string> {
  const bytes = new Uint8Array(await file.arrayBuffer());
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new UserFileError(`${file.name} is not a text file (it is not UTF-8 text): give .txt files`);
  }
  if (text.includes("\u0000")) throw new UserFileError(`${file.name} is not a text file (it holds binary data): give .txt files`);
  return text;
}

/** what a model input or drop gave: a zip, or a model folder's files by name */
export type ModelSource = { name: string; zip: Uint8Array; files: null } | { name: string; zip: null; files: Record<string, Uint8Array> };

/** a model from picked files: one .zip, or the files of a folder (the model's four are taken by name) */
export async function modelFromFiles(files: readonly File[], folderName?: string): Promise<ModelSource> {
  if (files.length === 0) throw new UserFileError("no files given");
  const zip = files.find((f) => f.name.toLowerCase().endsWith(".zip"));
  if (zip) return { name: zip.name, zip: new Uint8Array(await zip.arrayBuffer()), files: null };
  const byName: Record<string, Uint8Array> = {};
  for (const f of files)
    if ((MODEL_FILE_NAMES as readonly string[]).includes(f.name) && !(f.webkitRelativePath ?? "").includes("/training/"))
      byName[f.name] = new Uint8Array(await f.arrayBuffer());
  const folder = folderName ?? ((files[0]?.webkitRelativePath ?? "").split("/")[0] || "model folder");
  return { name: folder, zip: null, files: byName };
}

/** the files of a dropped folder (its top level only: a model folder keeps its model there) */
async function folderFiles(entry: FileSystemDirectoryEntry): Promise<File[]> {
  const entries = await new Promise<FileSystemEntry[]>((resolve, reject) => entry.createReader().readEntries(resolve, reject));
  const files = entries.filter((e): e is FileSystemFileEntry => e.isFile);
  return Promise.all(files.map((f) => new Promise<File>((resolve, reject) => f.file(resolve, reject))));
}

/** what was dropped: a folder, or files */
export async function droppedItems(data: DataTransfer): Promise<{ folder: { name: string; files: File[] } | null; files: File[] }> {
  for (const item of Array.from(data.items)) {
    const entry = item.webkitGetAsEntry?.();
    if (entry?.isDirectory) return { folder: { name: entry.name, files: await folderFiles(entry as FileSystemDirectoryEntry) }, files: [] };
  }
  return { folder: null, files: Array.from(data.files) };
}
