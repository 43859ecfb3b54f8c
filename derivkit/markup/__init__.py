"""Markup for people reading in a browser or a notebook: formulas as MathML (`mathml`), results as
HTML fragments and self-contained pages (`html`), and the LaTeX / Markdown that notebooks show
(`notebook`).

A low layer (below `derivkit.results`, above `derivkit.errors`): it imports nothing else of
derivkit and nothing heavy, and reads results by duck typing, so `results` can use it for the
Jupyter display methods and `render` for `--html` pages. Every piece of user text goes through
`escape.text`."""

from __future__ import annotations
