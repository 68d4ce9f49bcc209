"""qfuse.py: the numpy checks of tests/suite_lora.sh: `lmcc fuse` on a
quantized base, and an adapter on a normalised head.

  qfuse.py check BASE ADAPTER FUSED [deq]
      every module the adapter changes must be, bit for bit, MLX's
      quantization (its own mode, bits and group size) of the base's
      module dequantized as MLX does (affine: s * q rounded to the scales'
      dtype, plus b rounded; FP modes: code times scale in bfloat16) plus
      the update (scale times B, rounded to float32, times A per part or
      expert, rounded to float32 and to that dtype, added in it; DoRA:
      each row then scaled to m / |row|, the norm in that dtype, the
      product in float32 for a float32 m); every other tensor must be the
      base's, byte for byte.  With deq, FUSED is --dequantize's output:
      every quantized module must be that float weight, its scales and
      biases gone.
  qfuse.py lowrank RUN.npy BASE.npy ADAPTER MODULE
      an adapter on the head alone adds scale * (x A) B to the base's
      logits: RUN - BASE must lie in the row space of MODULE's lora_b
      (least squares; the residual over |RUN - BASE| printed).
  qfuse.py rows RUN.npy BASE.npy ADAPTER MODULE
      DoRA with lora_b zero on a head with unit rows: each logit column j
      is BASE's times m[j].
  qfuse.py agree GOT.npy REF.npy
      top-1 agreement of two [N, V] logits files and the worst row's
      max |difference| over the reference row's max |logit|.

The quantizers are MLX's rules, written again here with numpy: the affine
mode as runtime/affine.c's comment defines it, the FP modes as MLX's
ops.cpp composes them on the CPU (runtime/mxfp.c's comment)."""
import glob
import json
import os
import re
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from qgen import bf16, read_st  # noqa: E402

def read_dir(d, name="*.safetensors"):
    """{name: (dtype, array)} of every file matching name in d."""
    out = {}
    for path in sorted(glob.glob(os.path.join(d, name))):
        with open(path, "rb") as f:
            head = json.loads(f.read(struct.unpack("<Q", f.read(8))[0]))
        for k, a in read_st(path).items():
            out[k] = (head[k]["dtype"], a)
    return out


def rnd(a, dt):
    a = np.asarray(a, np.float32)
    if dt == "BF16":
        return bf16(a)[1]
    if dt == "F16":
        return a.astype(np.float16).astype(np.float32)
    return a


def unpack(w, bits, cols):
    """[..., cols * bits / 32] uint32 -> [..., cols] the unsigned q."""
    by = w.view(np.uint8).reshape(*w.shape[:-1], -1)
    b = np.unpackbits(by, axis=-1, bitorder="little")
    b = b.reshape(*w.shape[:-1], cols, bits).astype(np.uint32)
    return (b << np.arange(bits, dtype=np.uint32)).sum(-1).astype(np.uint32)


def quantize(w, bits, group):
    """MLX's affine rule, in float32: q, scales, biases."""
    top = np.float32((1 << bits) - 1)
    g = w.reshape(*w.shape[:-1], -1, group).astype(np.float32)
    hi, lo = g.max(-1), g.min(-1)
    from_lo = np.abs(lo) > np.abs(hi)
    s = np.maximum((hi - lo) / top, np.float32(1e-7)).astype(np.float32)
    s = np.where(from_lo, s, -s).astype(np.float32)
    edge = np.where(from_lo, lo, hi).astype(np.float32)
    q0 = np.rint(edge / s).astype(np.float32)
    nz = q0 != 0
    s = np.where(nz, edge / np.where(nz, q0, 1), s).astype(np.float32)
    b = np.where(nz, edge, 0).astype(np.float32)
    q = np.clip(np.rint((g - b[..., None]) / s[..., None]), 0, top).astype(np.uint32)
    return q.reshape(w.shape), s, b


E2M1 = np.array([0, .5, 1, 1.5, 2, 3, 4, 6, -0., -.5, -1, -1.5, -2, -3, -4, -6], np.float32)


def e4m3(code):
    """FP8 E4M3 bytes -> float32 (no inf or NaN: 0x7f is 480)."""
    c = code.astype(np.int64)
    e, m = (c >> 3) & 15, c & 7
    v = np.where(e > 0, (1 + m / 8.0) * np.exp2(e - 7.0), m * 2.0 ** -9)
    return np.where(c & 0x80, -v, v).astype(np.float32)


E4M3_GRID = e4m3(np.arange(0x7f)).astype(np.float64)   # codes 0 .. 0x7e, 448 the top


