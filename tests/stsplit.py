"""Split DIR/model.safetensors into N shards of about equal bytes, in the
order of the data, with the index mlx-lm and Hugging Face write beside
them (model-0000K-of-0000N.safetensors, model.safetensors.index.json):
    python3 tests/stsplit.py DIR OUT N
OUT gets DIR's config.json too.  Only the standard library."""
import json
import os
import shutil
import struct
import sys

src, out, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
with open(os.path.join(src, "model.safetensors"), "rb") as f:
    hlen = struct.unpack("<Q", f.read(8))[0]
    head = json.loads(f.read(hlen))
    data = f.read()
meta = head.pop("__metadata__", None)
names = sorted(head, key=lambda k: head[k]["data_offsets"][0])
per = len(data) / n
os.makedirs(out, exist_ok=True)
shutil.copy(os.path.join(src, "config.json"), out)
weight_map, k = {}, 0
for i in range(n):
    part = []
    while k < len(names) and (head[names[k]]["data_offsets"][0] < per * (i + 1) or i == n - 1):
        part.append(names[k])
        k += 1
    file = "model-%05d-of-%05d.safetensors" % (i + 1, n)
    hdr, blob, at = {}, [], 0
    for name in part:
        b, e = head[name]["data_offsets"]
        hdr[name] = dict(head[name], data_offsets=[at, at + e - b])
        blob.append(data[b:e])
        at += e - b
        weight_map[name] = file
    if meta is not None:
        hdr["__metadata__"] = meta
    text = json.dumps(hdr).encode()
    text += b" " * (-len(text) % 8)
    with open(os.path.join(out, file), "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blob))
with open(os.path.join(out, "model.safetensors.index.json"), "w") as f:
    json.dump({"metadata": {"total_size": len(data)}, "weight_map": weight_map}, f, indent=2)
