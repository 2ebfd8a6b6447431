"""The ``edgestore`` command group. Thin: parse, call one library function, render."""

from .main import main

__all__ = ["main"]
