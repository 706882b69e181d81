"""Every llama-quantize file type, with and without an importance matrix (issue 13): gemma3-270m F16
and the fixture imatrix in both llama-imatrix formats, through the official Python client's own
request plumbing (the `imatrix` field is a kiln extension the client has no argument for), checked
tensor for tensor (type and sha256) against llama-quantize (shared/fixtures/imatrix): with the
matrix every type of gemma3-270m-imatrix-expected.json, without it every type of
gemma3-270m-newtypes-expected.json (its recorded refusals must be a 400 that leaves the store
unchanged).

CI runs the subset in CI_WITH_IMATRIX / CI_WITHOUT_IMATRIX; IMATRIX_TYPES=all runs every type of
both files (both matrix formats). A type whose kernel the server lacks fails, naming the type."""
import hashlib
import json
import mmap
import os
import pathlib
import struct

import ollama
import pytest

from conftest import dropped

SHARED = pathlib.Path(__file__).resolve().parents[3] / "shared"
FIX = SHARED / "fixtures" / "imatrix"
EXPECTED = json.loads((FIX / "gemma3-270m-imatrix-expected.json").read_text())["file_types"]
NEWTYPES = json.loads((FIX / "gemma3-270m-newtypes-expected.json").read_text())["file_types"]

# The CI subset: (type, imatrix format) runs with the matrix, and types without one. These are the
# types this server has kernels for today, chosen to cover each kind of rule (weighted legacy and
# K-quants, the imatrix-only type choices of Q4_0, Q2_K_S's Q2_K that needs the matrix, COPY with
# the keys, MXFP4_MOE's Q8_0 on a model without experts) and two recorded refusals.
CI_WITH_IMATRIX = [("Q4_K_M", "gguf"), ("Q4_0", "dat"), ("Q6_K", "gguf"), ("Q2_K", "dat"), ("Q2_K_S", "gguf"), ("COPY", "gguf")]
CI_WITHOUT_IMATRIX = ["Q3_K_L", "Q5_K_S", "Q4_1", "F16", "MXFP4_MOE", "IQ2_XXS", "Q2_K_S"]
# Representative types of the new block formats (with the matrix from the .gguf, and without one
# where llama-quantize allows it): the non-linear, a grid of each family, ternary and 1-bit.
CI_NEW_KERNEL_TYPES: list[str] = ["IQ4_NL", "IQ4_XS", "IQ3_S", "IQ2_XXS", "IQ1_M", "TQ1_0", "Q1_0"]

if os.environ.get("IMATRIX_TYPES") == "all":
    WITH_RUNS = [(t, f) for t in EXPECTED for f in ("gguf", "dat")]
    WITHOUT_RUNS = list(NEWTYPES)
else:
    WITH_RUNS = CI_WITH_IMATRIX + [(t, "gguf") for t in CI_NEW_KERNEL_TYPES]
    WITHOUT_RUNS = CI_WITHOUT_IMATRIX + [t for t in CI_NEW_KERNEL_TYPES if t in NEWTYPES and t not in CI_WITHOUT_IMATRIX]

# ggml type id → (name as the fixtures write it, values per block, bytes per block).
GGML_TYPES = {
    0: ("F32", 1, 4), 1: ("F16", 1, 2), 2: ("Q4_0", 32, 18), 3: ("Q4_1", 32, 20), 6: ("Q5_0", 32, 22),
    7: ("Q5_1", 32, 24), 8: ("Q8_0", 32, 34), 10: ("Q2_K", 256, 84), 11: ("Q3_K", 256, 110),
    12: ("Q4_K", 256, 144), 13: ("Q5_K", 256, 176), 14: ("Q6_K", 256, 210), 16: ("IQ2_XXS", 256, 66),
    17: ("IQ2_XS", 256, 74), 18: ("IQ3_XXS", 256, 98), 19: ("IQ1_S", 256, 50), 20: ("IQ4_NL", 32, 18),
    21: ("IQ3_S", 256, 110), 22: ("IQ2_S", 256, 82), 23: ("IQ4_XS", 256, 136), 29: ("IQ1_M", 256, 56),
    30: ("BF16", 1, 2), 34: ("TQ1_0", 256, 54), 35: ("TQ2_0", 256, 66), 39: ("MXFP4", 32, 17),
    41: ("Q1_0", 128, 18), 42: ("Q2_0", 64, 18),
}


