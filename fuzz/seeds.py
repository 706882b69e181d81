"""Writes the fuzzers' seed corpus (committed under fuzz/corpus/): small GGUF files, among them
tiny-llama's real header with every tensor shrunk, and the shared Modelfile and validation cases.
Run once with the test venv's Python (it has `gguf`): python fuzz/seeds.py ../shared"""
import json
import pathlib
import struct
import sys

import numpy as np
from gguf import GGUFReader, GGUFValueType, GGUFWriter

here = pathlib.Path(__file__).parent
shared = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "../shared")
out = {name: here / "corpus" / name for name in ("gguf", "modelfile", "create_request")}
for d in out.values():
    d.mkdir(parents=True, exist_ok=True)

# tiny-llama's header (vocabulary, template, hyper-parameters, all 75 tensor names) with
# tensors of 32 or 32x2 F16 values, so the seed stays small but parses as a whole model.
r = GGUFReader(shared / "fixtures/tiny-llama-f16.gguf")
w = GGUFWriter(str(out["gguf"] / "tiny-llama-shrunk.gguf"), "llama")
for key, f in r.fields.items():
    if key.startswith("GGUF.") or key == "general.architecture":
        continue
    t = f.types[0]
    if t == GGUFValueType.ARRAY:
        vals = [bytes(f.parts[i]).decode() if f.types[1] == GGUFValueType.STRING else f.parts[i].tolist()[0] for i in f.data]
        w.add_array(key, vals)
    elif t == GGUFValueType.STRING:
        w.add_string(key, bytes(f.parts[f.data[0]]).decode())
    else:
        w.add_key_value(key, f.parts[f.data[0]].tolist()[0], t)
for t in r.tensors:
    shape = (32,) if len(t.shape) == 1 else (2, 32)
    w.add_tensor(t.name, np.full(shape, 0.5, dtype=np.float16))
w.write_header_to_file()
w.write_kv_data_to_file()
w.write_tensors_to_file()
w.close()


def gguf(kvs, tensors, data):
    b = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kvs))
    for k, v in kvs:
        b += struct.pack("<Q", len(k)) + k.encode() + v
    for name, dims, ty, off in tensors:
        b += struct.pack("<Q", len(name)) + name.encode() + struct.pack("<I", len(dims))
        b += b"".join(struct.pack("<Q", d) for d in dims) + struct.pack("<IQ", ty, off)
    b += b"\0" * (-len(b) % 32)
    return b + data


def s(v):
    return struct.pack("<IQ", 8, len(v)) + v.encode()


def u32(v):
    return struct.pack("<II", 4, v)


(out["gguf"] / "minimal.gguf").write_bytes(gguf([("general.architecture", s("test"))], [], b""))
llama = [("general.architecture", s("llama")), ("llama.block_count", u32(2)),
         ("llama.attention.head_count", u32(4)), ("llama.attention.head_count_kv", u32(2))]
names = ["token_embd.weight", "blk.0.attn_v.weight", "blk.1.ffn_down.weight"]
f16 = [(n, [32, 4], 1, i * 256) for i, n in enumerate(names)]
(out["gguf"] / "llama-f16.gguf").write_bytes(gguf(llama, f16, b"\x00\x3c" * 384))
q = [(n, [32, 4], ty, i * 256) for (i, n), ty in zip(enumerate(names), (8, 12, 14))]  # Q8_0, Q4_K, Q6_K
(out["gguf"] / "llama-mixed.gguf").write_bytes(gguf(llama, q, b"\0" * 768))

for kind, dest in (("modelfile", "modelfile"), ("validation", "create_request")):
    for i, case in enumerate(json.loads((here.parent / f"core/tests/cases/{kind}.json").read_text())):
        body = case["text"] if kind == "modelfile" else json.dumps(case.get("request", case))
        (out[dest] / f"case-{i:03}").write_text(body)
print({k: len(list(v.iterdir())) for k, v in out.items()})
