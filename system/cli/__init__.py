"""The `tlgrpo` command line: one module per group of commands, the parser in `main`.

May import every other part of `system` (it is the top of the layers).
"""

from system.cli.main import main

__all__ = ["main"]
