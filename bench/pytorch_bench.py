#!/usr/bin/python3
"""PyTorch reference timings for minigpt's benchmarks (bench/run.ts runs this with /usr/bin/python3).

A small, faithful GPT-2 as in nanoGPT's model.py (pre-LayerNorm, learned positions, LM head tied to
the token embedding, tanh GELU, GPT-2 init with the residual projections scaled by 1/sqrt(2 n_layer),
torch 1.13's manual causal attention since it has no scaled_dot_product_attention). Parts:

  train-small  one training step of nanoGPT's CPU recipe (4 layers, 4 heads, 128 wide, block 64,
               batch 12, vocab 65): batch sampling, forward, backward, clip 1.0, AdamW
  train-big    the same for the bigger recipe (6 layers, 6 heads, 384 wide, block 256, batch 64)
  gen-nocache  nanoGPT-style sampling (the whole window through the model for every token, logits
               of the last position only) on the bigger recipe's model: 250 tokens after 1
  gen-kv       a GPT-2 124M-shaped model (12 layers, 12 heads, 768 wide, vocab 50257, block 1024,
               random weights) generating 200 tokens after 1 with a key/value cache

OpenBLAS reads OPENBLAS_NUM_THREADS when it is loaded, so every (part, torch threads, OpenBLAS
threads) setting runs in its own child process; the parent prints one JSON object on stdout.

A fair PyTorch: some machines set OPENBLAS_CORETYPE (e.g. Haswell) and OPENBLAS_L2_SIZE in the
environment, a workaround for older OpenBLAS builds that misbehaved on some CPUs. They make OpenBLAS
use that kernel instead of the best one for the CPU: on a 2-core AMD EPYC with AVX-512, Debian's
OpenBLAS 0.3.21 ran sgemm at ~101 GFLOP/s per core with them and ~184 without (its Cooperlake
kernel), with the same results. So this script re-runs itself with both removed before torch is
loaded, and --info prints the kernel OpenBLAS picked (its "Core:" line with OPENBLAS_VERBOSE=2, from
openblas_get_corename) and the CPU (lscpu's "Model name"); bench/run.ts prints both.

  /usr/bin/python3 bench/pytorch_bench.py [--quick] [--parts train-small,gen-kv] [--torch-threads 1,2]
                                          [--blas-threads 1,2] [--settings 1x1,2x2]
  /usr/bin/python3 bench/pytorch_bench.py --info     (torch version, OpenBLAS kernel, CPU; JSON)
"""

import argparse
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "..", "shared", "data", "tinyshakespeare", "input.txt")

# environment variables that pin OpenBLAS to a kernel other than the one it would pick (see above)
PINNING_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def run_unpinned():
    """Re-run this script without PINNING_ENV when either is set: OpenBLAS reads them once, when
    torch loads it, so they must be gone from the process's environment before that."""
    removed = [k for k in PINNING_ENV if k in os.environ]
    if not removed:
        return
    env = {k: v for k, v in os.environ.items() if k not in PINNING_ENV}
    env["MINIGPT_BENCH_UNPINNED"] = ",".join(f"{k}={os.environ[k]}" for k in removed)
    os.execve(sys.executable, [sys.executable, os.path.abspath(__file__), *sys.argv[1:]], env)


def cpu_model():
    """lscpu's "Model name" (what the figures were measured on)"""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    except OSError:
        return "unknown (no lscpu)"
    for line in out.splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def blas_info():
    """the BLAS library torch loaded and, for OpenBLAS, the kernel it chose (the name
    OPENBLAS_VERBOSE=2 prints as "Core: ..."); call after importing torch and running a matmul"""
    import ctypes

    try:
        paths = [line.split()[-1] for line in open("/proc/self/maps") if line.count(" ") >= 5]
        libs = sorted({p for p in paths if "blas" in os.path.basename(p) and ".so" in p})
    except OSError:
        return {"blas": "unknown"}
    for lib in libs:
        try:
            core = ctypes.CDLL(lib).openblas_get_corename
        except (OSError, AttributeError):
            continue
        core.restype = ctypes.c_char_p
        return {"blas": "openblas", "blas_lib": lib, "blas_core": core().decode()}
    return {"blas": "blis" if any("blis" in l for l in libs) else "reference or other", "blas_lib": ", ".join(libs)}


