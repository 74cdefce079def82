"""The served OpenAPI is the truth: schemathesis (every check, stateful) against a real
`rag-runtime serve`, once with an API key and once anonymous.

No 5xx, no response that violates the schema, every status code documented, 405 with the
path's methods in `Allow`, auth enforced where the schema declares it (schemathesis'
ignored_auth sends requests without the key). Failed-key rate limiting is off for the run
(`RAG_AUTH_FAILURES_PER_MINUTE=0`): the wrong keys that check sends would otherwise turn the
rest of the run into 429s. Examples per operation are bounded (`MAX_EXAMPLES`) to keep the
run to a few minutes; the seed is fixed (the stateful and fuzzing cases still vary with the
answers, so a run is not replayed exactly). Failures the runtime accepts (data Postgres
cannot store inside free-form metadata, which the schema cannot express, and an upload's
text parts read as JSON: 202, or 200 to an identical re-send, to an upload the check calls
schema-violating) are listed in `schemathesis-baseline.json`; anything else fails the test.
One check is off for one operation (`schemathesis.toml` says why: multipart form data is
text).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.runtime.helpers import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MAX_EXAMPLES = 8
SEED = 20261202
KEY = "schemathesis-key"
BASELINE = Path(__file__).with_name("schemathesis-baseline.json")
CONFIG = Path(__file__).with_name("schemathesis.toml")  # one check off for the upload: why there
HOOKS = Path(__file__).with_name("schemathesis_hooks.py")  # a serializer for PDF parts
ST = Path(sys.executable).with_name("st")


@pytest.fixture(scope="module", params=["key", "anonymous"])
def served_api(
    request: pytest.FixtureRequest, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, dict[str, str]]]:
    port = free_port()
    workdir = tmp_path_factory.mktemp(f"st-{request.param}")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env.update(
        {
            "RAG_DATABASE_URL": database_url,
            "RAG_PORT": str(port),
            "RAG_LOG_LEVEL": "warning",
            "RAG_AUTH_FAILURES_PER_MINUTE": "0",
            "HF_HUB_OFFLINE": "1",
        }
    )
    headers: dict[str, str] = {}
    if request.param == "key":
        env["RAG_API_KEYS"] = f'["{KEY}"]'
        headers["Authorization"] = f"Bearer {KEY}"
    else:
        env["RAG_ALLOW_ANONYMOUS"] = "true"
    log = (workdir / "serve.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "rag_runtime.cli", "serve"],
        cwd=workdir,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 240
    try:
        while True:
            try:
                if httpx.get(f"{url}/api/v1/ready", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(
                    f"rag-runtime serve did not start:\n{(workdir / 'serve.log').read_text()}"
                )
            time.sleep(0.5)
        yield url, headers
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(30)


def test_the_api_conforms_to_its_openapi(served_api: tuple[str, dict[str, str]]) -> None:
    url, headers = served_api
    args = [
        str(ST),
        "--config-file",
        str(CONFIG),
        "run",
        f"{url}/openapi.json",
        "--checks",
        "all",
        "--phases",
        "examples,coverage,fuzzing,stateful",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        str(SEED),
        "--workers",
        "1",
        "--request-timeout",
        "60",
        "--baseline",
        str(BASELINE),
        "--no-color",
    ]
    for name, value in headers.items():
        args += ["-H", f"{name}: {value}"]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": str(HOOKS)}
    result = subprocess.run(args, capture_output=True, text=True, timeout=900, check=False, env=env)
    summary = result.stdout[-6000:]
    assert result.returncode == 0, summary
    assert " failures" not in summary.splitlines()[-1], summary
