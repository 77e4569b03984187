#!/usr/bin/env python3
"""PyTorch on CUDA, the same parts as bench/webgpu.ts, fp32 with TF32 off (as the WebGPU kernels):

  matmul  GFLOP/s of a·b, a·bT, aT·b on 4096-sized products and GPT-2 124M's shapes (8192 rows)
  train   one training step (forward, backward, clip 1.0, AdamW, loss.item()) of nanoGPT's CPU recipe
          (small), the bigger recipe (big) and a GPT-2 124M-shaped model (gpt2, batch 8, block 1024)
  decode  tokens/s of one-token steps of the GPT-2 124M shape with a KV cache, the logits brought to
          the CPU every token

PyTorch eager (no torch.compile), a faithful nanoGPT model (pre-LayerNorm, learned positions, tied
LM head, tanh GELU). Prints one JSON object per measurement on stdout.

  python3 bench/webgpu_torch.py [--parts matmul,train,decode] [--recipes small,big,gpt2] [--quick]
"""

import argparse
import json
import math
import statistics
import time

import torch
import torch.nn as nn
from torch.nn import functional as F

torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
torch.set_float32_matmul_precision("highest")
dev = "cuda"
NAME = torch.cuda.get_device_name(0)

RECIPES = {
    "small": dict(n_layer=4, n_head=4, n_embd=128, block_size=64, batch_size=12, vocab_size=65),
    "big": dict(n_layer=6, n_head=6, n_embd=384, block_size=256, batch_size=64, vocab_size=65),
    "gpt2": dict(n_layer=12, n_head=12, n_embd=768, block_size=1024, batch_size=8, vocab_size=50257),
}


def emit(**o):
    print(json.dumps({"device": NAME, "torch": torch.__version__, **o}), flush=True)


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        C = c["n_embd"]
        self.nh = c["n_head"]
        self.ln_1, self.ln_2 = nn.LayerNorm(C), nn.LayerNorm(C)
        self.c_attn, self.attn_proj = nn.Linear(C, 3 * C), nn.Linear(C, C)
        self.c_fc, self.mlp_proj = nn.Linear(C, 4 * C), nn.Linear(4 * C, C)

    def attn(self, x, cache=None, pos0=0):
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)
        q, k, v = (t.view(B, T, self.nh, C // self.nh).transpose(1, 2) for t in (q, k, v))
        if cache is None:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            kc, vc = cache
            kc[:, :, pos0 : pos0 + T] = k
            vc[:, :, pos0 : pos0 + T] = v
            y = F.scaled_dot_product_attention(q, kc[:, :, : pos0 + T], vc[:, :, : pos0 + T])
        return self.attn_proj(y.transpose(1, 2).contiguous().view(B, T, C))

    def forward(self, x, cache=None, pos0=0):
        x = x + self.attn(self.ln_1(x), cache, pos0)
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))


class GPT(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.wte = nn.Embedding(c["vocab_size"], c["n_embd"])
        self.wpe = nn.Embedding(c["block_size"], c["n_embd"])
        self.h = nn.ModuleList([Block(c) for _ in range(c["n_layer"])])
        self.ln_f = nn.LayerNorm(c["n_embd"])
        for p in self.parameters():
            if p.dim() >= 2:
                nn.init.normal_(p, std=0.02)

    def forward(self, idx, targets=None, caches=None, pos0=0):
        T = idx.size(1)
        x = self.wte(idx) + self.wpe(torch.arange(pos0, pos0 + T, device=idx.device))
        for i, block in enumerate(self.h):
            x = block(x, None if caches is None else caches[i], pos0)
        logits = self.ln_f(x) @ self.wte.weight.t()
        if targets is None:
            return logits
        return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))


def cuda_time(fn, warm, min_s):
    for _ in range(warm):
        fn()
    torch.cuda.synchronize()
    n, t0 = 0, time.perf_counter()
    while n < 3 or time.perf_counter() - t0 < min_s:
        fn()
        n += 1
    torch.cuda.synchronize()
    return (time.perf_counter() - t0) / n


def matmul(quick):
    shapes = [
        ("4096 a·b", "nn", 4096, 4096, 4096),
        ("4096 a·bT", "nt", 4096, 4096, 4096),
        ("4096 aT·b", "tn", 4096, 4096, 4096),
        ("c_attn x·w", "nn", 8192, 768, 2304),
        ("c_fc x·w", "nn", 8192, 768, 3072),
        ("mlp c_proj x·w", "nn", 8192, 3072, 768),
        ("c_fc dx = dy·wT", "nt", 8192, 3072, 768),
        ("c_fc dw = xT·dy", "tn", 768, 8192, 3072),
        ("LM head x·wteT", "nt", 8192, 768, 50257),
    ]
    for label, layout, M, K, N in shapes[:3] if quick else shapes:
        a = torch.randn(*((K, M) if layout == "tn" else (M, K)), device=dev)
        b = torch.randn(*((N, K) if layout == "nt" else (K, N)), device=dev)
        op = {"nn": lambda: a @ b, "nt": lambda: a @ b.t(), "tn": lambda: a.t() @ b}[layout]
        s = cuda_time(op, 3, 0.3 if quick else 1.0)
        emit(part="matmul", label=label, M=M, K=K, N=N, ms=s * 1000, gflops=2 * M * K * N / s / 1e9)


def train(names, quick):
    for name in names:
        c = RECIPES[name]
        torch.manual_seed(1337)
        model = GPT(c).to(dev)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.95), weight_decay=0.1)
        B, T, V = c["batch_size"], c["block_size"], c["vocab_size"]

        def step():
            ids = torch.randint(0, V, (B, T + 1), device=dev)
            opt.zero_grad(set_to_none=True)
            loss = model(ids[:, :-1], ids[:, 1:])
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            return loss.item()

        for _ in range(1 if quick else 3):
            step()
        times = []
        for _ in range(3 if quick else (10 if name == "gpt2" else 20)):
            t0 = time.perf_counter()
            loss = step()
            times.append((time.perf_counter() - t0) * 1000)
        ms = statistics.median(times)
        emit(part=f"train-{name}", step_ms=ms, tokens_per_s=B * T * 1000 / ms, loss=loss)
        del model, opt
        torch.cuda.empty_cache()


@torch.no_grad()
def decode(quick):
    c = RECIPES["gpt2"]
    model = GPT(c).to(dev).eval()
    nh, C, L = c["n_head"], c["n_embd"], c["n_layer"]
    caches = [
        (torch.zeros(1, nh, c["block_size"], C // nh, device=dev), torch.zeros(1, nh, c["block_size"], C // nh, device=dev))
        for _ in range(L)
    ]
    tok = torch.zeros(1, 1, dtype=torch.long, device=dev)
    tokens = 20 if quick else 200
    for pos in range(5):
        tok = model(tok, caches=caches, pos0=pos)[:, -1].argmax(-1, keepdim=True)
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for pos in range(tokens):
        tok = model(tok, caches=caches, pos0=pos)[:, -1].argmax(-1, keepdim=True)
        tok.item()
    s = time.perf_counter() - t0
    emit(part="decode-gpt2-kv", tokens=tokens, tokens_per_s=tokens / s, ms_per_token=s * 1000 / tokens)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--parts", default="matmul,train,decode")
    ap.add_argument("--recipes", default="small,big,gpt2")
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    parts = a.parts.split(",")
    if "matmul" in parts:
        matmul(a.quick)
    if "train" in parts:
        train(a.recipes.split(","), a.quick)
    if "decode" in parts:
        decode(a.quick)