def info():
    import torch

    torch.ones(64, 64) @ torch.ones(64, 64)  # make sure the BLAS is loaded and initialised
    removed = os.environ.get("MINIGPT_BENCH_UNPINNED", "")
    return {
        "torch": torch.__version__,
        **blas_info(),
        "cpu": cpu_model(),
        "openblas_env_removed": removed.split(",") if removed else [],
    }

CONFIGS = {
    "small": dict(n_layer=4, n_head=4, n_embd=128, block_size=64, batch_size=12, vocab_size=65),
    "big": dict(n_layer=6, n_head=6, n_embd=384, block_size=256, batch_size=64, vocab_size=65),
    "gpt2": dict(n_layer=12, n_head=12, n_embd=768, block_size=1024, batch_size=1, vocab_size=50257),
}

# (warm-up steps, timed steps) or (warm-up runs, timed runs), full and --quick. The bigger recipe's
# steps get faster over the first five or so (one 8-step run after one warm-up step: 14.0, 12.2, 11.9,
# 11.9, 11.2, 11.2, 10.8, 12.2 s on an Intel Ice Lake; on the AMD EPYC, 2026-12-06, steps 3-5 took
# 17.8, 13.5, 12.9 s and steps after the fifth 8.3-11.6), so it warms up for 5 either way; minigpt's
# are flat after the first (bench/run.ts gives it 2 or 3).
PLAN = {
    "train-small": {"full": (5, 30), "quick": (3, 10)},
    "train-big": {"full": (5, 3), "quick": (5, 1)},
    "gen-nocache": {"full": (1, 3), "quick": (1, 1)},
    "gen-kv": {"full": (1, 3), "quick": (1, 1)},
}
GEN_TOKENS = {"gen-nocache": 250, "gen-kv": 200}
TEMPERATURE = 0.8


