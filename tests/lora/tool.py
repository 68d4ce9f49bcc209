"""Adapter directories for tests/suite_lora.sh, and the float64 oracle of
fusing one into its base (plain Python, no numpy).

  tool.py edit IN OUT [--zero PART] [--drop NAME] [--keep PREFIX,...]
                      [--copy NAME=NEW] [--rank R] [--set KEY=JSON]...
      copy adapter directory IN to OUT: tensors whose names hold PART zeroed,
      NAME dropped, only those starting with one of PREFIX kept, NAME copied
      to a tensor NEW, every pair cut to its first R ranks (and the config's
      rank set to R); KEY of adapter_config.json (a.b for lora_parameters.b)
      set to JSON.
  tool.py dora BASE IN OUT SEED
      IN's LoRA as a DoRA adapter: m = |W row| * (1 + 0.3 u), u in [-1, 1].
  tool.py add IN OUT MODULE ROWS_A COLS_A COLS_B SEED
      IN's adapter plus MODULE.lora_a [ROWS_A, COLS_A] and .lora_b [COLS_A,
      COLS_B], uniform in [-0.1, 0.1], and when IN is DoRA .m = 1 + 0.3 u
      per row of the weight (an embedding's: a module named "...embed...").
  tool.py fuse BASE ADAPTER OUT
      BASE with every adapter merged in float64 (W + scale B^T A^T, and
      DoRA's m / |row|), written as float32 OUT/model.safetensors beside
      BASE's config.json.  Linear modules named as their weights, and
      AFM-7's fused parts (lora_a.N); an embedding (a module whose name
      holds "embed"): E + scale A B."""
import json
import math
import os
import random
import re
import shutil
import struct
import sys
from array import array

SIZES = {"F32": 4, "F16": 2, "BF16": 2, "I32": 4, "I64": 8, "U32": 4}


