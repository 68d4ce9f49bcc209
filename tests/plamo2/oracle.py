#!/usr/bin/env python3
"""A second, independent PLaMo-2 forward pass, in float64 plain Python.

    oracle.py MODEL_DIR TOKENS OUT.npy      (TOKENS: comma-separated ids)

It reads config.json and model.safetensors (F32 or BF16, the released
layout) and writes the logits at every position as float32 [N, V], for
tests/bin/npycmp to hold lmcc's output against.  It is written from
mlx-lm's plamo2.py and ssm.py, and computes as they do with cache=None,
not as lmcc does: the whole sequence at once, the convolution over a
zero-padded input, the state space layer in the closed form of ssm_attn
(every output a sum over all earlier tokens, weighted by C.B and the decay
between them) rather than a recurrence, attention with an explicit causal
mask.  Slow, but the test models are tiny.
"""
import json
import math
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from oracle_lib import load, rows, linear, rmsnorm, silu, write_npy  # noqa: E402

DT_MIN, DT_MAX = 0.001, 100.0


def is_mamba(cfg, i):
    if not cfg.get("mamba_enabled", True):
        return False
    L, step = cfg["num_hidden_layers"], cfg["mamba_step"]
    if L <= step // 2:
        return i != L - 1
    return i % step != step // 2


def softplus(v):
    return max(v, 0) + math.log1p(math.exp(-abs(v)))


def mamba(cfg, w, xn):
    N, hd = len(xn), cfg["hidden_size_per_head"]
    nh, ds, K = cfg["mamba_num_heads"], cfg["mamba_d_state"], cfg["mamba_d_conv"]
    eps, C_ = cfg["rms_norm_eps"], nh * hd
    zx = [linear(r, rows(w("in_proj.weight"))) for r in xn]
    # per head h: zx[2 h hd : 2 h hd + hd] is z, the next hd are x
    z = [[r[2 * hd * h + j] for h in range(nh) for j in range(hd)] for r in zx]
    xi = [[r[2 * hd * h + hd + j] for h in range(nh) for j in range(hd)] for r in zx]
    cw = w("conv1d.weight")[0]                     # [C, 1, K]
    xc = [[silu(sum(cw[c * K + j] * xi[t - (K - 1) + j][c]
                    for j in range(K) if t - (K - 1) + j >= 0))
           for c in range(C_)] for t in range(N)]
    bcdt = rows(w("bcdt_proj.weight"))
    Bs = [rmsnorm(linear(r, bcdt[:ds]), w("B_norm_weight")[0], eps) for r in xc]
    Cs = [rmsnorm(linear(r, bcdt[ds:2 * ds]), w("C_norm_weight")[0], eps) for r in xc]
    dts = [linear(rmsnorm(linear(r, bcdt[2 * ds:]), w("dt_norm_weight")[0], eps),
                  rows(w("dt_proj.weight"))) for r in xc]
    bias, alog, D = w("dt_bias")[0], w("A_log")[0], w("D")[0]
    step = [[min(max(softplus(dts[t][h] + bias[h]), DT_MIN), DT_MAX) for h in range(nh)]
            for t in range(N)]
    cum = [[sum(step[r][h] for r in range(t + 1)) for h in range(nh)] for t in range(N)]
    out = []
    for t in range(N):
        y = []
        for h in range(nh):
            A = -math.exp(alog[h])
            # weight of token s in token t's output, all of this head's channels
            ws = [sum(a * b for a, b in zip(Cs[t], Bs[s])) * math.exp(A * (cum[t][h] - cum[s][h]))
                  * step[s][h] for s in range(t + 1)]
            for j in range(hd):
                c = h * hd + j
                v = sum(ws[s] * xc[s][c] for s in range(t + 1)) + D[h] * xc[t][c]
                y.append(silu(z[t][c]) * v)
        out.append(linear(y, rows(w("out_proj.weight"))))
    return out


def rope(v, pos):
    d = len(v) // 2
    out = list(v)
    for j in range(d):
        a = pos * 10000.0 ** (-2.0 * j / len(v))
        c, s = math.cos(a), math.sin(a)
        out[j] = v[j] * c - v[j + d] * s
        out[j + d] = v[j] * s + v[j + d] * c
    return out


def attention(cfg, w, xn):
    N, hd = len(xn), cfg["hidden_size_per_head"]
    H, KV = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    qkv = [linear(r, rows(w("qkv_proj.weight"))) for r in xn]
    qw, kw = rows(w("q_weight")), rows(w("k_weight"))
    heads = lambda r, a, n: [r[(a + h) * hd:(a + h + 1) * hd] for h in range(n)]  # noqa: E731
    q = [[rope(rmsnorm(v, qw[h], 1e-6), t) for h, v in enumerate(heads(r, 0, H))]
         for t, r in enumerate(qkv)]
    k = [[rope(rmsnorm(v, kw[h], 1e-6), t) for h, v in enumerate(heads(r, H, KV))]
         for t, r in enumerate(qkv)]
    v = [heads(r, H + KV, KV) for r in qkv]
    out = []
    for t in range(N):
        o = []
        for h in range(H):
            g = h // (H // KV)
            s = [sum(a * b for a, b in zip(q[t][h], k[p][g])) / math.sqrt(hd) for p in range(t + 1)]
            m = max(s)
            e = [math.exp(a - m) for a in s]
            o += [sum(e[p] * v[p][g][c] for p in range(t + 1)) / sum(e) for c in range(hd)]
        out.append(linear(o, rows(w("o_proj.weight"))))
    return out


def main():
    mdir, toks, out = sys.argv[1:4]
    cfg = json.load(open(mdir + "/config.json"))
    W = load(mdir + "/model.safetensors")
    tok = [int(t) for t in toks.split(",")]
    eps, I = cfg["rms_norm_eps"], cfg["intermediate_size"]

    def norm(rs, name, offset):
        wt = [a + offset for a in W[name][0]]
        return [rmsnorm(r, wt, eps) for r in rs]

    def add(a, b):
        return [[p + q for p, q in zip(r, s)] for r, s in zip(a, b)]

    emb = rows(W["model.embed_tokens.weight"])
    x = [list(emb[t]) for t in tok]
    for i in range(cfg["num_hidden_layers"]):
        P = "model.layers.layers.%d." % i
        mix = mamba if is_mamba(cfg, i) else attention
        y = mix(cfg, lambda n: W[P + "mixer." + n], norm(x, P + "pre_mixer_norm.weight", 1.0))
        x = add(x, norm(y, P + "post_mixer_norm.weight", 1 / 5))
        gu = rows(W[P + "mlp.gate_up_proj.weight"])
        dn = rows(W[P + "mlp.down_proj.weight"])
        y = []
        for r in norm(x, P + "pre_mlp_norm.weight", 1.0):
            h = linear(r, gu)
            y.append(linear([silu(a) * b for a, b in zip(h[:I], h[I:])], dn))
        x = add(x, norm(y, P + "post_mlp_norm.weight", 1 / 5 ** 1.5))
    tied = cfg.get("tie_word_embeddings", True)
    head = emb if tied else rows(W["lm_head.weight"])
    write_npy(out, [linear(r, head) for r in norm(x, "model.norm.weight", 1.0)])


main()
