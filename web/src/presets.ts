// The Train view's size presets, smallest first, and which of them to offer when one does not fit
// (a text too short for its context, too little memory): only a preset that is smaller, and for a
// short text one whose context the text can fill; never "a smaller preset" when tiny is chosen.
// No imports, so the Node tests check the advice without a browser (tests/web-presets.test.ts).

/** a size preset of the Train view */
export interface Preset {
  name: string;
  nLayer: number;
  nHead: number;
  nEmbd: number;
  blockSize: number;
  batchSize: number;
  lr: number;
}

export const PRESETS: Preset[] = [
  { name: "tiny", nLayer: 2, nHead: 2, nEmbd: 32, blockSize: 32, batchSize: 8, lr: 3e-3 },
  { name: "small (nanoGPT CPU recipe)", nLayer: 4, nHead: 4, nEmbd: 128, blockSize: 64, batchSize: 12, lr: 1e-3 },
  { name: "medium", nLayer: 6, nHead: 6, nEmbd: 192, blockSize: 128, batchSize: 16, lr: 1e-3 },
  { name: "large", nLayer: 6, nHead: 6, nEmbd: 384, blockSize: 256, batchSize: 16, lr: 6e-4 },
];

/** the presets smaller than `preset`, smallest first: none for tiny, or for a loaded model's shape (no preset) */
export function smallerPresets(preset: Preset): Preset[] {
  const i = PRESETS.indexOf(preset);
  return i > 0 ? PRESETS.slice(0, i) : [];
}

/**
 * What to do about a text too short for `preset`: its validation tenth holds `valTokens` tokens, fewer
 * than a context + 1. The largest smaller preset whose context fits is named; else only more text helps.
 */
export function tooShortAdvice(preset: Preset, valTokens: number): string {
  const fits = smallerPresets(preset).filter((p) => p.blockSize + 1 <= valTokens);
  const pick = fits[fits.length - 1];
  return pick ? `paste more text or pick the ${pick.name} preset (context ${pick.blockSize})` : "paste more text";
}
