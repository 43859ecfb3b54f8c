"""Numerical checks of derived gradients against finite differences of the lowered forward."""
