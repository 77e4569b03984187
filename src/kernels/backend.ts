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
 */
export type FloatArray = Float32Array | Float64Array;

/** one row of a batched decode step: its sequence's KV cache of one layer, and the row's position */
export interface CachedRow {
  /** (Tmax,C) */
  keys: FloatArray;
  values: FloatArray;
  pos: number;
}

export interface Backend {
  readonly name: string;

  // ---- matmul, the three layouts training needs -------------------------------------------
  /** a (M,K), b (K,N) -> out (M,N) = a·b (accumulate: out += a·b) */
  matmul(out: FloatArray, a: FloatArray, b: FloatArray, M: number, K: number, N: number, accumulate: boolean): void;
  /** a (M,K), b (N,K) -> out (M,N) = a·bᵀ (accumulate: out += a·bᵀ) */
  matmulBT(out: FloatArray, a: FloatArray, b: FloatArray, M: number, K: number, N: number, accumulate: boolean): void;
  /** a (K,M), b (K,N) -> out (M,N) = aᵀ·b (accumulate: out += aᵀ·b) */
  matmulAT(out: FloatArray, a: FloatArray, b: FloatArray, M: number, K: number, N: number, accumulate: boolean): void;

  /** x (M,K), w (K,N), bias (N) or null -> out (M,N) = x·w + bias: a linear layer's forward */
  linearForward(out: FloatArray, x: FloatArray, w: FloatArray, bias: FloatArray | null, M: number, K: number, N: number): void;
  /**
   * The backward of out = x·w + b with dy (M,N): dx (M,K) += dy·wᵀ (= with overwriteDx), dw (K,N) += xᵀ·dy,
   * db (N) += Σ_rows dy; a null output is skipped. One call, so that a threaded backend can run the two independent
   * products side by side (one synchronisation, each product whole) instead of splitting each.
   */
  linearBackward(
    dx: FloatArray | null,
    dw: FloatArray | null,
    db: FloatArray | null,
    dy: FloatArray,
    x: FloatArray,
    w: FloatArray,
    M: number,
    K: number,
    N: number,
    overwriteDx?: boolean,
  ): void;

  // ---- elementwise and reductions ---------------------------------------------------------
  /** out (rows,cols) += bias (cols) broadcast over rows */
  addBias(out: FloatArray, bias: FloatArray, rows: number, cols: number): void;
  /** x (rows,cols) -> out (cols) += column sums of x (the bias gradient) */
  sumRows(out: FloatArray, x: FloatArray, rows: number, cols: number): void;
  /** x (n) = 0 */
  zero(x: FloatArray, n: number): void;
  /** dst (n) = src */
  copy(dst: FloatArray, src: FloatArray, n: number): void;
  /** out (n) = a + b */
  add(out: FloatArray, a: FloatArray, b: FloatArray, n: number): void;
  /** dst (n) += src */
  accumulate(dst: FloatArray, src: FloatArray, n: number): void;
  /** x (n) *= s */
  scale(x: FloatArray, n: number, s: number): void;
  /** sum of x², accumulated in float64 (for the global gradient norm) */
  sumSquares(x: FloatArray, n: number): number;
  /** out (n) = x * mask; mask holds 0 or 1/(1-p) (inverted dropout; the same call is its backward) */
  mul(out: FloatArray, x: FloatArray, mask: FloatArray, n: number): void;

  // ---- layer norm -------------------------------------------------------------------------
  /** x (N,C), w (C), b (C) -> out (N,C); saves mean (N) and rstd (N) = 1/sqrt(var + eps) */
  layernormForward(
    out: FloatArray,
    mean: FloatArray,
    rstd: FloatArray,
    x: FloatArray,
    w: FloatArray,
    b: FloatArray,
    N: number,
    C: number,
    eps: number,
  ): void;
  /** dout (N,C) -> dx (N,C) +=, dw (C) +=, db (C) += */
  layernormBackward(
    dx: FloatArray,
    dw: FloatArray,
    db: FloatArray,
    dout: FloatArray,
    x: FloatArray,
    w: FloatArray,
    mean: FloatArray,
    rstd: FloatArray,
    N: number,
    C: number,
  ): void;

  // ---- activations ------------------------------------------------------------------------
  /** GELU, tanh approximation (GPT-2's "gelu_new"): out (n) = gelu(x) */
  geluForward(out: FloatArray, x: FloatArray, n: number): void;
  /** dx (n) += gelu'(x) * dout */
  geluBackward(dx: FloatArray, x: FloatArray, dout: FloatArray, n: number): void;
  /**
   * out (n) = gelu(x) and dgelu (n) = gelu'(x) in one pass (dgelu may be x itself): the forward of a
   * GELU whose input is not needed afterwards (src/ops/gelu.ts linearGelu); its backward is then
   * dgelu·dout, a multiply instead of a second tanh
   */
  geluForwardGrad(out: FloatArray, dgelu: FloatArray, x: FloatArray, n: number): void;
  reluForward(out: FloatArray, x: FloatArray, n: number): void;
  reluBackward(dx: FloatArray, x: FloatArray, dout: FloatArray, n: number): void;

