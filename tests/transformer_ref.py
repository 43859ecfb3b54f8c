"""A hand-written NumPy forward and backward pass of recipes/transformer-block.toml (GPT-2's
pre-norm block, single head, one sequence), written from the textbook formulas, not from
derivkit's output: layer norm's backward (g − mean(g) − x̂ mean(g ⊙ x̂)) / σ, FlashAttention's
dS = P ⊙ (dP − rowsum(dP ⊙ P)), GELU' = Φ + x φ, cross-entropy's softmax(Z) rowsum(T) − T."""

from __future__ import annotations

import math

import numpy as np

_erf = np.vectorize(math.erf)


def _softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _layer_norm(x, g, eps):
    mu = x.mean(axis=-1, keepdims=True)
    sigma = np.sqrt(x.var(axis=-1, keepdims=True) + eps)
    xhat = (x - mu) / sigma
    return xhat * g, xhat, sigma


def _layer_norm_backward(dy, xhat, sigma, g):
    """(∂L/∂x, ∂L/∂g) from ∂L/∂y for y = x̂ ⊙ g."""
    dxhat = dy * g
    dx = (dxhat - dxhat.mean(axis=-1, keepdims=True)
          - xhat * (dxhat * xhat).mean(axis=-1, keepdims=True)) / sigma
    return dx, (dy * xhat).sum(axis=0)


def _gelu(u):
    return 0.5 * u * (1.0 + _erf(u / math.sqrt(2.0)))


def _gelu_prime(u):
    return 0.5 * (1.0 + _erf(u / math.sqrt(2.0))) + u * np.exp(-u * u / 2) / math.sqrt(2 * math.pi)


def forward(v, p):
    """(L, the intermediates)."""
    X, M, T = v["X"], v["M"], v["T"]
    eps = p["eps"]
    t, d = X.shape
    A, xhat1, sigma1 = _layer_norm(X, v["g1"], eps)
    Q, K, V = A @ v["Wq"], A @ v["Wk"], A @ v["Wv"]
    P = _softmax(Q @ K.T / math.sqrt(d) + M)
    Att = P @ V
    H = X + Att @ v["Wo"]
    B, xhat2, sigma2 = _layer_norm(H, v["g2"], eps)
    U = B @ v["W1"]
    Y = H + _gelu(U) @ v["W2"]
    Z = Y @ v["Wu"]
    logp = Z - (np.log(np.exp(Z - Z.max(axis=-1, keepdims=True)).sum(axis=-1, keepdims=True))
                + Z.max(axis=-1, keepdims=True))
    L = -np.sum(T * logp) / t
    return L, dict(A=A, xhat1=xhat1, sigma1=sigma1, Q=Q, K=K, V=V, P=P, Att=Att, H=H, B=B,
                   xhat2=xhat2, sigma2=sigma2, U=U, Y=Y, Z=Z)


def backward(v, p):
    """{input: ∂L/∂input} for every differentiated input."""
    _, c = forward(v, p)
    T = v["T"]
    t, d = v["X"].shape
    dZ = (_softmax(c["Z"]) * T.sum(axis=-1, keepdims=True) - T) / t
    dWu = c["Y"].T @ dZ
    dY = dZ @ v["Wu"].T
    dW2 = _gelu(c["U"]).T @ dY
    dU = (dY @ v["W2"].T) * _gelu_prime(c["U"])
    dW1 = c["B"].T @ dU
    dB = dU @ v["W1"].T
    dH_norm, dg2 = _layer_norm_backward(dB, c["xhat2"], c["sigma2"], v["g2"])
    dH = dY + dH_norm
    dWo = c["Att"].T @ dH
    dO = dH @ v["Wo"].T
    dP = dO @ c["V"].T
    dV = c["P"].T @ dO
    dS = c["P"] * (dP - (dP * c["P"]).sum(axis=-1, keepdims=True))
    dQ = dS @ c["K"] / math.sqrt(d)
    dK = dS.T @ c["Q"] / math.sqrt(d)
    dWq, dWk, dWv = c["A"].T @ dQ, c["A"].T @ dK, c["A"].T @ dV
    dA = dQ @ v["Wq"].T + dK @ v["Wk"].T + dV @ v["Wv"].T
    dX_norm, dg1 = _layer_norm_backward(dA, c["xhat1"], c["sigma1"], v["g1"])
    return {"X": dH + dX_norm, "Wq": dWq, "Wk": dWk, "Wv": dWv, "Wo": dWo, "W1": dW1,
            "W2": dW2, "Wu": dWu, "g1": dg1, "g2": dg2}


def attention_batched_forward(v):
    """O = softmax(Q Kᵀ/√d + M) V for each sequence of the batch (einsum: no matmul convention)."""
    d = v["Q"].shape[-1]
    s = np.einsum("btd,bsd->bts", v["Q"], v["K"]) / math.sqrt(d) + v["M"]
    p = _softmax(s)
    return np.einsum("bts,bsd->btd", p, v["V"]), p


def attention_batched_vjp(v, G):
    """{Q, K, V: ∂L/∂·} given G = ∂L/∂O: dV = Pᵀ G, dP = G Vᵀ, dS = P ⊙ (dP − rowsum(dP ⊙ P)),
    dQ = dS K/√d, dK = dSᵀ Q/√d, sequence by sequence."""
    d = v["Q"].shape[-1]
    _, p = attention_batched_forward(v)
    dv = np.einsum("bts,btd->bsd", p, G)
    dp = np.einsum("btd,bsd->bts", G, v["V"])
    ds = p * (dp - (dp * p).sum(axis=-1, keepdims=True))
    return {"Q": np.einsum("bts,bsd->btd", ds, v["K"]) / math.sqrt(d),
            "K": np.einsum("bts,btd->bsd", ds, v["Q"]) / math.sqrt(d), "V": dv}
