// The Models view: download the current model as a zip of its folder, and load a model folder or
// zip (from `minigpt train` or this page) by picking or dropping it.
import type { ModelWorker } from "./client.js";
import { byId, clearMessage, formatCount, showMessage } from "./dom.js";
import { droppedItems, type ModelSource, modelFromFiles, UserFileError } from "./files.js";

export function modelsView(worker: ModelWorker): void {
  const send = (m: ModelSource): void => {
    const transfer = m.zip ? [m.zip.buffer] : Object.values(m.files).map((b) => b.buffer);
    worker.send({ type: "load", name: m.name, zip: m.zip, files: m.files }, transfer);
  };
  const load = async (get: () => Promise<ModelSource>): Promise<void> => {
    clearMessage();
    try {
      send(await get());
    } catch (err) {
      showMessage(err instanceof UserFileError ? err.message : String(err));
    }
  };
  for (const id of ["model-files", "model-folder"]) {
    const input = byId<HTMLInputElement>(id);
    input.onchange = async () => {
      await load(() => modelFromFiles(Array.from(input.files ?? [])));
      input.value = "";
    };
  }
  const zone = byId("dropzone");
  zone.addEventListener("dragover", (e) => {
    e.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    const data = e.dataTransfer;
    if (!data) return;
    void load(async () => {
      const { folder, files } = await droppedItems(data);
      return folder ? modelFromFiles(folder.files, folder.name) : modelFromFiles(files);
    });
  });

  byId("download").onclick = () => worker.send({ type: "download" });
  worker.on("zip", (m) => {
    const url = URL.createObjectURL(new Blob([m.bytes as Uint8Array<ArrayBuffer>], { type: "application/zip" }));
    const a = document.createElement("a");
    a.href = url;
    a.download = m.name;
    a.click();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  });
  worker.on("model", (m) => {
    const text = `Model: ${m.label} (${formatCount(m.parameters)} parameters, ${m.vocabSize} tokens in its vocabulary)`;
    byId("models-label").textContent = text;
    byId("model-label").textContent = text;
  });
}
