"""The child process of the shared backend: a loop of load/sim requests on one ngspice instance.

Run as `python -m simworkers.backends.ngspice_child FD LIBRARY PARENT_PID`; FD is a socket to the
parent, which this process does not outlive.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from multiprocessing.connection import Connection


def _die_with_parent(parent: int) -> None:
    """A simulation actor killed while ngspice iterates must not leave ngspice iterating on: a
    watchdog thread ends this process once its parent is gone (ngspice's C code runs without the
    GIL, so the watchdog runs during a simulation too)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, daemon=True, name="parent-watchdog").start()


def _child_main(conn: Connection, library: str, parent: int | None = None) -> None:
    """The child: a loop of load/sim requests against one ngspice instance."""
    if parent is not None:
        _die_with_parent(parent)
    os.environ["NGSPICE_LIBRARY_PATH"] = library
    logging.getLogger("PySpice").setLevel(logging.CRITICAL)
    try:
        from PySpice.Spice.NgSpice.Shared import NgSpiceShared

        NgSpiceShared.LIBRARY_PATH = library
        ng = NgSpiceShared.new_instance()
        _command(ng, "set num_threads=1")
    except Exception as exc:
        conn.send({"error": f"{type(exc).__name__}: {exc}"})
        return
    conn.send({"ready": True})
    have_circuit = False
    while True:
        try:
            request = conn.recv()
        except EOFError:
            return
        if request is None:
            return
        if request["op"] == "load":
            if have_circuit:  # one circuit at a time: drop the last task's before loading
                _command(ng, "remcirc")
            lines = _load(ng, request["circuit"])
            have_circuit = True
            conn.send({"lines": lines, "failed": any("error" in s.lower() for s in lines)})
        else:
            lines = []
            for cmd in request["commands"]:
                lines += _command(ng, cmd)
            _command(ng, "destroy all")
            conn.send({"lines": lines})


def _command(ng, command: str) -> list[str]:
    """Run one control command and return everything it printed; never raise on its output."""
    return _guarded(ng, ng.exec_command, command)


def _load(ng, circuit: str) -> list[str]:
    return _guarded(ng, ng.load_circuit, circuit)


def _guarded(ng, call, argument: str) -> list[str]:
    from PySpice.Spice.NgSpice.Shared import NgSpiceCircuitError, NgSpiceCommandError

    try:
        call(argument)
    except (NgSpiceCommandError, NgSpiceCircuitError):
        pass  # PySpice raises on any 'error' text; deck.parse_output decides what it means
    except NameError as exc:  # PySpice's word for a non-zero return code: the library gave up
        return [*ng._stdout, *ng._stderr, f"Error: ngspice cannot recover ({exc})"]
    # PySpice keeps the callback output in these lists and clears them per call.
    return list(ng._stdout) + list(ng._stderr)


if __name__ == "__main__":
    _child_main(Connection(int(sys.argv[1])), sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else None)
