// The model shapes the benchmarks measure, said once (GPTConfig fields; a benchmark adds what it
// varies: dropout, a batch size). The training recipes are bench/step.ts's RECIPES.

/** the GPTConfig fields a model's shape fixes */
export interface ModelShape {
  readonly vocabSize: number;
  readonly nLayer: number;
  readonly nHead: number;
  readonly nEmbd: number;
  readonly blockSize: number;
}

/** GPT-2 124M's shape: 12 layers, 12 heads, 768 wide, 1,024 positions, GPT-2's 50,257 tokens */
export const GPT2_SHAPE: ModelShape = { vocabSize: 50257, nLayer: 12, nHead: 12, nEmbd: 768, blockSize: 1024 };

/** the bigger recipe's model (bench/step.ts RECIPES.big) with tiny Shakespeare's 65 characters */
export const BIGGER_SHAPE: ModelShape = { vocabSize: 65, nLayer: 6, nHead: 6, nEmbd: 384, blockSize: 256 };