def to_e4m3(x):
    """float -> E4M3 byte: nearest, ties to the even code, 448 at most."""
    a = np.abs(np.asarray(x, np.float64))
    i = np.clip(np.searchsorted(E4M3_GRID, a), 1, 0x7e)
    lo, hi = E4M3_GRID[i - 1], E4M3_GRID[i]
    up = (hi - a < a - lo) | ((hi - a == a - lo) & (i % 2 == 0))
    c = np.where(a >= E4M3_GRID[-1], 0x7e, np.where(up, i, i - 1))
    return (c | np.where(np.signbit(x), 0x80, 0)).astype(np.uint8)


def fp_shape(mode):
    return (8 if mode == "mxfp8" else 4), (16 if mode == "nvfp4" else 32)


def fp_dequantize(q, sc, mode):
    """MLX's dequantize of an FP mode: code value times scale value, in
    bfloat16 (its default output dtype for uint8 scales)."""
    bits, group = fp_shape(mode)
    v = e4m3(q.astype(np.uint8)) if bits == 8 else E2M1[q]
    s = e4m3(sc) if mode == "nvfp4" else np.exp2(sc.astype(np.float64) - 127).astype(np.float32)
    return rnd(v * np.repeat(s, group, axis=-1), "BF16")


def fp_quantize(w, mode, dt):
    """MLX's quantize in an FP mode, its array operations in the weights'
    dtype dt (ops.cpp's fp_quantize on the CPU): q codes and scale bytes."""
    bits, group = fp_shape(mode)
    g = w.reshape(-1, group).astype(np.float32)
    s = rnd(np.abs(g).max(-1) / np.float32(6 if bits == 4 else 448), dt)
    vdt = dt
    if mode == "nvfp4":
        sc = to_e4m3(s)
        v = rnd(g / e4m3(sc)[:, None], dt)
        vdt = "F32"         # times a float32 1: float32 from here
    else:
        with np.errstate(divide="ignore"):
            e = np.where(s == 0, 0, rnd(np.rint(rnd(np.log2(s), dt)), dt)).astype(np.float32)
        sc = rnd(e + 127, dt).astype(np.int64).astype(np.uint8)
        v = rnd(g / rnd(np.exp2(e), dt)[:, None], dt)
    if bits == 8:
        q = to_e4m3(v).astype(np.uint32)
    else:
        q = rnd(np.abs(rnd(v[:, :, None] - rnd(E2M1, vdt), vdt)), vdt).argmin(-1).astype(np.uint32)
    return q.reshape(w.shape), sc.reshape(*w.shape[:-1], -1)


def norm(w, dt):
    """MLX's norm over the last axis in dtype dt on the CPU: each square and
    each step of the sum, one input after the other, rounded to dt."""
    ss = np.zeros(w.shape[:-1], np.float32)
    for c in range(w.shape[-1]):
        ss = rnd(ss + rnd(w[..., c] * w[..., c], dt), dt)
    return rnd(np.sqrt(ss), dt)