  // ---- causal self-attention, fused ---------------------------------------------------------
  /**
   * qkv (B,T,3C) laid out [q | k | v] along the last axis, heads split as (nh, hs) inside each ->
   * out (B,T,C) = softmax(q·kᵀ/√hs + causal mask)·v, heads concatenated.
   * Saves only lse (B,nh,T), the log-sum-exp of each score row: the (B,nh,T,T) probabilities are
   * recomputed in backward instead of kept alive.
   */
  attentionForward(out: FloatArray, lse: FloatArray, qkv: FloatArray, B: number, T: number, C: number, nh: number): void;
  /** dout (B,T,C) -> dqkv (B,T,3C) += ; needs the forward's out and lse */
  attentionBackward(
    dqkv: FloatArray,
    dout: FloatArray,
    qkv: FloatArray,
    out: FloatArray,
    lse: FloatArray,
    B: number,
    T: number,
    C: number,
    nh: number,
  ): void;
  /**
   * Attention for generation with a KV cache (no batch). qkv (Tn,3C) holds the Tn new positions
   * pos0 .. pos0+Tn-1; their k and v must already be written to kCache/vCache (Tmax,C) rows.
   * New position p attends to cache rows 0..p. -> out (Tn,C)
   */
  attentionCached(
    out: FloatArray,
    qkv: FloatArray,
    kCache: FloatArray,
    vCache: FloatArray,
    Tn: number,
    pos0: number,
    C: number,
    nh: number,
  ): void;

  // ---- one-token decode of R sequences at once (generation) -----------------------------------------
  // Each of R rows is the next token of its own sequence. Every kernel here gives each row exactly the
  // bits a call for that row alone gives (a row's summation order does not depend on R or on the other
  // rows), so a sequence decoded in a batch equals it decoded alone; the weights are read once for all.

  /** x (M,K), w (K,N), bias (N) or null -> out (M,N) = x·w + bias, each row as a one-row call */
  linearRows(out: FloatArray, x: FloatArray, w: FloatArray, bias: FloatArray | null, M: number, K: number, N: number): void;
  /** a (M,K), b (N,K) -> out (M,N) = a·bᵀ, each row as a one-row call (the LM head) */
  matmulBTRows(out: FloatArray, a: FloatArray, b: FloatArray, M: number, K: number, N: number): void;
  /**
   * R rows' MLP: h (R,H) = act(a·wfc + bfc), y (R,C) = h·wproj + bproj, act GELU (tanh) or ReLU.
   * a (R,C), wfc (C,H), bfc (H), wproj (H,C), bproj (C). Exactly linearRows, the activation (in place
   * on h) and linearRows; a fast backend runs it as one task per thread.
   */
  mlpRows(
    y: FloatArray,
    h: FloatArray,
    a: FloatArray,
    R: number,
    wfc: FloatArray,
    bfc: FloatArray,
    wproj: FloatArray,
    bproj: FloatArray,
    C: number,
    H: number,
    relu: boolean,
  ): void;
  /**
   * R new tokens' attention block, row r at position rows[r].pos of its own sequence:
   * qkv (R,3C) = a·wattn + battn; row r's k and v are written to row pos of rows[r].keys / .values
   * (Tmax,C); att[r] (C) = attentionCached over that cache's rows 0..pos; y (R,C) = att·wproj + bproj.
   * Exactly linearRows, the copies, attentionCached per row and linearRows.
   */
  attentionRows(
    y: FloatArray,
    att: FloatArray,
    qkv: FloatArray,
    a: FloatArray,
    rows: readonly CachedRow[],
    wattn: FloatArray,
    battn: FloatArray,
    wproj: FloatArray,
    bproj: FloatArray,
    C: number,
    nh: number,
  ): void;

  // ---- softmax, cross-entropy, embedding ------------------------------------------------------
  /** x (rows,cols) -> out (rows,cols) = softmax over each row */
  softmax(out: FloatArray, x: FloatArray, rows: number, cols: number): void;
  /**
   * logits (N,V), targets (N) -> losses (N) = -log softmax(logits)[target], lse (N) saved.
   * A target of -1 is ignored: its loss is 0 (the caller divides by the number counted).
   */
  crossEntropyForward(losses: FloatArray, lse: FloatArray, logits: FloatArray, targets: Int32Array, N: number, V: number): void;
  /** dlogits (N,V) += scale * (softmax(logits) - onehot(target)), rows with target -1 untouched */
  crossEntropyBackward(
    dlogits: FloatArray,
    logits: FloatArray,
    lse: FloatArray,
    targets: Int32Array,
    N: number,
    V: number,
    scale: number,
  ): void;
  /** ids (N), table (V,C) -> out (N,C) = table[ids] */
  embeddingForward(out: FloatArray, ids: Int32Array, table: FloatArray, N: number, C: number): void;
  /** dtable (V,C) += scatter-add of dout (N,C) rows at ids */
  embeddingBackward(dtable: FloatArray, dout: FloatArray, ids: Int32Array, N: number, C: number): void;

  // ---- optimizer --------------------------------------------------------------------------
  /**
   * One AdamW update of n parameters, PyTorch's formulation:
   *   p -= lr*wd*p;  m = b1*m + (1-b1)*g;  v = b2*v + (1-b2)*g²;
   *   p -= lr * (m/bc1) / (sqrt(v/bc2) + eps)     with bc1 = 1-b1^t, bc2 = 1-b2^t
   */
  adamw(
    p: FloatArray,
    g: FloatArray,
    m: FloatArray,
    v: FloatArray,
    n: number,
    lr: number,
    beta1: number,
    beta2: number,
    eps: number,
    weightDecay: number,
    bc1: number,
    bc2: number,
  ): void;
}
