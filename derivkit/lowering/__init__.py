"""Lowering: derived IR to NumPy source (one emitter), forms and modules as callables."""
