#!/usr/bin/env python3
"""qgen.py: a quantized checkpoint and its dequantized float twin, for the
round-trip tests of tests/suite_quant.sh.

    qgen.py SRC QDIR FDIR --bits B --group G [--mixed] [--bf16] [--skip RE]

SRC is a float model directory (config.json, model.safetensors).  Every
module "<path>.weight" of two or more dimensions whose input width is a
multiple of its group size (norms, convolutions and anything matching
--skip left alone) becomes MLX's affine format in QDIR, written by the
rule of the format, not by MLX: random integers q of `bits` bits packed
LSB-first into one little-endian bit stream of uint32 words per row,
random scales (some negative) and biases per group, with `quantization`
in config.json.  FDIR gets the same model with each such weight replaced
by its dequantized value s * q + b as float32: lmcc must compute the same
logits from both.  --mixed gives each module its own bits (2, 3, 4, 5, 6,
8 in turn) in a per-module entry, every third with "group_size": null
(which means 64); --bf16 stores scales and biases as BF16; --shards N
writes QDIR's tensors as N files model-0000i-of-0000N.safetensors with no
index, as mlx-lm may find them; --mlx-experts first moves Llama 4's fused
experts to mlx-lm's layout (as its sanitize does: gate_up_proj [E, in,
2 * out] split into gate_proj and up_proj [E, out, in], down_proj
transposed), in both directories.
"""
import argparse
import json
import os
import re
import struct
import sys

import numpy as np

DT = {"F32": np.float32, "F16": np.float16, "U32": np.uint32, "I32": np.int32,
      "I64": np.int64, "U8": np.uint8}


def read_st(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        head = json.loads(f.read(n))
        data = f.read()
    out = {}
    for k, v in head.items():
        if k == "__metadata__":
            continue
        b, e = v["data_offsets"]
        raw = data[b:e]
        if v["dtype"] == "BF16":
            a = np.frombuffer(raw, np.uint16).astype(np.uint32) << 16
            a = a.view(np.float32)
        else:
            a = np.frombuffer(raw, DT[v["dtype"]])
        out[k] = a.reshape(v["shape"]).copy()
    return out


def bf16(a):
    """float32 -> BF16 bits (round to nearest even), and back to float32."""
    u = a.astype(np.float32).view(np.uint32).astype(np.uint64)
    u = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
    return u, (u.astype(np.uint32) << 16).view(np.float32)


def write_st(path, tensors):
    head, blobs, off = {}, [], 0
    for k in sorted(tensors):
        dtype, a = tensors[k]
        raw = a.tobytes()
        head[k] = {"dtype": dtype, "shape": list(a.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(head).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def pack(q, bits):
    """[..., in] unsigned ints -> [..., in * bits / 32] uint32: element j of
    a row at bits [j * bits, (j + 1) * bits) of the row's words read as one
    little-endian stream.  32 elements fill `bits` words exactly."""
    blocks = q.reshape(*q.shape[:-1], q.shape[-1] // 32, 32).astype(np.uint64)
    w = np.zeros(blocks.shape[:-1] + (bits,), np.uint64)
    for j in range(32):
        k, s = divmod(j * bits, 32)
        w[..., k] |= (blocks[..., j] << np.uint64(s)) & np.uint64(0xFFFFFFFF)
        if s + bits > 32:
            w[..., k + 1] |= blocks[..., j] >> np.uint64(32 - s)
    return w.astype(np.uint32).reshape(*q.shape[:-1], q.shape[-1] * bits // 32)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("src")
    ap.add_argument("qdir")
    ap.add_argument("fdir")
    ap.add_argument("--bits", type=int, required=True)
    ap.add_argument("--group", type=int, required=True)
    ap.add_argument("--mixed", action="store_true")
    ap.add_argument("--bf16", action="store_true")
    ap.add_argument("--skip", default="$^")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--shards", type=int, default=1)
    ap.add_argument("--mlx-experts", action="store_true")
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    cfg = json.load(open(os.path.join(a.src, "config.json")))
    ts = read_st(os.path.join(a.src, "model.safetensors"))
    if a.mlx_experts:
        for name in [n for n in ts if n.endswith("feed_forward.experts.gate_up_proj")]:
            v = ts.pop(name)
            base = name[:-len("gate_up_proj")]
            half = v.shape[-1] // 2
            ts[base + "gate_proj.weight"] = np.ascontiguousarray(v[..., :half].swapaxes(1, 2))
            ts[base + "up_proj.weight"] = np.ascontiguousarray(v[..., half:].swapaxes(1, 2))
            ts[base + "down_proj.weight"] = np.ascontiguousarray(ts.pop(base + "down_proj").swapaxes(1, 2))
    quant = {"group_size": a.group, "bits": a.bits, "mode": "affine"}
    qt, ft, k = {}, {}, 0
    for name in sorted(ts):
        w = ts[name].astype(np.float32)
        path = name[:-len(".weight")]
        keep = (not name.endswith(".weight") or w.ndim < 2 or "norm" in name
                or "conv" in name or re.search(a.skip, name))
        bits, group = a.bits, a.group
        entry = None
        if not keep and a.mixed:
            bits = [2, 3, 4, 5, 6, 8][k % 6]
            entry = {"group_size": None if k % 3 == 2 else group, "bits": bits}
            group = 64 if entry["group_size"] is None else group
        if keep or w.shape[-1] % group:
            src = ts[name]
            qt[name] = ft[name] = ("F32", w) if src.dtype.kind == "f" else \
                ({np.uint32: "U32", np.int32: "I32", np.int64: "I64"}[src.dtype.type], src)
            continue
        k += 1
        if entry:
            quant[path] = entry
        out, inp = w.shape[-2], w.shape[-1]
        lead = w.shape[:-1]
        q = rng.integers(0, 1 << bits, size=w.shape, dtype=np.uint32)
        # scales spread the values over about the weight's own range
        std = float(w.std()) or 0.02
        s = (rng.uniform(0.5, 1.5, lead + (inp // group,)) * 3 * std / (1 << bits)).astype(np.float32)
        s *= np.where(rng.random(s.shape) < 0.2, -1, 1).astype(np.float32)
        b = (-s * ((1 << bits) - 1) / 2 + rng.normal(0, std / 4, s.shape)).astype(np.float32)
        if a.bf16:
            sb, s = bf16(s)
            bb, b = bf16(b)
            qt[path + ".scales"] = ("BF16", sb)
            qt[path + ".biases"] = ("BF16", bb)
        else:
            qt[path + ".scales"] = ("F32", s)
            qt[path + ".biases"] = ("F32", b)
        qt[path + ".weight"] = ("U32", pack(q, bits))
        sx = np.repeat(s, group, axis=-1)
        bx = np.repeat(b, group, axis=-1)
        ft[name] = ("F32", (sx * q.astype(np.float32) + bx).astype(np.float32))
    if not k:
        sys.exit("qgen: nothing to quantize")
    for d, t, c in ((a.qdir, qt, dict(cfg, quantization=quant)), (a.fdir, ft, cfg)):
        os.makedirs(d, exist_ok=True)
        json.dump(c, open(os.path.join(d, "config.json"), "w"), indent=1)
        n = a.shards if d == a.qdir else 1
        if n == 1:
            write_st(os.path.join(d, "model.safetensors"), t)
            continue
        names = sorted(t)
        for i in range(n):
            part = {k: t[k] for k in names[i::n]}
            write_st(os.path.join(d, "model-%05d-of-%05d.safetensors" % (i + 1, n)), part)
    print(f"qgen: {k} modules quantized", file=sys.stderr)


if __name__ == "__main__":
    main()
