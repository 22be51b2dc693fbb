# PyTorch CPU on the same work as `npm run bench`'s real-shape rows, for bench/pytorch.ts: a Llama of SmolLM2-135M's
# exact shape with random float32 weights, a LoRA adapter (rank 8, alpha 16, on the same modules as webtune's default:
# all seven linear ones) trained with AdamW on random tokens, then greedy decoding with a KV cache after a short
# prompt. Written plainly here (no transformers/peft: a machine with Debian's python3-torch has neither), to time the
# same arithmetic webtune does; it is not a numerical reference. Prints one JSON line.
#
# python3 bench/pytorch.py --threads N [--seq 128 --batch 4 --steps 2 --context 16 --decode 16]
# The thread count goes to torch (intra-op) and to the BLAS it calls (OPENBLAS_NUM_THREADS / OMP_NUM_THREADS, which
# bench/pytorch.ts sets before the interpreter starts, as they are read when the library loads).
import argparse
import json
import math
import time

import torch
import torch.nn.functional as F

SHAPE = dict(hidden=576, layers=30, heads=9, kv_heads=3, intermediate=1536, vocab=49152, theta=100000.0, eps=1e-5)
# Whether the adapter's term is computed: off while decoding, as webtune's benchmark decodes the base model.
ADAPTER_ON = [True]
TARGETS = ('q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj')


class LoraLinear(torch.nn.Module):
    """A frozen float32 weight [out, in] and a trainable rank-r pair: y = x·Wᵀ + (alpha/r)·(x·Aᵀ)·Bᵀ."""

    def __init__(self, n_in, n_out, rank, alpha, adapted):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.randn(n_out, n_in) * 0.02, requires_grad=False)
        self.a = torch.nn.Parameter(torch.randn(rank, n_in) / math.sqrt(n_in)) if adapted else None
        self.b = torch.nn.Parameter(torch.zeros(n_out, rank)) if adapted else None
        self.scale = alpha / rank

    def forward(self, x):
        y = x @ self.weight.t()
        if self.a is not None and ADAPTER_ON[0]:
            y = y + self.scale * ((x @ self.a.t()) @ self.b.t())
        return y


def rms_norm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rotary(x, cos, sin):  # x [B, H, T, D]; the halves rotated, as Llama's checkpoints expect
    h = x.shape[-1] // 2
    rot = torch.cat((-x[..., h:], x[..., :h]), -1)
    return x * cos + rot * sin


