"""Symbolic derivation: IR -> derivative forms, each verified element-wise."""