def check(base, adir, fused, deq=None):
    """Every module the adapter changes, as the reference's fuse gives it;
    with deq, FUSED is --dequantize's output: every quantized module
    float, in the dtype MLX's dequantize returns."""
    B, F = read_dir(base), read_dir(fused)
    A = read_dir(adir, "adapters.safetensors")
    cfg = json.load(open(os.path.join(adir, "adapter_config.json")))
    scale = np.float32(cfg["lora_parameters"]["scale"])
    qcfg = json.load(open(os.path.join(base, "config.json")))["quantization"]
    mods = sorted({re.sub(r"\.(lora_a|lora_b|m)(\.\d+)?$", "", k) for k in A})
    quantized = sorted({k[:-7] for k in B if k.endswith(".scales")})
    bad, done = [], 0
    for mod in sorted(set(mods) | (set(quantized) if deq else set())):
        if mod + ".scales" not in B:
            continue
        _, wq = B[mod + ".weight"]
        sdt, s = B[mod + ".scales"]
        e = qcfg[mod] if isinstance(qcfg.get(mod), dict) else qcfg
        mode = e.get("mode", "affine") if mod in qcfg else qcfg.get("mode", "affine")
        bits, group = e["bits"], e.get("group_size") or 64
        cols = group * s.shape[-1]
        q = unpack(wq, bits, cols)
        if mode == "affine":
            wdt = sdt
            b = B[mod + ".biases"][1]
            sq = rnd(np.repeat(s, group, axis=-1) * q.astype(np.float32), wdt)
            w = rnd(sq + np.repeat(b, group, axis=-1), wdt)
        else:
            wdt = "BF16"
            w = fp_dequantize(q, s, mode)
        parts = sorted(k for k in A if re.fullmatch(re.escape(mod) + r"\.lora_a(\.\d+)?", k))
        row0 = 0
        for pa in parts:
            la = A[pa][1].astype(np.float32)
            lb = A[pa.replace(".lora_a", ".lora_b")][1].astype(np.float32)
            if la.ndim == 3:        # a stack: [E, r, in], [E, out, r]
                d = np.matmul((scale * lb).astype(np.float64), la.astype(np.float64))
            elif "embed" in mod:    # an embedding: [vocab, r], [r, dims]
                d = (scale * la).astype(np.float64) @ lb.astype(np.float64)
            else:                   # [in, r], [r, out]
                d = (la.astype(np.float64) @ (scale * lb).astype(np.float64)).T
            d = rnd(d.astype(np.float32), wdt)
            n = d.shape[-2]
            sl = (Ellipsis, slice(row0, row0 + n), slice(None))
            w[sl] = rnd(w[sl] + d, wdt)
            row0 += n
        odt = wdt
        if mod + ".m" in A:
            mdt, m = A[mod + ".m"]
            odt = wdt if mdt == wdt else "F32"
            w = rnd(rnd(m / norm(w, wdt), odt)[..., None] * w, odt)
        if deq:
            got = F.get(mod + ".weight")
            if got is None or got[0] != odt or not np.array_equal(got[1], w):
                bad.append("%s: dequantized weight %s, expected %s and its values"
                           % (mod, got and got[0], odt))
            elif mod + ".scales" in F or mod + ".biases" in F:
                bad.append("%s: scales kept" % mod)
            else:
                done += 1
            continue
        got_q = unpack(F[mod + ".weight"][1], bits, cols)
        fs = F[mod + ".scales"]
        if mode == "affine":
            eq, es, eb = quantize(w, bits, group)
            fb = F[mod + ".biases"]
            same = fs[0] == odt and fb[0] == odt and np.array_equal(fs[1], rnd(es, odt)) \
                and np.array_equal(fb[1], rnd(eb, odt))
        else:
            eq, es = fp_quantize(w, mode, odt)
            same = fs[0] == "U8" and np.array_equal(fs[1], es) and mod + ".biases" not in F
        if not np.array_equal(got_q, eq):
            bad.append("%s: %d of %d q differ" % (mod, int((got_q != eq).sum()), eq.size))
        elif not same:
            bad.append("%s: scales or biases differ (stored as %s, expected %s)"
                       % (mod, fs[0], "U8" if mode != "affine" else odt))
        else:
            done += 1
    kept = 0
    for k, (dt, a) in B.items():
        m = re.sub(r"\.(weight|scales|biases)$", "", k)
        if m + ".scales" in B and (m in mods or deq) or m in mods:
            continue
        if k not in F:
            bad.append("%s: missing" % k)
        elif F[k][0] != dt or not np.array_equal(F[k][1], a):
            bad.append("%s: changed, but no adapter is on it" % k)
        else:
            kept += 1
    want = set(B) - ({k for k in B if re.search(r"\.(scales|biases)$", k)} if deq else set())
    if set(F) != want:
        bad.append("tensor sets differ: %s" % sorted(set(F) ^ want)[:4])
    if bad or not done:
        print("FAIL %s" % "; ".join(bad[:4]) if bad else "FAIL no quantized module adapted")
        return 1
    print("%d quantized modules %s bit for bit, %d other tensors as they were"
          % (done, "dequantized" if deq else "requantized", kept))
    return 0


def agree(got, ref):
    g, r = np.load(got), np.load(ref)
    top = float((g.argmax(-1) == r.argmax(-1)).mean())
    rel = float((np.abs(g - r).max(-1) / np.abs(r).max(-1)).max())
    print("top-1 agreement %.1f%%, worst row %.3g" % (100 * top, rel))
    return 0


def lowrank(run, base, adir, mod):
    d = np.load(run).astype(np.float64) - np.load(base)
    b = read_dir(adir, "adapters.safetensors")[mod + ".lora_b"][1].astype(np.float64)
    u = np.linalg.lstsq(b.T, d.T, rcond=None)[0]
    res = float(np.abs(d - (b.T @ u).T).max() / np.abs(d).max())
    print("residual %.3g of the change %.3g" % (res, float(np.abs(d).max())))
    return 0 if res < 1e-4 and np.abs(d).max() > 1e-3 else 1


def rows(run, base, adir, mod):
    r, b = np.load(run).astype(np.float64), np.load(base).astype(np.float64)
    m = read_dir(adir, "adapters.safetensors")[mod + ".m"][1].astype(np.float64)
    err = float(np.abs(r - b * m).max() / np.abs(b).max())
    print("|RUN - m * BASE| / |BASE| = %.3g" % err)
    return 0 if err < 1e-5 else 1


if __name__ == "__main__":
    cmd = sys.argv[1]
    sys.exit({"check": check, "agree": agree, "lowrank": lowrank, "rows": rows}[cmd](*sys.argv[2:]))
