#!/usr/bin/env python3
"""A second, independent Llama 4 forward pass, in float64 plain Python.

    oracle.py MODEL_DIR TOKENS OUT.npy      (TOKENS: comma-separated ids)

It reads config.json and model.safetensors (F32 or BF16, the released
layout) and writes the logits at every position as float32 [N, V], for
tests/bin/npycmp to hold lmcc's output against.  It shares nothing with
lmcc but the reading of mlx-lm's llama4.py it is written from, and it
computes differently: the whole sequence at once, with explicit masks and
no caches, RoPE frequencies as the reference derives them (periods, not
inverse frequencies), experts by slicing the fused tensors.  Slow, but
the test models are tiny.
"""
import json
import math
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from oracle_lib import load, rows, linear, rmsnorm, silu, write_npy  # noqa: E402

NOPE_INTERVAL = 4


def periods(cfg, d):
    """The reference's RoPE 'freqs': pair j turns by position / freqs[j]."""
    base = cfg["rope_theta"]
    f = [base ** (j / d) for j in range(0, d, 2)]
    sc = cfg.get("rope_scaling")
    kind = (sc.get("type") or sc.get("rope_type", "default")) if sc else "default"
    if kind == "linear":
        return [p * sc["factor"] for p in f]
    if kind != "llama3":
        return f
    factor = sc["factor"]
    lo = sc.get("low_freq_factor", 1.0)
    hi = sc.get("high_freq_factor", 4.0)
    old = sc.get("original_max_position_embeddings", 8192)
    out = []
    for p in f:
        wave = 2 * math.pi * p
        q = p * factor if wave > old / lo else p
        if old / hi < wave < old / lo:
            s = (old / wave - lo) / (hi - lo)
            q = p / ((1 - s) / factor + s)
        out.append(q)
    return out


def rope(v, pos, per):
    out = list(v)
    for j, p in enumerate(per):
        a = pos / p
        c, s = math.cos(a), math.sin(a)
        x0, x1 = v[2 * j], v[2 * j + 1]
        out[2 * j] = x0 * c - x1 * s
        out[2 * j + 1] = x0 * s + x1 * c
    return out


def main():
    mdir, toks, out = sys.argv[1:4]
    cfg = json.load(open(mdir + "/config.json"))["text_config"]
    W = load(mdir + "/model.safetensors")
    tok = [int(t) for t in toks.split(",")]
    N, D, L = len(tok), cfg["hidden_size"], cfg["num_hidden_layers"]
    H, KV = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd = cfg.get("head_dim") or D // H
    eps, C = cfg["rms_norm_eps"], cfg["attention_chunk_size"]
    temp = cfg.get("attn_temperature_tuning", 4)
    fs, ascale = cfg.get("floor_scale", 8192), cfg.get("attn_scale", 0.1)
    nr = cfg.get("no_rope_layers")
    use_rope = nr if nr else [int((i + 1) % NOPE_INTERVAL != 0) for i in range(L)]
    if cfg.get("moe_layers") is not None:
        moe = set(cfg["moe_layers"])
    else:
        st = cfg["interleave_moe_layer_step"]
        moe = {i for i in range(L) if i % st == st - 1}
    per = periods(cfg, hd)
    I = cfg["intermediate_size"]

    def w(name):
        return W["language_model." + name]

    def opt(name):
        t = W.get("language_model." + name)
        return t[0] if t else None

    emb = rows(w("model.embed_tokens.weight"))
    x = [list(emb[t]) for t in tok]
    for i in range(L):
        P = "model.layers.%d." % i
        A = P + "self_attn."
        xn = [rmsnorm(r, w(P + "input_layernorm.weight")[0], eps) for r in x]
        q = [linear(r, rows(w(A + "q_proj.weight")), opt(A + "q_proj.bias")) for r in xn]
        k = [linear(r, rows(w(A + "k_proj.weight")), opt(A + "k_proj.bias")) for r in xn]
        v = [linear(r, rows(w(A + "v_proj.weight")), opt(A + "v_proj.bias")) for r in xn]
        heads = lambda r, n: [r[h * hd:(h + 1) * hd] for h in range(n)]
        q = [heads(r, H) for r in q]
        k = [heads(r, KV) for r in k]
        v = [heads(r, KV) for r in v]
        if use_rope[i]:
            q = [[rope(h, t, per) for h in r] for t, r in enumerate(q)]
            k = [[rope(h, t, per) for h in r] for t, r in enumerate(k)]
            if cfg["use_qk_norm"]:
                q = [[rmsnorm(h, None, 1e-6) for h in r] for r in q]
                k = [[rmsnorm(h, None, 1e-6) for h in r] for r in k]
        elif temp:
            for t in range(N):
                f = math.log(math.floor((t + 1) / fs) + 1) * ascale + 1
                q[t] = [[a * f for a in h] for h in q[t]]
        att = []
        for t in range(N):
            keys = [p for p in range(t + 1) if not use_rope[i] or p // C == t // C]
            o = []
            for h in range(H):
                g = h // (H // KV)
                s = [sum(a * b for a, b in zip(q[t][h], k[p][g])) / math.sqrt(hd) for p in keys]
                m = max(s)
                e = [math.exp(a - m) for a in s]
                z = sum(e)
                o += [sum(e[j] * v[p][g][c] for j, p in enumerate(keys)) / z for c in range(hd)]
            att.append(o)
        y = [linear(r, rows(w(A + "o_proj.weight")), opt(A + "o_proj.bias")) for r in att]
        x = [[a + b for a, b in zip(r, s)] for r, s in zip(x, y)]

        F = P + "feed_forward."
        xn = [rmsnorm(r, w(P + "post_attention_layernorm.weight")[0], eps) for r in x]

        def mlp(r, pre):
            g = linear(r, rows(w(pre + "gate_proj.weight")))
            u = linear(r, rows(w(pre + "up_proj.weight")))
            return linear([silu(a) * b for a, b in zip(g, u)], rows(w(pre + "down_proj.weight")))

        y = []
        for r in xn:
            if i not in moe:
                y.append(mlp(r, F))
                continue
            logit = linear(r, rows(w(F + "router.weight")))
            e = max(range(len(logit)), key=lambda j: logit[j])
            s = 1 / (1 + math.exp(-logit[e]))
            gu = rows(w(F + "experts.gate_up_proj"))[e * D:(e + 1) * D]     # [D, 2I]
            dn = rows(w(F + "experts.down_proj"))[e * I:(e + 1) * I]        # [I, D]
            h = [sum(s * r[d] * gu[d][j] for d in range(D)) for j in range(2 * I)]
            a = [silu(h[j]) * h[I + j] for j in range(I)]
            o = [sum(a[j] * dn[j][c] for j in range(I)) for c in range(D)]
            y.append([p + q for p, q in zip(o, mlp(r, F + "shared_expert."))])
        x = [[a + b for a, b in zip(r, s)] for r, s in zip(x, y)]

    head = rows(w("lm_head.weight"))
    fin = w("model.norm.weight")[0]
    logits = [linear(rmsnorm(r, fin, eps), head) for r in x]
    write_npy(out, logits)

main()
