"""The command line: one module per command; options parsed here, work done by the library."""

from .app import app, main

__all__ = ["app", "main"]
