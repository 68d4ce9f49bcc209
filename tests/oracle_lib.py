"""What the float64 oracles (tests/<arch>/oracle.py) share: reading a
safetensors checkpoint (F32 or BF16) into Python floats, the arithmetic of
one token's row, and writing float32 [N, V] logits as .npy."""
import json
import math
import struct
import sys
from array import array


def load(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        head = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, t in head.items():
        if name == "__metadata__":
            continue
        a, b = t["data_offsets"]
        raw = data[a:b]
        if t["dtype"] == "F32":
            v = array("f")
            v.frombytes(raw)
        elif t["dtype"] == "BF16":
            h = array("H")
            h.frombytes(raw)
            v = array("f")
            v.frombytes(array("I", (x << 16 for x in h)).tobytes())
        else:
            sys.exit("oracle: %s: dtype %s" % (name, t["dtype"]))
        out[name] = (list(v), t["shape"])
    return out


def rows(t):
    v, shape = t
    c = shape[-1]
    return [v[i:i + c] for i in range(0, len(v), c)]


def linear(x, w, b=None):
    y = [sum(a * c for a, c in zip(r, x)) for r in w]
    return [a + c for a, c in zip(y, b)] if b else y


def rmsnorm(x, w, eps):
    s = 1 / math.sqrt(sum(a * a for a in x) / len(x) + eps)
    return [a * s * (w[i] if w else 1) for i, a in enumerate(x)]


def silu(a):
    return a / (1 + math.exp(-a))


def write_npy(out, logits):
    """logits: N rows of V floats, written as float32 [N, V]."""
    hdr = "{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d), }" % (
        len(logits), len(logits[0]))
    hdr += " " * (63 - (10 + len(hdr)) % 64) + "\n"
    with open(out, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(hdr)) + hdr.encode())
        f.write(array("f", [a for r in logits for a in r]).tobytes())
