// The model that generate, chat and Look inside use: the training run's, or one loaded in Models
// (which a new run may take over and train further). The page is told whenever it changes.
import {
  chatTokenIds,
  type GPT,
  type LoadedModel,
  loadModelFiles,
  MinigptError,
  modelFilesAsync,
  neverLearnedToEndReplies,
  type Tokenizer,
  unzipModelFiles,
  zipModelFiles,
} from "minigpt-ts/browser";
import { post } from "./page.js";

export type CurrentModel = LoadedModel & { label: string };

let current: CurrentModel | null = null;
/** `current` came from a file (Models), not from the run */
let loadedFromFile = false;

/** the current model; else a one-line error: "no model yet: " and `whatToDo` */
export function requireModel(whatToDo = "train one or load a model folder first"): CurrentModel {
  if (!current) throw new MinigptError(`no model yet: ${whatToDo}`);
  return current;
}

/** the model loaded in Models, for a new run to take over */
export function takeLoaded(): CurrentModel {
  const m = current;
  if (!m || !loadedFromFile)
    throw new MinigptError("no model is loaded: load a model folder or .zip in Models first, or start a new model");
  return m;
}

/** the run's model is the current one now (a loaded one it did not take is freed) */
export function useRunModel(model: GPT, tokenizer: Tokenizer, label: string): void {
  if (current && current.model !== model) current.model.dispose();
  current = { model, tokenizer, info: {}, label };
  loadedFromFile = false;
  postModel(current, false);
}

/** the run's model is being freed: there is no current model unless one was loaded since */
export function forgetModel(model: GPT): void {
  if (current?.model === model) current = null;
}

/** a model folder's files (or a zip of them) from Models: the current model now; `keep` is the run's model, never freed */
export function loadModel(name: string, files: Record<string, Uint8Array> | null, zip: Uint8Array | null, keep: GPT | undefined): void {
  const loaded = loadModelFiles(files ?? unzipModelFiles(zip as Uint8Array, name), name);
  if (current && current.model !== keep) current.model.dispose();
  current = { ...loaded, label: name };
  loadedFromFile = true;
  postModel(current, true);
}

/** model `m` as a zip of its folder's files, `info` in its info.json */
export async function downloadModel(m: CurrentModel, info: Record<string, unknown>): Promise<void> {
  const bytes = zipModelFiles(await modelFilesAsync(m.model, m.tokenizer, info ?? m.info));
  const name = `${m.label.replace(/\.[a-z]+$/i, "").replace(/[^\w.-]+/g, "-") || "model"}.zip`;
  post({ type: "zip", name, bytes }, [bytes.buffer]);
}

/** tell the page which model generate, chat and inspect use now */
function postModel(m: CurrentModel, loaded: boolean): void {
  const ids = chatTokenIds(m.tokenizer);
  post({
    type: "model",
    label: m.label,
    parameters: m.model.parameterCount(),
    vocabSize: m.tokenizer.vocabSize,
    loaded,
    // chat-tuned: a loaded model whose vocabulary has the chat tokens and that (when its folder says
    // what it learned) learned to end a reply; the page's own runs learn plain text
    chat: loaded && ids !== undefined && !neverLearnedToEndReplies(m.info, m.tokenizer),
    system: ids?.system !== undefined,
  });
}
