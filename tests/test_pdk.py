"""Device models installed by set-up: present, trimmed, usable, and installs are idempotent."""

import pytest

from simworkers.pdk import PROCESSES, PdkError, get_process, install


def test_every_process_is_installed():
    for proc in PROCESSES.values():
        assert proc.installed(), f"run: tlgrpo pdk install {proc.name}"


def test_sky130_is_trimmed_to_the_two_fets():
    text = get_process("sky130").include.read_text()
    assert ".subckt  sky130_fd_pr__nfet_01v8 " in text and ".subckt  sky130_fd_pr__pfet_01v8 " in text
    assert ".subckt  sky130_fd_pr__nfet_g5v0d10v5" not in text
    assert len(text) < 1_000_000


def test_generic_models_say_they_are_not_foundry_models():
    assert "NOT foundry models" in get_process("generic180").include.read_text()


def test_install_again_is_a_no_op():
    messages = []
    before = get_process("sky130").include.stat().st_mtime
    install("sky130", log=messages.append)
    assert "ready" in messages[0]
    assert get_process("sky130").include.stat().st_mtime == before


def test_missing_models_name_the_command(tmp_path, monkeypatch):
    monkeypatch.setenv("TLGRPO_PDK_DIR", str(tmp_path))
    with pytest.raises(PdkError, match="tlgrpo pdk install gf180mcu"):
        get_process("gf180mcu").require()


def test_gf180mcu_models_simulate(tmp_path):
    """A 3.3 V NMOS in the gf180mcu typical corner conducts as expected."""
    import subprocess

    deck = tmp_path / "nmos.sp"
    deck.write_text(
        f"* gf180mcu check\n.include '{get_process('gf180mcu').include}'\n"
        "m1 d g 0 0 nmos_3p3 w=10u l=0.5u\nvd d 0 3.3\nvg g 0 1.65\n"
        '.control\nset num_threads=1\nop\necho "@@id $&vd#branch"\n.endc\n.end\n'
    )
    out = subprocess.run(["ngspice", "-b", str(deck)], capture_output=True, text=True, timeout=60)
    line = next(s for s in out.stdout.splitlines() if s.startswith("@@id"))
    assert -1e-2 < float(line.split()[1]) < -1e-5  # a few hundred microamps into the drain
