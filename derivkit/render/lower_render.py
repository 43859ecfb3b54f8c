"""`derivkit lower` without -o: the generated module on stdout, highlighted on a colour terminal,
otherwise exactly the source (so `derivkit lower NAME > file.py` writes a module)."""

from __future__ import annotations

import sys


def print_source(source: str) -> None:
    from rich.console import Console

    console = Console(highlight=False)
    if console.color_system is None or console.no_color or not console.is_terminal:
        sys.stdout.write(source)
        sys.stdout.flush()
        return
    from rich.syntax import Syntax

    # soft_wrap: lines are never cut or broken by Rich (the terminal wraps), so a copy is code
    console.print(Syntax(source.rstrip("\n"), "python", background_color="default"), soft_wrap=True)
