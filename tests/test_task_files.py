"""Task files: user tasks need no code; every malformed file names the file, the field and the fix."""

import pytest

from simworkers.backends import make_backend
from simworkers.catalog import load_task
from simworkers.task import TaskError
from simworkers.taskfile import parse_task_file
from system.agent.reward import score_result
from tests.conftest import RC_TASK, write_task


def test_user_task_from_a_folder_is_found_and_simulated(user_task_dir):
    task = load_task("rc_user")
    assert task.path.startswith(str(user_task_dir))
    with make_backend("shared") as sim:
        result = sim.simulate(task, task.reference())
    assert result.ok, result.reason
    # 1 / (2 pi 10k 1n) = 15.9 kHz, inside the [14k, 18k] spec
    assert result.metrics["f3db"] == pytest.approx(15915, rel=0.01)
    assert result.metrics["vdc"] == pytest.approx(1.0, abs=1e-6)
    assert score_result(task.specs, result).value == 1.0


def _broken(tmp_path, **changes):
    body = RC_TASK.format(name="broken", extra="")
    for old, new in changes.items():
        assert old in body or old == "netlist", old
        body = body.replace(old, new)
    netlist = changes.get("netlist", None)
    return write_task(tmp_path, "broken", body=body, **({"netlist": netlist} if netlist else {})) / "task.yaml"


@pytest.mark.parametrize(
    ("change", "field", "fix"),
    [
        ({"description: An RC low-pass filter; set its corner frequency.\n": ""}, "description", "add 'description:'"),
        ({"metric: f3db, kind": "metric: bandwidth, kind"}, "specs[0].metric", "use one of"),
        ({"target: [14e3, 18e3]": "target: [18e3, 14e3]"}, "specs[0].target", "lower bound first"),
        ({"lo: 100, hi: 1e6": "lo: 1e6, hi: 100"}, "params[0].lo", "make lo < hi"),
        ({"{name: c, unit: F": "{name: cx, unit: F"}, "params[1].name", "use {cx} in the netlist"),
        ({"process: generic180": "process: tsmc7"}, "process", "use one of"),
        ({"kind: range": "kind: between"}, "specs[0].kind", "min, max or range"),
        ({"emits: [f3db]": "emits: []"}, "testbench", "add f3db to the 'emits'"),
        ({"reference: 1e4": "reference: 1e7"}, "params[0].reference", "widen the range"),
        ({"name: r, unit": "name: ln, unit"}, "params[0].name", "not a built-in function"),
        ({"lo: 100, hi": "lo: abc, hi"}, "params[0].lo", "plain number"),
        ({"netlist: netlist.sp": "netlist: missing.sp"}, "netlist", "next to the task file"),
        ({"specs:": "spex:"}, "spex", "use only:"),
    ],
)
def test_malformed_task_file_names_file_field_and_fix(tmp_path, change, field, fix):
    path = _broken(tmp_path, **change)
    with pytest.raises(TaskError) as err:
        parse_task_file(path)
    assert err.value.field == field
    assert str(path) in str(err.value)
    assert fix in err.value.fix


def test_netlist_may_not_carry_its_own_control_block(tmp_path):
    netlist = "vin in 0 1\nr1 in 0 {r}\nc1 in 0 {c}\n.control\nshell touch /tmp/never\n.endc\n"
    path = write_task(tmp_path, "ctl", netlist=netlist) / "task.yaml"
    with pytest.raises(TaskError, match="control"):
        parse_task_file(path)


def test_overshooting_reward_shape_is_refused(tmp_path):
    path = _broken(tmp_path, **{"target: [14e3, 18e3]}": "target: [14e3, 18e3], c: 0.6, alpha: 0.02}"})
    with pytest.raises(TaskError) as err:
        parse_task_file(path)
    assert err.value.field == "specs[0].c"


def test_invalid_yaml(tmp_path):
    path = write_task(tmp_path, "bad", body="name: [unclosed\n") / "task.yaml"
    with pytest.raises(TaskError, match="not valid YAML"):
        parse_task_file(path)