def read(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        head = json.loads(f.read(n))
        data = f.read()
    meta = head.pop("__metadata__", None)
    t = {k: (v["dtype"], v["shape"], data[v["data_offsets"][0]:v["data_offsets"][1]])
         for k, v in head.items()}
    return t, meta


def write(path, tensors, meta=None):
    head, blobs, off = {}, [], 0
    head["__metadata__"] = meta
    for k in sorted(tensors):
        dt, shape, raw = tensors[k]
        head[k] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(head).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def floats(t):
    dt, shape, raw = t
    if dt == "F32":
        v = array("f")
        v.frombytes(raw)
        return list(v)
    if dt == "BF16":
        h = array("H")
        h.frombytes(raw)
        v = array("f")
        v.frombytes(array("I", (x << 16 for x in h)).tobytes())
        return list(v)
    raise SystemExit("tool.py: dtype %s" % dt)


def f32(shape, vals):
    return ("F32", shape, array("f", vals).tobytes())


def cut(name, t, r):
    """Tensor `name` of a pair cut to rank r: the rank is the last axis of a
    Linear's or an embedding's lora_a and of a stack's lora_b, the one
    before of the others."""
    dt, shape, raw = t
    leaf = re.sub(r"\.\d+$", "", name).rsplit(".", 1)[-1]
    if leaf == "m":
        return t
    v = floats(t)
    ax = len(shape) - 1 if (leaf == "lora_a") == (len(shape) == 2) else len(shape) - 2
    inner = 1
    for n in shape[ax + 1:]:
        inner *= n
    outer = len(v) // (shape[ax] * inner)
    kept = [v[(o * shape[ax] + i) * inner + j] for o in range(outer) for i in range(r) for j in range(inner)]
    return f32(shape[:ax] + [r] + shape[ax + 1:], kept)


def edit(argv):
    src, dst = argv[0], argv[1]
    t, meta = read(os.path.join(src, "adapters.safetensors"))
    cfg = json.load(open(os.path.join(src, "adapter_config.json")))
    i = 2
    while i < len(argv):
        op, val = argv[i], argv[i + 1]
        i += 2
        if op == "--zero":
            for k in t:
                if val in k:
                    dt, shape, raw = t[k]
                    t[k] = (dt, shape, bytes(len(raw)))
        elif op == "--copy":
            a, b = val.split("=", 1)
            t[b] = t[a]
        elif op == "--drop":
            del t[val]
        elif op == "--keep":
            pre = val.split(",")
            t = {k: v for k, v in t.items() if any(k.startswith(p) for p in pre)}
        elif op == "--rank":
            cfg["lora_parameters"]["rank"] = int(val)
            t = {k: cut(k, v, int(val)) for k, v in t.items()}
        elif op == "--set":
            key, js = val.split("=", 1)
            where, leaf = cfg, key
            if "." in key:
                a, leaf = key.split(".", 1)
                where = cfg[a]
            where[leaf] = json.loads(js)
        else:
            raise SystemExit("tool.py edit: unknown %s" % op)
    os.makedirs(dst, exist_ok=True)
    write(os.path.join(dst, "adapters.safetensors"), t, meta)
    json.dump(cfg, open(os.path.join(dst, "adapter_config.json"), "w"), indent=4)


def dora(argv):
    base, src, dst, seed = argv[0], argv[1], argv[2], int(argv[3])
    w, _ = read(os.path.join(base, "model.safetensors"))
    t, meta = read(os.path.join(src, "adapters.safetensors"))
    rng = random.Random(seed)
    for k in sorted(t):
        if not k.endswith(".lora_b"):
            continue
        mod = k[: -len(".lora_b")]
        dt, shape, raw = w[mod + ".weight"]
        W = floats(w[mod + ".weight"])
        out, inn = shape
        m = [math.sqrt(sum(W[j * inn + i] ** 2 for i in range(inn))) * (1 + 0.3 * rng.uniform(-1, 1))
             for j in range(out)]
        t[mod + ".m"] = f32([out], m)
    os.makedirs(dst, exist_ok=True)
    write(os.path.join(dst, "adapters.safetensors"), t, meta)
    cfg = json.load(open(os.path.join(src, "adapter_config.json")))
    cfg["fine_tune_type"] = "dora"
    json.dump(cfg, open(os.path.join(dst, "adapter_config.json"), "w"), indent=4)


def add(argv):
    src, dst, mod = argv[0], argv[1], argv[2]
    ra, ca, cb, seed = int(argv[3]), int(argv[4]), int(argv[5]), int(argv[6])
    t, meta = read(os.path.join(src, "adapters.safetensors"))
    cfg = json.load(open(os.path.join(src, "adapter_config.json")))
    rng = random.Random(seed)
    t[mod + ".lora_a"] = f32([ra, ca], [rng.uniform(-0.1, 0.1) for _ in range(ra * ca)])
    t[mod + ".lora_b"] = f32([ca, cb], [rng.uniform(-0.1, 0.1) for _ in range(ca * cb)])
    if cfg.get("fine_tune_type") == "dora":
        n = ra if "embed" in mod else cb     # one per row of the weight
        t[mod + ".m"] = f32([n], [1 + 0.3 * rng.uniform(-1, 1) for _ in range(n)])
    os.makedirs(dst, exist_ok=True)
    write(os.path.join(dst, "adapters.safetensors"), t, meta)
    json.dump(cfg, open(os.path.join(dst, "adapter_config.json"), "w"), indent=4)


def fuse(argv):
    base, adir, dst = argv
    w, meta = read(os.path.join(base, "model.safetensors"))
    t, _ = read(os.path.join(adir, "adapters.safetensors"))
    cfg = json.load(open(os.path.join(adir, "adapter_config.json")))
    scale = float(cfg["lora_parameters"]["scale"])
    out = {k: v for k, v in w.items()}
    mods = sorted({k.rsplit(".lora_a", 1)[0] for k in t if ".lora_a" in k})
    for mod in mods:
        name = mod + ".weight"
        dt, shape, raw = w[name]
        rows, inn = shape
        W = [float(x) for x in floats(w[name])]
        if "embed" in mod:
            A, B = floats(t[mod + ".lora_a"]), floats(t[mod + ".lora_b"])
            r = t[mod + ".lora_a"][1][1]
            for v in range(rows):
                for i in range(inn):
                    W[v * inn + i] += scale * sum(A[v * r + k] * B[k * inn + i] for k in range(r))
        parts = [] if "embed" in mod else sorted(k for k in t if k.startswith(mod + ".lora_a"))
        row0 = 0
        for pa in parts:
            pb = pa.replace(".lora_a", ".lora_b")
            A, B = floats(t[pa]), floats(t[pb])
            r = t[pa][1][1]
            n = t[pb][1][1]
            for j in range(n):
                for i in range(inn):
                    W[(row0 + j) * inn + i] += scale * sum(B[k * n + j] * A[i * r + k] for k in range(r))
            row0 += n
        if mod + ".m" in t:
            M = floats(t[mod + ".m"])
            for j in range(rows):
                nrm = math.sqrt(sum(W[j * inn + i] ** 2 for i in range(inn)))
                for i in range(inn):
                    W[j * inn + i] *= M[j] / nrm
        out[name] = f32(shape, W)
    for k, v in list(out.items()):
        if v[0] != "F32" and v[0] in ("BF16", "F16"):
            out[k] = f32(v[1], floats(v))
    os.makedirs(dst, exist_ok=True)
    write(os.path.join(dst, "model.safetensors"), out, meta)
    shutil.copy(os.path.join(base, "config.json"), os.path.join(dst, "config.json"))


if __name__ == "__main__":
    {"edit": edit, "dora": dora, "add": add, "fuse": fuse}[sys.argv[1]](sys.argv[2:])
