"""schemathesis against /api/openapi.json on the real server: every documented operation, with
generated (and schema-violating) inputs, must answer without a 5xx, with a documented status,
content type and headers, and a body that matches the description."""
import hashlib
import os
import pathlib
import re
import subprocess
import sys

import httpx

from conftest import SHARED


def test_openapi_description_lists_every_route(server):
    doc = httpx.get(server.url + "/api/openapi.json").json()
    assert doc["openapi"].startswith("3.1")
    assert set(doc["paths"]) == {"/", "/api/version", "/api/kiln/info", "/api/blobs/{digest}", "/api/create", "/api/tags",
                                 "/api/show", "/api/copy", "/api/delete", "/api/pull", "/api/push", "/api/openapi.json"}
    create = doc["components"]["schemas"]["CreateRequest"]["properties"]
    for field in ("model", "from", "files", "adapters", "template", "system", "license", "parameters", "messages",
                  "quantize", "stream"):
        assert field in create, field


def test_schemathesis_finds_no_server_errors_or_schema_violations(server, tmp_path):
    # Something to find: a model for show/copy/delete to hit, besides the generated names.
    tiny = (SHARED / "fixtures" / "tiny-llama-f16.gguf").read_bytes()
    digest = "sha256:" + hashlib.sha256(tiny).hexdigest()
    assert httpx.post(f"{server.url}/api/blobs/{digest}", content=tiny).status_code == 201
    r = httpx.post(server.url + "/api/create", json={"model": "m", "files": {"t.gguf": digest}, "stream": False}, timeout=60)
    assert r.status_code == 200, r.text
    cli = pathlib.Path(sys.executable).parent / "schemathesis"
    examples = os.environ.get("KILN_SCHEMATHESIS_EXAMPLES", "150")
    run = subprocess.run(
        [str(cli), "run", server.url + "/api/openapi.json",
         "--checks", "not_a_server_error,status_code_conformance,content_type_conformance,"
                     "response_schema_conformance,response_headers_conformance",
         "--max-examples", examples, "--request-timeout", "60", "--no-color",
         # Push and pull reach out to the registry a name names (none is here): their answer is
         # Ollama's documented 500, which this check would count; tests/e2e/registry.rs covers them.
         "--exclude-path-regex", "^/api/(pull|push)$"],
        capture_output=True, text=True, timeout=900, cwd=tmp_path,
    )
    out = run.stdout + run.stderr
    summary = re.search(r"(\d+) generated, (\d+) passed", out)
    print(summary.group(0) if summary else out[-3000:])
    assert run.returncode == 0, out[-6000:]
    assert summary and summary.group(1) == summary.group(2) and int(summary.group(1)) > 100, out[-3000:]
    # The store survived it: the seeded model is intact or was deleted whole, and no 5xx was seen.
    tags = httpx.get(server.url + "/api/tags").json()["models"]
    for m in tags:
        assert httpx.post(server.url + "/api/show", json={"model": m["name"]}).status_code == 200
