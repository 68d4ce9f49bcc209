#!/usr/bin/env python3
"""kimi_ref.py: Kimi-Linear in plain float64 Python, to check lmcc on
configs the golden cases do not cover.

    python3 tests/kimi_ref.py MODEL_DIR TOKENS OUT.npy

TOKENS is a comma-separated list; OUT.npy gets float32 [N, vocab] logits.

Written from the semantics of mlx-lm's kimi_linear.py (see compiler/kimi.c),
independently of lmcc's C, and deliberately in the other form where lmcc
takes a shortcut: MLA expands every cached latent into per-head keys and
values (the reference's prefill path) where lmcc absorbs the key
up-projection into the query, and tokens go one at a time through plain
loops.  No numpy: small models only.
"""
import json
import math
import struct
import sys


def load(path):
    """The safetensors file as {name: (shape, flat list of floats)}."""
    data = open(path, "rb").read()
    n = struct.unpack("<Q", data[:8])[0]
    head = json.loads(data[8:8 + n])
    base = 8 + n
    out = {}
    for name, t in head.items():
        if name == "__metadata__":
            continue
        b, e = t["data_offsets"]
        raw = data[base + b:base + e]
        if t["dtype"] == "F32":
            vals = list(struct.unpack("<%df" % (len(raw) // 4), raw))
        elif t["dtype"] == "BF16":
            halves = struct.unpack("<%dH" % (len(raw) // 2), raw)
            vals = [struct.unpack("<f", struct.pack("<I", h << 16))[0] for h in halves]
        else:
            raise SystemExit("%s: dtype %s" % (name, t["dtype"]))
        out[name] = (t["shape"], vals)
    return out


def matrix(w, name):
    shape, v = w[name]
    rows, cols = shape
    return [v[r * cols:(r + 1) * cols] for r in range(rows)]


def vec(w, name):
    return w[name][1]


def mv(m, x):
    return [sum(a * b for a, b in zip(row, x)) for row in m]


def rms(x, w, eps):
    s = 1.0 / math.sqrt(sum(a * a for a in x) / len(x) + eps)
    return [a * s * (w[i] if w else 1.0) for i, a in enumerate(x)]


def sigmoid(x):
    return 1.0 / (1.0 + math.exp(-x))


def silu(x):
    return x * sigmoid(x)


def softplus(x):
    return x if x > 30 else math.log1p(math.exp(x))


def swiglu(w, pre, x, gate="gate_proj", up="up_proj", down="down_proj"):
    g = mv(matrix(w, "%s.%s.weight" % (pre, gate)), x)
    u = mv(matrix(w, "%s.%s.weight" % (pre, up)), x)
    return mv(matrix(w, "%s.%s.weight" % (pre, down)), [silu(a) * b for a, b in zip(g, u)])


class Kda:
    def __init__(self, w, pre, cfg, eps):
        lc = cfg["linear_attn_config"]
        self.w, self.pre, self.eps = w, pre, eps
        self.H, self.D = lc["num_heads"], lc["head_dim"]
        self.K = lc.get("short_conv_kernel_size", 4)
        C = self.H * self.D
        self.hist = {p: [[0.0] * C for _ in range(self.K - 1)] for p in "qkv"}
        self.S = [[[0.0] * self.D for _ in range(self.D)] for _ in range(self.H)]

    def conv(self, p, x):
        w = vec(self.w, "%s.%s_conv1d.weight" % (self.pre, p))
        seq = self.hist[p] + [x]
        out = [silu(sum(w[c * self.K + j] * seq[j][c] for j in range(self.K)))
               for c in range(len(x))]
        self.hist[p] = seq[1:]
        return out

    def __call__(self, x):
        w, pre, H, D = self.w, self.pre, self.H, self.D
        q, k, v = (self.conv(p, mv(matrix(w, "%s.%s_proj.weight" % (pre, p)), x)) for p in "qkv")
        a = mv(matrix(w, pre + ".f_b_proj.weight"), mv(matrix(w, pre + ".f_a_proj.weight"), x))
        b = mv(matrix(w, pre + ".b_proj.weight"), x)
        gate = mv(matrix(w, pre + ".g_b_proj.weight"), mv(matrix(w, pre + ".g_a_proj.weight"), x))
        a_log, dt = vec(w, pre + ".A_log"), vec(w, pre + ".dt_bias")
        onorm = vec(w, pre + ".o_norm.weight")
        out = []
        for h in range(H):
            sl = slice(h * D, (h + 1) * D)
            qh = [e / D for e in rms(q[sl], None, 1e-6)]
            kh = [e / math.sqrt(D) for e in rms(k[sl], None, 1e-6)]
            vh = v[sl]
            g = [math.exp(-math.exp(a_log[h]) * softplus(a[h * D + i] + dt[h * D + i]))
                 for i in range(D)]
            beta = sigmoid(b[h])
            S = self.S[h]
            for j in range(D):
                S[j] = [s * gi for s, gi in zip(S[j], g)]
            recall = [sum(s * ki for s, ki in zip(S[j], kh)) for j in range(D)]
            delta = [(vh[j] - recall[j]) * beta for j in range(D)]
            for j in range(D):
                S[j] = [s + ki * delta[j] for s, ki in zip(S[j], kh)]
            o = [sum(s * qi for s, qi in zip(S[j], qh)) for j in range(D)]
            o = rms(o, onorm, self.eps)
            out += [oi * sigmoid(gi) for oi, gi in zip(o, gate[sl])]
        return mv(matrix(w, pre + ".o_proj.weight"), out)


class Mla:
    def __init__(self, w, pre, cfg, eps):
        self.w, self.pre, self.eps = w, pre, eps
        hd = cfg.get("head_dim")
        self.H = cfg["num_attention_heads"]
        self.nope = cfg.get("qk_nope_head_dim") or hd
        self.rope = cfg.get("qk_rope_head_dim") or 0
        self.vd = cfg.get("v_head_dim") or hd
        self.lora = cfg["kv_lora_rank"]
        self.lat, self.kpe = [], []

    def __call__(self, x):
        w, pre, H, N, R, VD, L = self.w, self.pre, self.H, self.nope, self.rope, self.vd, self.lora
        q = mv(matrix(w, pre + ".q_proj.weight"), x)
        ckv = mv(matrix(w, pre + ".kv_a_proj_with_mqa.weight"), x)
        self.lat.append(rms(ckv[:L], vec(w, pre + ".kv_a_layernorm.weight"), self.eps))
        self.kpe.append(ckv[L:])
        kvb = matrix(w, pre + ".kv_b_proj.weight")
        scale = (N + R) ** -0.5
        out = []
        for h in range(H):
            qn, qp = q[h * (N + R):h * (N + R) + N], q[h * (N + R) + N:(h + 1) * (N + R)]
            uk = kvb[h * (N + VD):h * (N + VD) + N]
            uv = kvb[h * (N + VD) + N:(h + 1) * (N + VD)]
            keys = [mv(uk, c) for c in self.lat]          # expanded, per cached token
            vals = [mv(uv, c) for c in self.lat]
            s = [scale * (sum(a * b for a, b in zip(qn, kk)) + sum(a * b for a, b in zip(qp, kp)))
                 for kk, kp in zip(keys, self.kpe)]
            m = max(s)
            e = [math.exp(a - m) for a in s]
            z = sum(e)
            out += [sum(e[t] * vals[t][j] for t in range(len(e))) / z for j in range(VD)]
        return mv(matrix(w, pre + ".o_proj.weight"), out)


def moe(w, pre, cfg, x):
    E, k = cfg["num_experts"], cfg.get("num_experts_per_token", 1)
    G, TG = cfg.get("num_expert_group", 1), cfg.get("topk_group", 1)
    logits = mv(matrix(w, pre + ".gate.weight"), x)
    if cfg.get("moe_router_activation_func", "sigmoid") == "softmax":
        m = max(logits)
        e = [math.exp(a - m) for a in logits]
        scores = [a / sum(e) for a in e]
    else:
        scores = [sigmoid(a) for a in logits]
    bias = vec(w, pre + ".gate.e_score_correction_bias")
    sel = [s + b for s, b in zip(scores, bias)]
    if G > 1:
        per = E // G
        gs = [sum(sorted(sel[g * per:(g + 1) * per])[-2:]) for g in range(G)]
        for g in sorted(range(G), key=lambda g: gs[g])[:G - TG]:
            for e in range(g * per, (g + 1) * per):
                sel[e] = 0.0
    chosen = sorted(range(E), key=lambda e: -sel[e])[:k]
    wts = [scores[e] for e in chosen]
    if k > 1 and cfg.get("moe_renormalize", True):
        z = sum(wts) + 1e-20
        wts = [a / z for a in wts]
    wts = [a * cfg.get("routed_scaling_factor", 1.0) for a in wts]
    y = [0.0] * len(x)
    for e, a in zip(chosen, wts):
        o = swiglu(w, "%s.experts.%d" % (pre, e), x, "w1", "w3", "w2")
        y = [yi + a * oi for yi, oi in zip(y, o)]
    if cfg.get("num_shared_experts", 0):
        y = [yi + oi for yi, oi in zip(y, swiglu(w, pre + ".shared_experts", x))]
    return y


def main():
    model, toks, out = sys.argv[1], [int(t) for t in sys.argv[2].split(",")], sys.argv[3]
    cfg = json.load(open(model + "/config.json"))
    w = load(model + "/model.safetensors")
    eps = cfg["rms_norm_eps"]
    kda = cfg["linear_attn_config"]["kda_layers"]
    layers = []
    for i in range(cfg["num_hidden_layers"]):
        pre = "model.layers.%d" % i
        mix = (Kda if i + 1 in kda else Mla)(w, pre + ".self_attn", cfg, eps)
        is_moe = (cfg["num_experts"] > 0 and i >= cfg.get("first_k_dense_replace", 0)
                  and i % cfg.get("moe_layer_freq", 1) == 0)
        layers.append((pre, mix, is_moe))
    emb = matrix(w, "model.embed_tokens.weight")
    head = emb if cfg.get("tie_word_embeddings") else matrix(w, "lm_head.weight")
    rows = []
    for t in toks:
        x = list(emb[t])
        for pre, mix, is_moe in layers:
            y = mix(rms(x, vec(w, pre + ".input_layernorm.weight"), eps))
            x = [a + b for a, b in zip(x, y)]
            xn = rms(x, vec(w, pre + ".post_attention_layernorm.weight"), eps)
            y = moe(w, pre + ".block_sparse_moe", cfg, xn) if is_moe else swiglu(w, pre + ".mlp", xn)
            x = [a + b for a, b in zip(x, y)]
        rows.append(mv(head, rms(x, vec(w, "model.norm.weight"), eps)))
    hdr = "{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d), }" % (len(rows), len(rows[0]))
    hdr += " " * (63 - (10 + len(hdr)) % 64) + "\n"
    with open(out, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(hdr)) + hdr.encode())
        for r in rows:
            f.write(struct.pack("<%df" % len(r), *r))


main()
