/**
 * The kernel interface. An op (src/ops/) does autograd bookkeeping and calls one of these for the
 * arithmetic. `ref` (src/kernels/ref/) is the readable definition of every kernel; `wasm`
 * (src/kernels/wasm/) is its fast twin and must agree with it within fp32 tolerance.
 *
 * Shape vocabulary, used in every comment:
 *   B batch, T time (sequence length), C channels (n_embd), V vocabulary, nh heads, hs = C/nh,
 *   N = B*T rows when a kernel does not care about the batch structure.
 *
 * Conventions:
 * - Arrays are flat and row-major; dimensions are passed explicitly.
 * - Forward kernels overwrite `out`. Backward kernels ADD into their gradient outputs (dx, dw, ...),
 *   so a tensor used twice collects both contributions and gradient accumulation is free.
 * - Kernels are generic over Float32Array and Float64Array so that tests can check the backward
 *   maths against finite differences in float64. The wasm backend accepts only Float32Arrays that
 *   view the tensor heap (it takes their byteOffset as a pointer).
 * - F and I are the types of a float and an int array argument: FloatArray and Int32Array on the CPU;
 *   a GPU backend's handles to device memory (src/kernels/webgpu/), whose values no CPU code can
 *   index. The same method names, arguments and semantics on every device.
 */
export type FloatArray = Float32Array | Float64Array;

/** An array in the memory of a device that is not the CPU (a GPU backend's handle): no CPU code indexes it. */
export interface DeviceArray {
  readonly length: number;
}

/**
 * What a device backend adds: the one reduction the Backend returns as a number (sumSquares), kept
 * in device memory instead, and the gradient clipping that uses it without a readback.
 */
export interface DeviceReductions<F = DeviceArray> {
  /** out[0] = Σ x² */
  sumSquaresInto(out: F, x: F, n: number): void;
  /** x (n) *= maxNorm/(√Σ sums + 1e-6) when that is below 1, sums (count) the parts of the squared norm */
  clipByNorm(x: F, n: number, sums: F, count: number, maxNorm: number): void;
}

/**
 * The memory of such a device, where a tensor lives while its backend is in use (src/tensor/tensor.ts):
 * 4-byte elements, allocated not zeroed; writes and reads are ordered after the kernels already
 * called, and reads are asynchronous.
 */
export interface DeviceMemory<A extends DeviceArray = DeviceArray> {
  alloc(n: number): A;
  release(a: A): void;
  /** `length` elements of `a` from element `offset`, in place */
  view(a: A, offset: number, length: number): A;
  write(a: A, data: Float32Array | Int32Array): void;
  read(a: A): Promise<ArrayBuffer>;
}

/** one row of a batched decode step: its sequence's KV cache of one layer, and the row's position */
export interface CachedRow<F = FloatArray> {
  /** (Tmax,C) */
  keys: F;
  values: F;
  pos: number;
}

/**
 * one block's weights, for Backend.trunkRows: its LayerNorms', attention's and MLP's (W is (in,out)).
 * Not changed once made (a changed layer makes a new one: Block.trunkLayer), so a backend may keep
 * what it derives from one (the wasm backend: its table of pointers) while the same objects come back.
 */
export interface TrunkLayer<F = FloatArray> {
  ln1Weight: F;
  ln1Bias: F;
  attnWeight: F;
  attnBias: F;
  attnProjWeight: F;
  attnProjBias: F;
  ln2Weight: F;
  ln2Bias: F;
  fcWeight: F;
  fcBias: F;
  mlpProjWeight: F;
  mlpProjBias: F;
  /** the four matrices laid out by Backend.packDecodeLayer, or none */
  packed?: PackedLayer | null;
}

/** a block's four weight matrices in the decode, for Backend.packDecodeLayer */
export type DecodeMatrices<F = FloatArray> = Pick<TrunkLayer<F>, "attnWeight" | "attnProjWeight" | "fcWeight" | "mlpProjWeight">;

/**
 * A block's decode matrices laid out once by a backend for its products of many rows
 * (Backend.packDecodeLayer): a copy in another order, which attentionRows, mlpRows and trunkRows read
 * in the matrices' place where it is passed with them. Opaque to the caller, who holds it beside the
 * matrices and releases it when they change (it is a snapshot: GPT.packDecodeWeights).
 */
export interface PackedLayer {
  /** bytes of memory it holds */
  readonly bytes: number;
  release(): void;
}

