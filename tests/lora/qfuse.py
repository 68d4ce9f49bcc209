"""qfuse.py: checks of `lmcc fuse` on a quantized base (numpy), for
tests/suite_lora.sh.

  qfuse.py check BASE ADAPTER FUSED
      every module the adapter changes must be, bit for bit, MLX's affine
      quantization (its own bits and group size) of the base's module
      dequantized (s * q + b in float32, rounded to the scales' dtype) plus
      the update (scale * B^T A^T per part or expert, rounded to float32
      and to that dtype, added in it; DoRA: each row then scaled to m /
      |row| in float32, whose scales and biases stay float32); every other
      tensor must be the base's, byte for byte.
  qfuse.py agree GOT.npy REF.npy
      top-1 agreement of two [N, V] logits files and the worst row's
      max |difference| over the reference row's max |logit|.

The quantizer is MLX's rule as its affine mode defines it (see
runtime/affine.c's comment), written again here with numpy."""
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


def check(base, adir, fused):
    B, F = read_dir(base), read_dir(fused)
    A = read_dir(adir, "adapters.safetensors")
    cfg = json.load(open(os.path.join(adir, "adapter_config.json")))
    scale = float(cfg["lora_parameters"]["scale"])
    qcfg = json.load(open(os.path.join(base, "config.json")))["quantization"]
    mods = sorted({re.sub(r"\.(lora_a|lora_b|m)(\.\d+)?$", "", k) for k in A})
    bad, done = [], 0
    for mod in mods:
        if mod + ".scales" not in B:
            continue
        _, wq = B[mod + ".weight"]
        sdt, s = B[mod + ".scales"]
        _, b = B[mod + ".biases"]
        e = qcfg.get(mod, qcfg)
        bits, group = e["bits"], e.get("group_size") or 64
        group_in = s.shape[-1]
        cols = group * group_in
        q = unpack(wq, bits, cols).astype(np.float32)
        sr = np.repeat(s, group, axis=-1)
        br = np.repeat(b, group, axis=-1)
        w = rnd((sr * q).astype(np.float32) + br, sdt).astype(np.float32)
        parts = sorted(k for k in A if re.fullmatch(re.escape(mod) + r"\.lora_a(\.\d+)?", k))
        row0 = 0
        for pa in parts:
            la = A[pa][1].astype(np.float64)
            lb = A[pa.replace(".lora_a", ".lora_b")][1].astype(np.float64)
            if la.ndim == 3:        # a stack: [E, r, in], [E, out, r]
                d = scale * np.matmul(lb, la)
            else:                   # [in, r], [r, out]
                d = scale * (la @ lb).T
            d = rnd(d.astype(np.float32), sdt)
            n = d.shape[-2]
            sl = (Ellipsis, slice(row0, row0 + n), slice(None))
            w[sl] = rnd(w[sl] + d, sdt)
            row0 += n
        odt = sdt
        if mod + ".m" in A:
            m = A[mod + ".m"][1].astype(np.float64)
            nrm = np.sqrt((w.astype(np.float64) ** 2).sum(-1))
            w = ((m / nrm)[..., None] * w).astype(np.float32)
            odt = "F32"
        eq, es, eb = quantize(w, bits, group)
        got_q = unpack(F[mod + ".weight"][1], bits, cols)
        fs, fb = F[mod + ".scales"], F[mod + ".biases"]
        if fs[0] != odt or fb[0] != odt:
            bad.append("%s: scales stored as %s, expected %s" % (mod, fs[0], odt))
        elif not np.array_equal(got_q, eq):
            bad.append("%s: %d of %d q differ" % (mod, int((got_q != eq).sum()), eq.size))
        elif not (np.array_equal(fs[1], rnd(es, odt)) and np.array_equal(fb[1], rnd(eb, odt))):
            bad.append("%s: scales or biases differ" % mod)
        else:
            done += 1
    for k, (dt, a) in B.items():
        m = re.sub(r"\.(weight|scales|biases)$", "", k)
        if m in mods and m + ".scales" in B:
            continue
        if k not in F:
            bad.append("%s: missing" % k)
        elif m not in mods and (F[k][0] != dt or not np.array_equal(F[k][1], a)):
            bad.append("%s: changed, but no adapter is on it" % k)
    if set(F) != set(B):
        bad.append("tensor sets differ: %s" % sorted(set(F) ^ set(B))[:4])
    if bad or not done:
        print("FAIL %s" % "; ".join(bad[:4]) if bad else "FAIL no quantized module adapted")
        return 1
    print("%d quantized modules requantized bit for bit, the other %d tensors as they were"
          % (done, len(B) - 3 * done))
    return 0


def agree(got, ref):
    g, r = np.load(got), np.load(ref)
    top = float((g.argmax(-1) == r.argmax(-1)).mean())
    rel = float((np.abs(g - r).max(-1) / np.abs(r).max(-1)).max())
    print("top-1 agreement %.1f%%, worst row %.3g" % (100 * top, rel))
    return 0


if __name__ == "__main__":
    cmd = sys.argv[1]
    sys.exit(check(*sys.argv[2:5]) if cmd == "check" else agree(*sys.argv[2:4]))