def read_gguf(path: pathlib.Path):
    """A small GGUF reader (the `gguf` package cannot read Q1_0/Q2_0): metadata in file order and
    every tensor's (name, type, sha256 of its data), in file order."""
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
        pos = 0

        def take(fmt):
            nonlocal pos
            v = struct.unpack_from("<" + fmt, m, pos)
            pos += struct.calcsize("<" + fmt)
            return v[0]

        def string():
            nonlocal pos
            n = take("Q")
            pos += n
            return bytes(m[pos - n : pos]).decode()

        scalars = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}

        def value(vt):
            if vt == 8:
                return string()
            if vt == 9:
                et, n = take("I"), take("Q")
                return [value(et) for _ in range(n)]
            return take(scalars[vt])

        assert bytes(m[:4]) == b"GGUF" and take("4s") and take("I") == 3
        n_tensors, n_kv = take("Q"), take("Q")
        kv = {}
        for _ in range(n_kv):
            k = string()
            kv[k] = value(take("I"))
        infos = []
        for _ in range(n_tensors):
            name = string()
            dims = [take("Q") for _ in range(take("I"))]
            ty, off = take("I"), take("Q")
            infos.append((name, dims, ty, off))
        align = kv.get("general.alignment", 32)
        data = (pos + align - 1) // align * align
        tensors = []
        for name, dims, ty, off in infos:
            tname, block, size = GGML_TYPES[ty]
            n = 1
            for d in dims:
                n *= d
            start = data + off
            tensors.append((name, tname, hashlib.sha256(m[start : start + n // block * size]).hexdigest()))
        return kv, tensors


def create(client: ollama.Client, **body):
    """POST /api/create through the client's request path, with kiln's extra fields."""
    return client._request(ollama.ProgressResponse, "POST", "/api/create", json={"stream": False, **body})


def model_blob(server, name: str) -> pathlib.Path:
    m = json.loads((server.store / "manifests/registry.ollama.ai/library" / name / "latest").read_text())
    layer = next(l for l in m["layers"] if l["mediaType"] == "application/vnd.ollama.image.model")
    return server.store / "blobs" / layer["digest"].replace(":", "-")


def store_files(server) -> list[str]:
    return sorted(str(p) for p in server.store.rglob("*"))


def check_model(server, name: str, want: dict, imatrix_digest: str | None):
    """The model's GGUF against a recorded llama-quantize run: every tensor's type and sha256, the
    tensor order, general.file_type and the quantize.* keys (the file name is kiln's digest)."""
    kv, tensors = read_gguf(model_blob(server, name))
    got = {n: (t, h) for n, t, h in tensors}
    exp = {n: (t["type"], t["sha256"]) for n, t in want["tensors"].items()}
    bad = [n for n in exp if got.get(n) != exp[n]]
    assert not bad, f"{name}: {len(bad)} tensors differ, e.g. {bad[:3]}: {[got.get(n) for n in bad[:3]]} vs {[exp[n] for n in bad[:3]]}"
    assert [n for n, _, _ in tensors] == want["tensor_order"]
    assert kv["general.file_type"] == want["file_type"]
    quantize_kv = {k: v for k, v in kv.items() if k.startswith("quantize.")}
    expected_kv = dict(want.get("quantize_kv", {}))
    if imatrix_digest is not None:
        # The file name llama-quantize records is the digest kiln was given: show names the matrix.
        assert quantize_kv.pop("quantize.imatrix.file") == imatrix_digest
        expected_kv.pop("quantize.imatrix.file")
        assert list(kv)[-len(want["kv_order_tail"]) :] == want["kv_order_tail"]
    assert quantize_kv == expected_kv


@pytest.fixture(scope="module")
def imatrix_server(tmp_path_factory, gemma_f16):
    from conftest import Server

    s = Server(tmp_path_factory.mktemp("models"))
    c = ollama.Client(host=s.url)
    c.create(model="src", files={"model.gguf": c.create_blob(str(gemma_f16))})
    digests = {f: c.create_blob(str(FIX / f"gemma3-270m-gpl3.imatrix.{f}")) for f in ("gguf", "dat")}
    yield s, c, digests
    s.stop()


def test_the_fixtures_cover_every_type_and_ci_runs_exist():
    assert len(EXPECTED) == 36 and len(NEWTYPES) == 28
    assert all(t in EXPECTED for t, _ in CI_WITH_IMATRIX + [(t, "gguf") for t in CI_NEW_KERNEL_TYPES])
    assert all(t in NEWTYPES for t in CI_WITHOUT_IMATRIX)


@pytest.mark.parametrize("ftype,fmt", WITH_RUNS)
def test_weighted_quantization_matches_llama_quantize(imatrix_server, ftype, fmt):
    server, c, digests = imatrix_server
    with dropped(c, f"im-{ftype.lower()}-{fmt}") as name:
        assert create(c, model=name, **{"from": "src"}, quantize=ftype, imatrix=digests[fmt]).status == "success"
        check_model(server, name, EXPECTED[ftype], digests[fmt])
        info = c.show(name).modelinfo
        assert info.get("quantize.imatrix.file") == digests[fmt], sorted(k for k in info if k.startswith("quantize"))


def offending(run: dict) -> tuple[str, str]:
    """The tensor and type a refused run's log names."""
    lines = run["error"] if isinstance(run["error"], list) else run["error"].splitlines()
    tensor = next(l.split(": ", 1)[1] for l in lines if "offending tensor:" in l).strip()
    ty = next(l.split(": ", 1)[1] for l in lines if "target type:" in l).strip()
    return tensor, ty.upper()


@pytest.mark.parametrize("ftype", WITHOUT_RUNS)
def test_quantization_without_imatrix_matches_llama_quantize(imatrix_server, ftype):
    server, c, _ = imatrix_server
    want = NEWTYPES[ftype]
    name = f"plain-{ftype.lower()}"
    if want.get("failed"):
        tensor, ty = offending(want)
        before = store_files(server)
        with pytest.raises(ollama.ResponseError) as e:
            create(c, model=name, **{"from": "src"}, quantize=ftype)
        assert e.value.status_code == 400, e.value.error
        assert f"{tensor} would be quantized to {ty}, which needs an importance matrix" in e.value.error
        assert 'create an importance matrix with llama-imatrix and pass it as "imatrix"' in e.value.error
        assert store_files(server) == before
        return
    with dropped(c, name):
        assert create(c, model=name, **{"from": "src"}, quantize=ftype).status == "success"
        check_model(server, name, want, None)


def dat(entries: dict) -> bytes:
    out = struct.pack("<i", len(entries))
    for name, vals in entries.items():
        n = name.encode()
        out += struct.pack("<i", len(n)) + n + struct.pack("<ii", 1, len(vals)) + struct.pack(f"<{len(vals)}f", *vals)
    return out


def test_bad_importance_matrices_are_refused_before_anything_is_written(imatrix_server):
    server, c, digests = imatrix_server
    upload = lambda b: c.create_blob(str(_write(server.store.parent / "upload.bin", b)))
    corrupt = upload(b"\x05\x00\x00\x00garbage")
    other_model = upload(dat({"blk.0.some_other.weight": [1.0] * 64}))
    wrong_length = upload(dat({"blk.0.attn_q.weight": [1.0] * 3}))
    before = sorted(str(p) for p in server.store.rglob("*"))
    cases = [
        (dict(quantize="q4_K_M", imatrix=corrupt), "importance matrix: truncated or malformed"),
        (dict(quantize="q4_K_M", imatrix=other_model), "no entry for any tensor"),
        # llama-quantize quantizes unweighted until the first tensor that needs weights, then bails
        # out leaving a partial file; kiln refuses before writing anything.
        (
            dict(quantize="IQ2_XXS", imatrix=other_model),
            "the importance matrix has no entry for blk.0.attn_output.weight (after imatrix_include/imatrix_exclude), which is quantized to IQ2_XXS",
        ),
        (
            dict(quantize="iq2_xxs"),
            'blk.0.attn_output.weight would be quantized to IQ2_XXS, which needs an importance matrix: create an importance matrix with llama-imatrix and pass it as "imatrix"',
        ),
        (dict(quantize="IQ1_M"), "blk.0.attn_output.weight would be quantized to IQ2_XXS, which needs an importance matrix"),
        (dict(quantize="IQ2_S"), "blk.2.ffn_down.weight would be quantized to IQ2_XS, which needs an importance matrix"),
        (dict(quantize="q4_K_M", imatrix=wrong_length), "blk.0.attn_q.weight"),
        (dict(imatrix=digests["gguf"]), "imatrix needs quantize"),
        (dict(quantize="q4_K_M", imatrix="sha256:" + "0" * 64), "not found"),
    ]
    for body, message in cases:
        with pytest.raises(ollama.ResponseError) as e:
            create(c, model="bad", **{"from": "src"}, **body)
        assert e.value.status_code == 400, (body, e.value.error)
        assert message in e.value.error, (body, e.value.error)
    assert sorted(str(p) for p in server.store.rglob("*")) == before


def _write(path: pathlib.Path, b: bytes) -> pathlib.Path:
    path.write_bytes(b)
    return path


# Per-tensor controls (llama-quantize's --tensor-type, --pure, …) against
# gemma3-270m-controls-expected.json, run by run.
CONTROLS = json.loads((FIX / "gemma3-270m-controls-expected.json").read_text())["runs"]
CONTROL_BODIES = {
    "output_q8_0_token_embd_q8_0": dict(quantize="Q4_K_M", output_tensor_type="q8_0", token_embedding_type="q8_0"),
    "tensor_type_attn_v_q8_0_ffn_down_q6_k": dict(quantize="Q4_K_M", tensor_types=["attn_v=q8_0", "ffn_down=q6_k"]),
    "pure": dict(quantize="Q4_K_M", pure=True),
    "leave_output_tensor": dict(quantize="Q4_K_M", leave_output_tensor=True),
    "pure_imatrix_q3_k_m": dict(quantize="Q3_K_M", pure=True, imatrix="gguf"),
    "output_tensor_type_only_q5_0": dict(quantize="Q4_K_M", output_tensor_type="q5_0"),
    "token_embedding_type_only_q5_1": dict(quantize="Q4_K_M", token_embedding_type="q5_1"),
    "tensor_type_first_match_wins": dict(quantize="Q4_K_M", tensor_types=["attn=q8_0", "attn_v=q4_0"]),
    "imatrix_dat_q4_k_m": dict(quantize="Q4_K_M", imatrix="dat"),
    "imatrix_exclude_ffn": dict(quantize="Q4_K_M", imatrix="gguf", imatrix_exclude=["ffn_"]),
    "imatrix_include_attn_q": dict(quantize="Q4_K_M", imatrix="gguf", imatrix_include=["attn_q"]),
    "tensor_type_regex": dict(quantize="Q4_K_M", tensor_types=[r"blk\.1[0-7]\.ffn_(up|gate)=q5_k", "ATTN_Q=iq4_nl"]),
    "imatrix_dat_iq2_xxs": dict(quantize="IQ2_XXS", imatrix="dat"),
}
# Runs that need the kernels of new block formats: in CI once CI_NEW_KERNEL_TYPES names them.
CONTROL_KERNELS = {"tensor_type_regex": ["IQ4_NL"], "imatrix_dat_iq2_xxs": ["IQ2_XXS", "IQ4_NL"]}
CONTROL_RUNS = sorted(
    r
    for r in CONTROL_BODIES
    if os.environ.get("IMATRIX_TYPES") == "all" or all(t in CI_NEW_KERNEL_TYPES for t in CONTROL_KERNELS.get(r, []))
)
CONTROL_REFUSED = {
    # llama-quantize fails at blk.2.ffn_down after writing the tensors before it; kiln refuses up front.
    "imatrix_exclude_ffn_down_iq2_xxs": (
        dict(quantize="IQ2_XXS", imatrix="gguf", imatrix_exclude=["ffn_down"]),
        "the importance matrix has no entry for blk.2.ffn_down.weight (after imatrix_include/imatrix_exclude), which is quantized to IQ2_XXS and needs one",
    ),
    # llama-quantize aborts on this one (GGML_ASSERT); kiln refuses it before writing anything.
    "token_embedding_type_q4_k_unfit": (
        dict(quantize="Q4_K_M", token_embedding_type="q4_k"),
        "token_embd.weight: Q4_K needs rows that are a multiple of 256; the tensor's rows are 640 wide",
    ),
}


def test_every_controls_run_is_covered():
    assert sorted(CONTROLS) == sorted([*CONTROL_BODIES, *CONTROL_REFUSED])


def _body(digests, body):
    body = dict(body)
    if "imatrix" in body:
        body["imatrix"] = digests[body["imatrix"]]
    return body


@pytest.mark.parametrize("run", CONTROL_RUNS)
def test_per_tensor_controls_match_llama_quantize(imatrix_server, run):
    server, c, digests = imatrix_server
    body = _body(digests, CONTROL_BODIES[run])
    with dropped(c, "ctl-" + run.replace("_", "-")) as name:
        assert create(c, model=name, **{"from": "src"}, **body).status == "success"
        check_model(server, name, CONTROLS[run], body.get("imatrix"))


def test_controls_llama_quantize_cannot_honour_are_refused_before_anything_is_written(imatrix_server):
    server, c, digests = imatrix_server
    before = sorted(str(p) for p in server.store.rglob("*"))
    cases = [(_body(digests, b), m) for b, m in CONTROL_REFUSED.values()] + [
        (dict(pure=True), "pure needs quantize"),
        (dict(tensor_types=["attn_v=q8_0"]), "tensor_types needs quantize"),
        (dict(quantize="Q4_K_M", tensor_types=["ffn_(up=q8_0"]), "tensor_types[0]: 'ffn_(up' is not a valid regular expression"),
        (dict(quantize="Q4_K_M", tensor_types=["attn_v"]), "tensor_types[0]: 'attn_v' is not PATTERN=TYPE"),
        (dict(quantize="Q4_K_M", output_tensor_type="q7_0"), "output_tensor_type: unknown type 'q7_0' - kiln's types are F32, F16, BF16"),
        (dict(quantize="Q4_K_M", tensor_types=["attn_v=q8_0", "ffn_down=q9_k"]), "tensor_types[1]: unknown type 'q9_k' - kiln's types are"),
        (dict(quantize="Q4_K_M", tensor_types=["attn_v=nvfp4"]), "tensor_types[0]: kiln cannot quantize to NVFP4"),
        (dict(quantize="Q4_K_M", imatrix_include=["attn_q"]), "imatrix_include needs imatrix"),
        (
            dict(quantize="Q4_K_M", imatrix=digests["gguf"], imatrix_include=["attn_q"], imatrix_exclude=["ffn_"]),
            "imatrix_include and imatrix_exclude cannot be used together",
        ),
        (dict(quantize="Q4_K_M", imatrix=digests["gguf"], imatrix_include=["no_such_tensor"]), "left no entry"),
    ]
    for body, message in cases:
        with pytest.raises(ollama.ResponseError) as e:
            create(c, model="bad-ctl", **{"from": "src"}, **body)
        assert e.value.status_code == 400, (body, e.value.error)
        assert message in e.value.error, (body, e.value.error)
    assert sorted(str(p) for p in server.store.rglob("*")) == before