/**
 * A batched decode step's trunk for Backend.trunkRows: the step's buffers (R rows of each), every
 * block's weights and, per block, the rows' caches (rows[layer][r]).
 */
export interface TrunkRows<F = FloatArray> {
  /** the residual stream (R,C): the rows' embeddings in, the last block's output out */
  x: F;
  /** scratch: LayerNorm output (R,C), its statistics (R), q k v (R,3C), attention (R,C), a block's output (R,C), hidden units (R,H) */
  a: F;
  mean: F;
  rstd: F;
  qkv: F;
  att: F;
  y: F;
  h: F;
  layers: readonly TrunkLayer<F>[];
  rows: readonly (readonly CachedRow<F>[])[];
  R: number;
  C: number;
  nh: number;
  H: number;
  relu: boolean;
  /** every LayerNorm's epsilon */
  eps: number;
  /**
   * per row, whether its output (its row of x after the last block) is wanted; a row that is not
   * (a prompt's row before its last: only its k and v in every block's cache matter) may skip the
   * last block's attention and MLP, its row of x then left undefined. Default: every row's.
   */
  outputs?: readonly boolean[];
}

export interface Backend<F = FloatArray, I = Int32Array> {
  readonly name: string;

  // ---- matmul, the three layouts training needs -------------------------------------------
  /** a (M,K), b (K,N) -> out (M,N) = a·b (accumulate: out += a·b) */
  matmul(out: F, a: F, b: F, M: number, K: number, N: number, accumulate: boolean): void;
  /** a (M,K), b (N,K) -> out (M,N) = a·bᵀ (accumulate: out += a·bᵀ) */
  matmulBT(out: F, a: F, b: F, M: number, K: number, N: number, accumulate: boolean): void;
  /** a (K,M), b (K,N) -> out (M,N) = aᵀ·b (accumulate: out += aᵀ·b) */
  matmulAT(out: F, a: F, b: F, M: number, K: number, N: number, accumulate: boolean): void;

  /** x (M,K), w (K,N), bias (N) or null -> out (M,N) = x·w + bias: a linear layer's forward */
  linearForward(out: F, x: F, w: F, bias: F | null, M: number, K: number, N: number): void;
  /**
   * The backward of out = x·w + b with dy (M,N): dx (M,K) += dy·wᵀ (= with overwriteDx), dw (K,N) += xᵀ·dy
   * (= with overwriteDw), db (N) += Σ_rows dy; a null output is skipped. One call, so that a threaded backend
   * can run the two independent products side by side (one synchronisation, each product whole) instead of
   * splitting each.
   */
  linearBackward(
    dx: F | null,
    dw: F | null,
    db: F | null,
    dy: F,
    x: F,
    w: F,
    M: number,
    K: number,
    N: number,
    overwriteDx?: boolean,
    overwriteDw?: boolean,
  ): void;

  // ---- elementwise and reductions ---------------------------------------------------------
  /** out (rows,cols) += bias (cols) broadcast over rows */
  addBias(out: F, bias: F, rows: number, cols: number): void;
  /** x (rows,cols) -> out (cols) += column sums of x (the bias gradient) */
  sumRows(out: F, x: F, rows: number, cols: number): void;
  /** x (n) = 0 */
  zero(x: F, n: number): void;
  /** dst (n) = src */
  copy(dst: F, src: F, n: number): void;
  /** out (n) = a + b */
  add(out: F, a: F, b: F, n: number): void;
  /** dst (n) += src */
  accumulate(dst: F, src: F, n: number): void;
  /** x (n) *= s */
  scale(x: F, n: number, s: number): void;
  /** sum of x², accumulated in float64 (for the global gradient norm) */
  sumSquares(x: F, n: number): number;
  /** out (n) = x * mask; mask holds 0 or 1/(1-p) (inverted dropout; the same call is its backward) */
  mul(out: F, x: F, mask: F, n: number): void;

  // ---- layer norm -------------------------------------------------------------------------
  /** x (N,C), w (C), b (C) -> out (N,C); saves mean (N) and rstd (N) = 1/sqrt(var + eps) */
  layernormForward(out: F, mean: F, rstd: F, x: F, w: F, b: F, N: number, C: number, eps: number): void;
  /** dout (N,C) -> dx (N,C) +=, dw (C) +=, db (C) += */
  layernormBackward(dx: F, dw: F, db: F, dout: F, x: F, w: F, mean: F, rstd: F, N: number, C: number): void;