def child(part, torch_threads, quick, serve=False, warmup=None):
    import numpy as np
    import torch
    import torch.nn as nn
    from torch.nn import functional as F

    torch.set_num_threads(torch_threads)
    torch.manual_seed(1337)

    class CausalSelfAttention(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.n_head, self.n_embd = c["n_head"], c["n_embd"]
            self.c_attn = nn.Linear(self.n_embd, 3 * self.n_embd)
            self.c_proj = nn.Linear(self.n_embd, self.n_embd)
            T = c["block_size"]
            self.register_buffer("bias", torch.tril(torch.ones(T, T)).view(1, 1, T, T))

        def forward(self, x):
            B, T, C = x.size()
            q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
            k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
            q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
            v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
            att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
            att = att.masked_fill(self.bias[:, :, :T, :T] == 0, float("-inf"))
            att = F.softmax(att, dim=-1)
            y = (att @ v).transpose(1, 2).contiguous().view(B, T, C)
            return self.c_proj(y)

        def forward_cached(self, x, kc, vc, pos0):
            """x (1,Tn,C) after the pos0 cached positions; kc, vc (1,nh,block,hs) are filled in place."""
            B, Tn, C = x.size()
            nh, hs = self.n_head, C // self.n_head
            q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
            q = q.view(B, Tn, nh, hs).transpose(1, 2)
            kc[:, :, pos0 : pos0 + Tn] = k.view(B, Tn, nh, hs).transpose(1, 2)
            vc[:, :, pos0 : pos0 + Tn] = v.view(B, Tn, nh, hs).transpose(1, 2)
            L = pos0 + Tn
            att = (q @ kc[:, :, :L].transpose(-2, -1)) * (1.0 / math.sqrt(hs))
            if Tn > 1:
                att = att.masked_fill(self.bias[:, :, pos0:L, :L] == 0, float("-inf"))
            att = F.softmax(att, dim=-1)
            y = (att @ vc[:, :, :L]).transpose(1, 2).contiguous().view(B, Tn, C)
            return self.c_proj(y)

    class MLP(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.c_fc = nn.Linear(c["n_embd"], 4 * c["n_embd"])
            self.c_proj = nn.Linear(4 * c["n_embd"], c["n_embd"])

        def forward(self, x):
            return self.c_proj(F.gelu(self.c_fc(x), approximate="tanh"))

    class Block(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.ln_1 = nn.LayerNorm(c["n_embd"])
            self.attn = CausalSelfAttention(c)
            self.ln_2 = nn.LayerNorm(c["n_embd"])
            self.mlp = MLP(c)

        def forward(self, x):
            x = x + self.attn(self.ln_1(x))
            return x + self.mlp(self.ln_2(x))

        def forward_cached(self, x, kc, vc, pos0):
            x = x + self.attn.forward_cached(self.ln_1(x), kc, vc, pos0)
            return x + self.mlp(self.ln_2(x))

    class GPT(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.c = c
            self.wte = nn.Embedding(c["vocab_size"], c["n_embd"])
            self.wpe = nn.Embedding(c["block_size"], c["n_embd"])
            self.h = nn.ModuleList([Block(c) for _ in range(c["n_layer"])])
            self.ln_f = nn.LayerNorm(c["n_embd"])
            self.lm_head = nn.Linear(c["n_embd"], c["vocab_size"], bias=False)
            self.lm_head.weight = self.wte.weight  # tied
            self.apply(self._init)
            for name, p in self.named_parameters():
                if name.endswith("c_proj.weight"):
                    nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * c["n_layer"]))

        @staticmethod
        def _init(m):
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, mean=0.0, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Embedding):
                nn.init.normal_(m.weight, mean=0.0, std=0.02)

        def forward(self, idx, targets=None):
            B, T = idx.size()
            pos = torch.arange(0, T, dtype=torch.long)
            x = self.wte(idx) + self.wpe(pos)
            for block in self.h:
                x = block(x)
            x = self.ln_f(x)
            if targets is not None:
                logits = self.lm_head(x)
                return logits, F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1), ignore_index=-1)
            return self.lm_head(x[:, [-1], :]), None  # inference: the last position only (nanoGPT)

        def forward_cached(self, idx, caches, pos0):
            Tn = idx.size(1)
            pos = torch.arange(pos0, pos0 + Tn, dtype=torch.long)
            x = self.wte(idx) + self.wpe(pos)
            for block, (kc, vc) in zip(self.h, caches):
                x = block.forward_cached(x, kc, vc, pos0)
            return self.lm_head(self.ln_f(x[:, [-1], :]))

        def optimizer(self, lr, betas, weight_decay):
            params = [p for p in self.parameters() if p.requires_grad]
            groups = [
                {"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
                {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
            ]
            return torch.optim.AdamW(groups, lr=lr, betas=betas, eps=1e-8)

    warm, timed = PLAN[part]["quick" if quick else "full"]
    if warmup is not None:
        warm = warmup
    out = {"part": part, "torch_threads": torch_threads, "blas_threads": int(os.environ.get("OPENBLAS_NUM_THREADS", "0"))}

    if part.startswith("train"):
        c = CONFIGS["small" if part == "train-small" else "big"]
        if os.path.exists(DATA):
            text = open(DATA, encoding="utf-8").read()
            chars = sorted(set(text))
            stoi = {ch: i for i, ch in enumerate(chars)}
            data = np.array([stoi[ch] for ch in text[: int(0.9 * len(text))]], dtype=np.uint16)
            out["data"] = "tiny shakespeare"
        else:
            data = np.random.default_rng(0).integers(0, c["vocab_size"], 1_000_000).astype(np.uint16)
            out["data"] = "random tokens"
        B, T = c["batch_size"], c["block_size"]

        def get_batch():  # nanoGPT's get_batch
            ix = torch.randint(len(data) - T, (B,))
            x = torch.stack([torch.from_numpy(data[i : i + T].astype(np.int64)) for i in ix])
            y = torch.stack([torch.from_numpy(data[i + 1 : i + 1 + T].astype(np.int64)) for i in ix])
            return x, y

        model = GPT(c)
        model.train()
        opt = model.optimizer(1e-3, (0.9, 0.99), 0.1)

        def step():
            x, y = get_batch()
            _, loss = model(x, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            return loss.item()

        if serve:
            # as bench/train-step.ts --serve: warm up, then N steps per line of stdin, times per line out
            for _ in range(warm):
                step()
            print(json.dumps({"ready": True}), flush=True)
            for line in sys.stdin:
                n = int(line) if line.strip().isdigit() else 0
                ts = []
                for _ in range(n):
                    t0 = time.perf_counter()
                    step()
                    ts.append((time.perf_counter() - t0) * 1000)
                print(json.dumps({"times": ts}), flush=True)
            return
        times, losses = [], []
        for i in range(warm + timed):
            t0 = time.perf_counter()
            lv = step()
            if i >= warm:
                times.append((time.perf_counter() - t0) * 1000)
                losses.append(lv)
        out.update(
            median_ms=statistics.median(times),
            min_ms=min(times),
            steps=timed,
            warmup=warm,
            tokens_per_s=B * T * 1000 / statistics.median(times),
            params=sum(p.numel() for p in model.parameters()),
            last_loss=losses[-1],
        )
    else:
        c = CONFIGS["big" if part == "gen-nocache" else "gpt2"]
        n = GEN_TOKENS[part]
        model = GPT(c)
        model.eval()
        gen = torch.Generator().manual_seed(42)

        def sample(logits):
            probs = F.softmax(logits[:, -1, :] / TEMPERATURE, dim=-1)
            return torch.multinomial(probs, num_samples=1, generator=gen)

        def run_nocache(tokens):  # nanoGPT's GPT.generate
            idx = torch.zeros((1, 1), dtype=torch.long)
            for _ in range(tokens):
                idx_cond = idx if idx.size(1) <= c["block_size"] else idx[:, -c["block_size"] :]
                logits, _ = model(idx_cond)
                idx = torch.cat((idx, sample(logits)), dim=1)
            return idx

        hs = c["n_embd"] // c["n_head"]
        caches = [
            (torch.zeros(1, c["n_head"], c["block_size"], hs), torch.zeros(1, c["n_head"], c["block_size"], hs)) for _ in range(c["n_layer"])
        ]

        def run_kv(tokens):
            idx = torch.full((1, 1), 50256, dtype=torch.long)
            logits = model.forward_cached(idx, caches, 0)
            ids = [50256]
            for _ in range(tokens):
                nxt = sample(logits)
                ids.append(int(nxt))
                if len(ids) == tokens + 1:
                    break
                logits = model.forward_cached(nxt, caches, len(ids) - 1)
            return ids

        run = run_nocache if part == "gen-nocache" else run_kv
        times = []
        with torch.no_grad():
            for i in range(warm + timed):
                t0 = time.perf_counter()
                run(n if i >= warm else 20)
                if i >= warm:
                    times.append((time.perf_counter() - t0) * 1000)
        med = statistics.median(times)
        out.update(median_ms=med, tokens=n, runs=timed, tokens_per_s=n * 1000 / med, params=sum(p.numel() for p in model.parameters()))

    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out.update(info())
    print(json.dumps(out))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--parts", default="train-small,train-big,gen-nocache,gen-kv")
    ap.add_argument("--torch-threads", default="1,2")
    ap.add_argument("--blas-threads", default="1,2")
    ap.add_argument("--settings", help="explicit TORCHxBLAS thread pairs, e.g. 1x1,2x2 (instead of the grid)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--serve", action="store_true", help="with --child train-small or train-big: steps on request (see bench/train-step.ts --serve)")
    ap.add_argument("--info", action="store_true", help="print torch's version, the OpenBLAS kernel and the CPU as JSON")
    ap.add_argument("--warmup", type=int, help="with --child: warm-up steps (or runs) instead of the plan's")
    a = ap.parse_args()
    run_unpinned()
    if a.info:
        print(json.dumps(info()))
        return
    if a.child:
        child(a.child, int(a.torch_threads), a.quick, a.serve, a.warmup)
        return
    if a.settings:
        settings = [tuple(int(n) for n in s.split("x")) for s in a.settings.split(",")]
    else:
        settings = [(int(t), int(b)) for t in a.torch_threads.split(",") for b in a.blas_threads.split(",")]
    results = []
    for part in a.parts.split(","):
        for tt, bt in settings:
            env = dict(os.environ, OPENBLAS_NUM_THREADS=str(bt))
            cmd = [sys.executable, os.path.abspath(__file__), "--child", part, "--torch-threads", str(tt)] + (["--quick"] if a.quick else [])
            print(f"pytorch: {part} torch threads {tt}, OpenBLAS threads {bt}", file=sys.stderr, flush=True)
            p = subprocess.run(cmd, env=env, capture_output=True, text=True)
            if p.returncode != 0:
                results.append({"part": part, "torch_threads": tt, "blas_threads": bt, "error": p.stderr.strip().splitlines()[-1:]})
                print(p.stderr, file=sys.stderr)
                continue
            r = json.loads(p.stdout.strip().splitlines()[-1])
            print(f"  {r['median_ms']:.1f} ms, peak RSS {r['peak_rss_mb']:.0f} MB ({r.get('blas')} {r.get('blas_core', '')})", file=sys.stderr, flush=True)
            results.append(r)
    best = {}
    for r in results:
        if "median_ms" in r and (r["part"] not in best or r["median_ms"] < best[r["part"]]["median_ms"]):
            best[r["part"]] = r
    print(json.dumps({"quick": a.quick, "results": results, "best": best}, indent=1))


if __name__ == "__main__":
    main()
