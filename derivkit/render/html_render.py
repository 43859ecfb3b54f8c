"""`--html FILE` of `derive` and `check`: one self-contained HTML page (formulas as MathML, inline
CSS, no script, nothing fetched; see `derivkit.markup.html`), written atomically like `--junit`
(`render.outfile`). User text passes through the sanitiser (`render.text.visible_data`) first,
then the markup layer escapes it for HTML."""

from __future__ import annotations

from pathlib import Path

from ..markup.html import derivation_html, page, report_html, target_html
from ..results import CheckReport, Derivation, TargetCheck
from .outfile import check_output, write_output
from .text import visible_data

OPTION = "--html"


def check_html_path(path: str | Path) -> None:
    """Refuse a destination before any long work (a link, a folder, a FIFO, no such folder)."""
    check_output(path, force=False, overwrite=True, option=OPTION)


def derivation_page(d: Derivation) -> str:
    d = visible_data(d)
    return page(f"derivkit derive {d.target}", derivation_html(d))


def check_page(outcome: TargetCheck | CheckReport) -> str:
    outcome = visible_data(outcome)
    if isinstance(outcome, CheckReport):
        return page("derivkit check --all", report_html(outcome))
    return page(f"derivkit check {outcome.target}", target_html(outcome))


def write_derivation_page(path: str | Path, d: Derivation) -> None:
    write_output(path, derivation_page(d), force=False, overwrite=True, option=OPTION)


def write_check_page(path: str | Path, outcome: TargetCheck | CheckReport) -> None:
    write_output(path, check_page(outcome), force=False, overwrite=True, option=OPTION)


__all__ = ["check_html_path", "check_page", "derivation_page", "write_check_page",
           "write_derivation_page"]