  // ---- activations ------------------------------------------------------------------------
  /** GELU, tanh approximation (GPT-2's "gelu_new"): out (n) = gelu(x) */
  geluForward(out: F, x: F, n: number): void;
  /** dx (n) += gelu'(x) * dout */
  geluBackward(dx: F, x: F, dout: F, n: number): void;
  /**
   * out (n) = gelu(x) and dgelu (n) = gelu'(x) in one pass (dgelu may be x itself): the forward of a
   * GELU whose input is not needed afterwards (src/ops/gelu.ts linearGelu); its backward is then
   * dgelu·dout, a multiply instead of a second tanh
   */
  geluForwardGrad(out: F, dgelu: F, x: F, n: number): void;
  reluForward(out: F, x: F, n: number): void;
  reluBackward(dx: F, x: F, dout: F, n: number): void;

  // ---- causal self-attention, fused ---------------------------------------------------------
  /**
   * qkv (B,T,3C) laid out [q | k | v] along the last axis, heads split as (nh, hs) inside each ->
   * out (B,T,C) = softmax(q·kᵀ/√hs + causal mask)·v, heads concatenated.
   * Saves lse (B,nh,T), the log-sum-exp of each score row; the (B,nh,T,T) probabilities are
   * recomputed in backward, or, given `probs` (B,nh,T,T), kept there for it: row t's entries 0..t
   * (the rest of a row is the backend's own). A device backend may ignore `probs` and recompute.
   */
  attentionForward(out: F, lse: F, qkv: F, B: number, T: number, C: number, nh: number, probs?: F | null): void;
  /**
   * dout (B,T,C) -> dqkv (B,T,3C) += (= with overwrite); needs the forward's out and lse, and its
   * `probs` when it was given them (the same array, or null for neither)
   */
  attentionBackward(
    dqkv: F,
    dout: F,
    qkv: F,
    out: F,
    lse: F,
    B: number,
    T: number,
    C: number,
    nh: number,
    probs?: F | null,
    overwrite?: boolean,
  ): void;
  /**
   * Attention for generation with a KV cache (no batch). qkv (Tn,3C) holds the Tn new positions
   * pos0 .. pos0+Tn-1; their k and v must already be written to kCache/vCache (Tmax,C) rows.
   * New position p attends to cache rows 0..p. -> out (Tn,C)
   */
  attentionCached(out: F, qkv: F, kCache: F, vCache: F, Tn: number, pos0: number, C: number, nh: number): void;

  // ---- one-token decode of R sequences at once (generation) -----------------------------------------
  // Each of R rows is the next token of its own sequence. Every kernel here gives each row exactly the
  // bits a call for that row alone gives (a row's summation order does not depend on R or on the other
  // rows), so a sequence decoded in a batch equals it decoded alone; the weights are read once for all.

  /** x (M,K), w (K,N), bias (N) or null -> out (M,N) = x·w + bias, each row as a one-row call */
  linearRows(out: F, x: F, w: F, bias: F | null, M: number, K: number, N: number): void;
  /** a (M,K), b (N,K) -> out (M,N) = a·bᵀ, each row as a one-row call (the LM head) */
  matmulBTRows(out: F, a: F, b: F, M: number, K: number, N: number): void;
  /**
   * R rows' MLP: h (R,H) = act(a·wfc + bfc), y (R,C) = h·wproj + bproj, act GELU (tanh) or ReLU.
   * a (R,C), wfc (C,H), bfc (H), wproj (H,C), bproj (C). Exactly linearRows, the activation (in place
   * on h) and linearRows; a fast backend runs it as one task per thread.
   */
  mlpRows(
    y: F,
    h: F,
    a: F,
    R: number,
    wfc: F,
    bfc: F,
    wproj: F,
    bproj: F,
    C: number,
    H: number,
    relu: boolean,
    packed?: PackedLayer | null,
  ): void;
  /**
   * R new tokens' attention block, row r at position rows[r].pos of its own sequence:
   * qkv (R,3C) = a·wattn + battn; row r's k and v are written to row pos of rows[r].keys / .values
   * (Tmax,C); att[r] (C) = attentionCached over that cache's rows 0..pos; y (R,C) = att·wproj + bproj.
   * Exactly linearRows, the copies, attentionCached per row and linearRows. `packed` (here and in
   * mlpRows): packDecodeLayer's copy of the block's matrices, or none; the same bits either way.
   */
  attentionRows(
    y: F,
    att: F,
    qkv: F,
    a: F,
    rows: readonly CachedRow<F>[],
    wattn: F,
    battn: F,
    wproj: F,
    bproj: F,
    C: number,
    nh: number,
    packed?: PackedLayer | null,
  ): void;