class Model(torch.nn.Module):
    def __init__(self, s, rank, alpha, targets):
        super().__init__()
        self.s = s
        d, f = s['hidden'], s['intermediate']
        self.head_dim = d // s['heads']
        kv = s['kv_heads'] * self.head_dim
        self.embed = torch.nn.Parameter(torch.randn(s['vocab'], d) * 0.02, requires_grad=False)  # tied head
        self.final_norm = torch.nn.Parameter(torch.ones(d), requires_grad=False)
        shapes = dict(q_proj=(d, d), k_proj=(d, kv), v_proj=(d, kv), o_proj=(d, d), gate_proj=(d, f), up_proj=(d, f), down_proj=(f, d))
        self.blocks = torch.nn.ModuleList()
        for _ in range(s['layers']):
            block = torch.nn.ModuleDict({name: LoraLinear(i, o, rank, alpha, name in targets) for name, (i, o) in shapes.items()})
            block.norm1 = torch.nn.Parameter(torch.ones(d), requires_grad=False)
            block.norm2 = torch.nn.Parameter(torch.ones(d), requires_grad=False)
            self.blocks.append(block)

    def rope(self, start, T):
        D = self.head_dim
        inv = self.s['theta'] ** (-torch.arange(0, D, 2, dtype=torch.float32) / D)
        ang = torch.arange(start, start + T, dtype=torch.float32)[:, None] * inv[None, :]
        ang = torch.cat((ang, ang), -1)
        return ang.cos(), ang.sin()

    def attention(self, blk, x, cos, sin, cache):  # x [B, T, C]
        B, T, _ = x.shape
        H, KV, D = self.s['heads'], self.s['kv_heads'], self.head_dim
        q = blk['q_proj'](x).view(B, T, H, D).transpose(1, 2)  # [B, H, T, D]
        k = blk['k_proj'](x).view(B, T, KV, D).transpose(1, 2)  # [B, KV, T, D]
        v = blk['v_proj'](x).view(B, T, KV, D).transpose(1, 2)
        q, k = rotary(q, cos, sin), rotary(k, cos, sin)
        if cache is not None:
            if 'k' in cache:
                k, v = torch.cat((cache['k'], k), 2), torch.cat((cache['v'], v), 2)
            cache['k'], cache['v'] = k, v
        k, v = k.repeat_interleave(H // KV, 1), v.repeat_interleave(H // KV, 1)
        att = (q @ k.transpose(-1, -2)) / math.sqrt(D)  # [B, H, T, S]
        S = k.shape[2]
        mask = torch.ones(T, S, dtype=torch.bool).tril(S - T)
        att = att.masked_fill(~mask, float('-inf')).softmax(-1)
        y = (att @ v).transpose(1, 2).reshape(B, T, H * D)
        return blk['o_proj'](y)

    def forward(self, ids, caches=None, start=0):  # ids [B, T] → logits [B, T, V]
        x = self.embed[ids]
        cos, sin = self.rope(start, ids.shape[1])
        eps = self.s['eps']
        for i, blk in enumerate(self.blocks):
            x = x + self.attention(blk, rms_norm(x, blk.norm1, eps), cos, sin, None if caches is None else caches[i])
            h = rms_norm(x, blk.norm2, eps)
            x = x + blk['down_proj'](F.silu(blk['gate_proj'](h)) * blk['up_proj'](h))
        return rms_norm(x, self.final_norm, eps) @ self.embed.t()


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--threads', type=int, required=True)
    p.add_argument('--seq', type=int, default=128)
    p.add_argument('--batch', type=int, default=4)
    p.add_argument('--steps', type=int, default=2)
    p.add_argument('--context', type=int, default=16)
    p.add_argument('--decode', type=int, default=16)
    p.add_argument('--targets', default=','.join(TARGETS))
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(7)
    model = Model(SHAPE, 8, 16, a.targets.split(','))
    V = SHAPE['vocab']

    # Decoding the base (no adapter term): greedy, KV cache, after a prompt of `context` tokens; tokens/s over the new
    # tokens (median of 3 runs).
    def decode():
        ids = torch.randint(0, V, (1, a.context))
        caches = [{} for _ in range(SHAPE['layers'])]
        with torch.no_grad():
            nxt = model(ids, caches)[:, -1].argmax(-1, keepdim=True)
            t0 = time.perf_counter()
            for i in range(a.decode - 1):
                nxt = model(nxt, caches, a.context + i)[:, -1].argmax(-1, keepdim=True)
            return (a.decode - 1) / (time.perf_counter() - t0)

    ADAPTER_ON[0] = False
    decode()
    decode_tps = sorted(decode() for _ in range(3))[1]
    ADAPTER_ON[0] = True

    # Training: the full step (forward, loss, backward, AdamW on the adapter), after one warm-up step.
    params = [q for q in model.parameters() if q.requires_grad]
    opt = torch.optim.AdamW(params, lr=2e-4, weight_decay=0.0)
    data = torch.randint(0, V, (a.batch, a.seq + 1))

    def step():
        logits = model(data[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, V), data[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.item()

    step()
    t0 = time.perf_counter()
    for _ in range(a.steps):
        step()
    train_tps = a.steps * a.batch * a.seq / (time.perf_counter() - t0)

    # The BLAS's own rate on this many threads: a plain 1024³ float32 product, best of 5.
    x, y = torch.randn(1024, 1024), torch.randn(1024, 1024)
    x @ y
    best = min(timed(lambda: x @ y) for _ in range(5))
    print(json.dumps(dict(torch=torch.__version__, threads=a.threads, blas=blas_name(), trainTokensPerSecond=train_tps,
                          decodeTokensPerSecond=decode_tps, matmul1024Gflops=2 * 1024 ** 3 / best / 1e9)))


def timed(f):
    t0 = time.perf_counter()
    f()
    return time.perf_counter() - t0


def blas_name():
    """The BLAS library this process has loaded (Debian's torch calls whichever libblas.so.3 the system points at)."""
    import os
    with open('/proc/self/maps') as maps:
        paths = {line.split()[-1] for line in maps if 'blas' in line.lower() and '/' in line}
    return ', '.join(sorted(os.path.realpath(q) for q in paths)) or 'unknown'


if __name__ == '__main__':
    main()
