"""VJPs of p = softmax(z) for a vector z, with g = ∂L/∂p."""

import numpy as np


def _softmax(z):
    e = np.exp(z - np.max(z))
    return e / np.sum(e)


def correct(z, g):
    p = _softmax(z)
    jacobian = np.diag(p) - np.outer(p, p)
    return jacobian.T @ g


def sign_flipped(z, g):
    p = _softmax(z)
    return p * (np.dot(g, p) - g)


def notes_formula(z, g):
    """The notes' intermediate line p_i (1 − δ_ij) − p_i p_j, wrong at i = j."""
    p = _softmax(z)
    jacobian = p[:, None] * (1 - np.eye(len(p))) - np.outer(p, p)
    return jacobian.T @ g


def batched_wrong_axis(Z, g):
    """softmax over each row of Z (--expr "softmax(Z)"), but the sum runs down the columns."""
    e = np.exp(Z - Z.max(axis=1, keepdims=True))
    P = e / e.sum(axis=1, keepdims=True)
    return P * (g - (g * P).sum(axis=0, keepdims=True))


def batched_correct(Z, g):
    e = np.exp(Z - Z.max(axis=1, keepdims=True))
    P = e / e.sum(axis=1, keepdims=True)
    return P * (g - (g * P).sum(axis=1, keepdims=True))