  /**
   * Optional: the block's four matrices (C, nh, H as attentionRows' and mlpRows') laid out for this
   * backend's decode products of many rows, to pass to them and to trunkRows with the matrices (the
   * wasm backend: 4-column panels in chunks of its tiles' step order, as much memory again as the matrices,
   * read from 2 rows a step on; one row still reads the matrices). A layout only: the results are
   * the same bits with it as without. null where the backend cannot use one for this shape. The
   * reference backend has none: layouts are the fast backends' business.
   */
  packDecodeLayer?(m: DecodeMatrices<F>, C: number, nh: number, H: number): PackedLayer | null;

  /**
   * Optional: every block of a decode step at once, exactly as block by block (per block
   * layernormForward, attentionRows, add, layernormForward, mlpRows, add: the same bits), when the
   * backend can do that faster here (the wasm backend: every block in one pool round trip, each
   * thread its rows through every block, or, where the weights are split over the threads, its share
   * of every block's products, the threads meeting between them); false when it cannot (the caller
   * then goes block by block).
   */
  trunkRows?(t: TrunkRows<F>): boolean;

  // ---- softmax, cross-entropy, embedding ------------------------------------------------------
  /** x (rows,cols) -> out (rows,cols) = softmax over each row */
  softmax(out: F, x: F, rows: number, cols: number): void;
  /**
   * logits (N,V), targets (N) -> losses (N) = -log softmax(logits)[target], lse (N) saved.
   * A target of -1 is ignored: its loss is 0 (the caller divides by the number counted).
   */
  crossEntropyForward(losses: F, lse: F, logits: F, targets: I, N: number, V: number): void;
  /** dlogits (N,V) += scale * (softmax(logits) - onehot(target)), rows with target -1 untouched */
  crossEntropyBackward(dlogits: F, logits: F, lse: F, targets: I, N: number, V: number, scale: number): void;
  /** ids (N), table (V,C) -> out (N,C) = table[ids] */
  embeddingForward(out: F, ids: I, table: F, N: number, C: number): void;
  /** dtable (V,C) += scatter-add of dout (N,C) rows at ids */
  embeddingBackward(dtable: F, dout: F, ids: I, N: number, C: number): void;

  // ---- optimizer --------------------------------------------------------------------------
  /** One AdamW update (`step`, AdamwStep) of n parameters p with gradient g, moments m and v. */
  adamw(p: F, g: F, m: F, v: F, n: number, step: AdamwStep): void;
  /**
   * adamw on each of `tensors` (step.weightDecay on those that decay, none on the others), the same
   * bits as one adamw call each; a backend may do them in one call (wasm: one call split over the
   * threads, where a call and a hand-off per tensor cost more than the update of a small model).
   * Optional: AdamW calls adamw per tensor without it.
   */
  adamwMany?(tensors: readonly AdamwTensor<F>[], step: AdamwStep): void;
}

/**
 * One AdamW update's scalars, PyTorch's formulation, for every backend's adamw and adamwMany:
 *   g = gradScale*g;  p -= lr*wd*p;  m = b1*m + (1-b1)*g;  v = b2*v + (1-b2)*g²;
 *   p -= lr * (m/bc1) / (sqrt(v/bc2) + eps)     with bc1 = 1-b1^t, bc2 = 1-b2^t
 * (g itself is left as it is).
 */
export interface AdamwStep {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  /** decoupled weight decay (wd above) */
  weightDecay: number;
  /** the bias corrections 1 - beta1^t, 1 - beta2^t of step t */
  bc1: number;
  bc2: number;
  /**
   * what every gradient is multiplied by as it is read: a global-norm clip's factor (so the clip
   * needs no pass of its own over the gradients), or 1
   */
  gradScale: number;
}

/** one tensor of an AdamW update: parameters p, gradient g, moments m, v (n floats each) */
export interface AdamwTensor<F = FloatArray> {
  p: F;
  g: F;
  m: F;
  v: F;
  n: number;
  /** weight decay applies (matmul weights and embeddings, not biases and LayerNorm gains) */
  decays: boolean;
}
