"""The GPU path end to end: a server started with `--device gpu` (lavapipe on a machine without a
GPU) quantizes through the official client, and every tensor must be llama-quantize's, byte for
byte (shared/fixtures/*-expected.json), as on the CPU path."""
import time

import httpx
import ollama
import pytest

from test_quantize import ALL_TYPES, FAST_GEMMA, GEMMA, SHARED, TINY, check_against, create_from, model_blob


def gpu_server(tmp_path_factory, source):
    from conftest import Server

    s = Server(tmp_path_factory.mktemp("models"), "--device", "gpu")
    q = httpx.get(s.url + "/api/kiln/info").json()["quantizer"]
    assert q["backend"] == "gpu" and q["self_test"] == "passed", q
    assert {"Q4_K", "Q6_K", "IQ4_NL", "IQ4_XS"} <= set(q["gpu_types"]) and "IQ2_XXS" not in q["gpu_types"], q
    create_from(s, source)
    return s


@pytest.fixture(scope="module")
def tiny_gpu(tmp_path_factory):
    s = gpu_server(tmp_path_factory, SHARED / "fixtures" / "tiny-llama-f16.gguf")
    yield s
    s.stop()


@pytest.mark.parametrize("ftype", ALL_TYPES)
def test_tiny_llama_on_the_gpu_matches_llama_quantize(tiny_gpu, ftype):
    c = ollama.Client(host=tiny_gpu.url)
    r = c.create(model=f"gpu-{ftype.lower()}", from_="src", quantize=ftype.lower())
    assert r.status == "success"
    check_against(model_blob(tiny_gpu, f"gpu-{ftype.lower()}"), TINY["file_types"][ftype], ftype != "F16")


@pytest.fixture(scope="module")
def gemma_gpu(tmp_path_factory, gemma_f16):
    s = gpu_server(tmp_path_factory, gemma_f16)
    yield s
    s.stop()


@pytest.mark.parametrize("ftype", FAST_GEMMA)
def test_gemma3_270m_on_the_gpu_matches_llama_quantize(gemma_gpu, ftype):
    from conftest import dropped

    c = ollama.Client(host=gemma_gpu.url)
    with dropped(c, f"gpu-{ftype.lower()}") as name:
        t0 = time.time()
        r = c.create(model=name, from_="src", quantize=ftype)
        elapsed = time.time() - t0
        assert r.status == "success"
        check_against(model_blob(gemma_gpu, name), GEMMA["file_types"][ftype], True)
    print(f"gemma3-270m {ftype} on the GPU (lavapipe): {elapsed:.2f} s")


def test_gemma3_270m_iq4_on_the_gpu_matches_llama_quantize(gemma_gpu):
    """IQ4_XS (IQ4_NL where rows are not a multiple of 256) from its GPU kernels, against
    llama-quantize without an imatrix, tensor for tensor."""
    from conftest import dropped
    from test_imatrix import NEWTYPES, check_model

    c = ollama.Client(host=gemma_gpu.url)
    with dropped(c, "gpu-iq4_xs") as name:
        t0 = time.time()
        assert c.create(model=name, from_="src", quantize="IQ4_XS").status == "success"
        elapsed = time.time() - t0
        check_model(gemma_gpu, name, NEWTYPES["IQ4_XS"], None)
    print(f"gemma3-270m IQ4_XS on the GPU (lavapipe): {elapsed:.2f} s")


@pytest.mark.parametrize("ftype", ["Q4_K_M", "Q5_K_M", "Q2_K", "Q4_1", "IQ4_XS"])
def test_gemma3_270m_with_an_imatrix_on_the_gpu_matches_llama_quantize(gemma_gpu, ftype):
    """The importance-weighted kernels (quantize_row_*_impl) on the GPU, against llama-quantize
    --imatrix, tensor for tensor. Between them every weighted kernel runs: Q4_K_M, the common
    choice, takes Q4_K, Q6_K and, for the 640-wide tensors, Q5_0; Q5_K_M takes Q5_K and Q5_1;
    Q2_K takes Q3_K and Q4_0; Q4_1 takes Q4_1; IQ4_XS takes IQ4_XS and IQ4_NL."""

    from conftest import dropped
    from test_imatrix import EXPECTED, FIX, check_model, create

    c = ollama.Client(host=gemma_gpu.url)
    q = httpx.get(gemma_gpu.url + "/api/kiln/info").json()["quantizer"]
    weighted = {"Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "IQ4_NL", "IQ4_XS"}
    assert set(q["gpu_weighted_types"]) == weighted, q
    digest = c.create_blob(str(FIX / "gemma3-270m-gpl3.imatrix.gguf"))
    with dropped(c, f"gpu-im-{ftype.lower()}") as name:
        t0 = time.time()
        assert create(c, model=name, **{"from": "src"}, quantize=ftype, imatrix=digest).status == "success"
        elapsed = time.time() - t0
        check_model(gemma_gpu, name, EXPECTED[ftype], digest)
    print(f"gemma3-270m {ftype} with an imatrix on the GPU (lavapipe): {elapsed:.2f} s")
