"""Backward passes of the tutorial's 3-layer leaky-ReLU network (the mlp3 recipe): layers
A @ W.T + b with weights stored out × in, L = Σ (Ŷ − T)² / (2m)."""

import numpy as np

LR = 0.1


def _leaky(z, alpha):
    return np.where(z >= 0, z, alpha * z)


def _slope(z, alpha):
    return np.where(z >= 0, 1.0, alpha)


def _backward(X, T, W1, b1, W2, b2, W3, b3, alpha, update):
    m = X.shape[0]
    Z1 = X @ W1.T + b1
    A1 = _leaky(Z1, alpha)
    Z2 = A1 @ W2.T + b2
    A2 = _leaky(Z2, alpha)
    Z3 = A2 @ W3.T + b3
    Yhat = _leaky(Z3, alpha)
    d3 = (Yhat - T) / m * _slope(Z3, alpha)
    dW3, db3 = d3.T @ A2, d3.sum(axis=0)
    W3_used = update(W3, dW3)
    d2 = (d3 @ W3_used) * _slope(Z2, alpha)
    dW2, db2 = d2.T @ A1, d2.sum(axis=0)
    d1 = (d2 @ W2) * _slope(Z1, alpha)
    dW1, db1 = d1.T @ X, d1.sum(axis=0)
    return {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2, "W3": dW3, "b3": db3}


def correct(X, T, W1, b1, W2, b2, W3, b3, alpha):
    return _backward(X, T, W1, b1, W2, b2, W3, b3, alpha, lambda W, dW: W)


def updated_w3(X, T, W1, b1, W2, b2, W3, b3, alpha):
    """The tutorial's warning ignored: W3 is stepped before Δ is sent through it."""
    return _backward(X, T, W1, b1, W2, b2, W3, b3, alpha, lambda W, dW: W - LR * dW)


def updated_w3_in_place(X, T, W1, b1, W2, b2, W3, b3, alpha):
    def step(W, dW):
        W -= LR * dW
        return W
    return _backward(X, T, W1, b1, W2, b2, W3, b3, alpha, step)
