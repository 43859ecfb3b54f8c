"""Hand-written backward passes of the linear layer Y = X W + b (X: m×n, W: n×k, b: k), with
G = ∂L/∂Y. Each is independent NumPy, written the way a person would, right or wrong."""

import numpy as np


def correct_tuple(X, W, b, G):
    return G @ W.T, X.T @ G, G.sum(axis=0)


def correct_dict(X, W, g):
    """Upstream named g, b not taken (not needed), gradients keyed by name."""
    return {"W": np.einsum("ij,ik->jk", X, g), "X": np.einsum("ik,jk->ij", g, W),
            "b": np.einsum("ik->k", g)}


def correct_kwargs(**arrays):
    X, W, G = arrays["X"], arrays["W"], arrays["G"]
    return {"X": G @ W.T, "W": X.T @ G, "b": G.sum(axis=0)}


def weight_only(X, G):
    """For --wrt W: one array."""
    return X.T @ G


def transposed_w(X, W, b, G):
    return G @ W.T, G.T @ X, G.sum(axis=0)


def transposed_w_parenthesised(X, W, b, G):
    return G @ W.T, (X.T @ G).T, G.sum(axis=0)


def stray_two(X, W, b, G):
    return G @ W.T, 2 * X.T @ G, G.sum(axis=0)


def negated_x(X, W, b, G):
    return -(G @ W.T), X.T @ G, G.sum(axis=0)


def bias_wrong_axis(X, W, b, G):
    return G @ W.T, X.T @ G, G.sum(axis=1)


def bias_keepdims(X, W, b, G):
    return G @ W.T, X.T @ G, np.sum(G, axis=0, keepdims=True)


def updates_w_in_place(X, W, b, G):
    dW = X.T @ G
    dX = G @ W.T
    W -= 0.1 * dW                      # a weight update inside the backward pass
    return dX, dW, G.sum(axis=0)


def chatty(X, W, b, G):
    print("computing the backward pass")
    return G @ W.T, X.T @ G, G.sum(axis=0)


# ---------------------------------------------------------------- bad returns and calls
def returns_none(X, W, b, G):
    return None


def returns_two(X, W, b, G):
    return G @ W.T, X.T @ G


def returns_dict_without_b(X, W, b, G):
    return {"X": G @ W.T, "W": X.T @ G}


def returns_text(X, W, b, G):
    return "X.T @ G", "G @ W.T", "sum(G)"


def raises(X, W, b, G):
    return X @ G                       # m×n @ m×k: shapes do not align


def needs_unknown(X, W, b, G, lr):
    return G @ W.T, X.T @ G, G.sum(axis=0)


def no_upstream(X, W, b):
    return X, W, b


not_a_function = 42
