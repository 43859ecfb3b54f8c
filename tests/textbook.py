"""Hand-written NumPy references for benchmarks/expressions.toml, independent of derivkit.

For every entry NAME of the list: `forward_NAME(**inputs, **params) -> float`, the loss, and
`grad_NAME(**inputs, **params) -> {wrt: gradient}`, its textbook gradient, written the way one
writes backprop by hand (a forward pass keeping the intermediates, then a backward pass). Nothing
here imports derivkit; tests/test_textbook_refs.py checks every gradient against finite
differences of its forward and against the entry's `textbook` strings.

Dimension names the expressions use as numbers (`sqrt(d)`, `/ (m * k)`) are read off the shapes.
"""

from __future__ import annotations

import numpy as np

Grads = dict[str, np.ndarray]


# ---------------------------------------------------------------- helpers

def softmax(z: np.ndarray) -> np.ndarray:
    """Softmax over the last axis (stable)."""
    e = np.exp(z - np.max(z, axis=-1, keepdims=True))
    return e / np.sum(e, axis=-1, keepdims=True)


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def relu(z: np.ndarray) -> np.ndarray:
    return np.maximum(z, 0.0)


def leaky_relu(z: np.ndarray, alpha: float) -> np.ndarray:
    return np.where(z >= 0, z, alpha * z)


def _f(value: object) -> float:
    return float(np.asarray(value))


# ---------------------------------------------------------------- attention and softmax losses

def forward_attention(Q, K, V, G):
    d = Q.shape[1]
    P = softmax(Q @ K.T / np.sqrt(d))
    return _f(np.sum((P @ V) * G))


def grad_attention(Q, K, V, G) -> Grads:
    d = Q.shape[1]
    S = Q @ K.T / np.sqrt(d)
    P = softmax(S)
    out = P @ V
    dO = G
    dV = P.T @ dO
    dP = dO @ V.T
    D = np.sum(dO * out, axis=1, keepdims=True)        # FlashAttention's rowsum(dO ∘ O)
    dS = P * (dP - D)
    return {"Q": dS @ K / np.sqrt(d), "K": dS.T @ Q / np.sqrt(d), "V": dV}


def forward_cross_entropy(Z, T):
    return _f(-np.sum(T * np.log(softmax(Z))))


def grad_cross_entropy(Z, T) -> Grads:
    return {"Z": softmax(Z) * T.sum(axis=1, keepdims=True) - T}


def forward_softmax_regression(X, W, T):
    return _f(-np.sum(T * np.log(softmax(X @ W))))


def grad_softmax_regression(X, W, T) -> Grads:
    dZ = softmax(X @ W) * T.sum(axis=1, keepdims=True) - T
    return {"W": X.T @ dZ}


def forward_softmax_temperature_ce(Z, T, tau=2.0):
    return _f(-np.sum(T * np.log(softmax(Z / tau))))


def grad_softmax_temperature_ce(Z, T, tau=2.0) -> Grads:
    dS = softmax(Z / tau) * T.sum(axis=1, keepdims=True) - T
    return {"Z": dS / tau}


def forward_kl_softmax(P, Z):
    return _f(np.sum(P * (np.log(P) - np.log(softmax(Z)))))


def grad_kl_softmax(P, Z) -> Grads:
    Qm = softmax(Z)
    return {"P": np.log(P) + 1.0 - np.log(Qm), "Z": Qm * P.sum(axis=1, keepdims=True) - P}


def forward_softmax_entropy(z):
    p = softmax(z)
    return _f(-np.sum(p * np.log(p)))


def grad_softmax_entropy(z) -> Grads:
    p = softmax(z)
    dp = -(np.log(p) + 1.0)                          # ∂H/∂p
    return {"z": p * (dp - p @ dp)}                  # softmax's vjp: p ∘ (v − pᵀv)


def forward_logsumexp(x):
    c = np.max(x)
    return _f(c + np.log(np.sum(np.exp(x - c))))


def grad_logsumexp(x) -> Grads:
    return {"x": softmax(x)}


def forward_info_nce(Z1, Z2, tau=0.5):
    S = Z1 @ Z2.T / tau
    return _f(-np.trace(np.log(softmax(S))))


def grad_info_nce(Z1, Z2, tau=0.5) -> Grads:
    m = Z1.shape[0]
    dS = softmax(Z1 @ Z2.T / tau) - np.eye(m)        # each row's target is its diagonal entry
    return {"Z1": dS @ Z2 / tau, "Z2": dS.T @ Z1 / tau}


# ---------------------------------------------------------------- regression / classification losses

def forward_bce_logits(z, y):
    s = sigmoid(z)
    return _f(-np.sum(y * np.log(s) + (1 - y) * np.log(1 - s)))


def grad_bce_logits(z, y) -> Grads:
    return {"z": sigmoid(z) - y}


def forward_logistic_regression(X, w, y):
    return _f(np.sum(np.logaddexp(0.0, -y * (X @ w))))


def grad_logistic_regression(X, w, y) -> Grads:
    margin = y * (X @ w)
    return {"w": -X.T @ (y * sigmoid(-margin))}


def forward_least_squares(X, W, T):
    return _f(np.sum((X @ W - T) ** 2))


def grad_least_squares(X, W, T) -> Grads:
    return {"W": 2 * X.T @ (X @ W - T)}


def forward_ridge(X, w, y, lam=0.1):
    return _f(np.sum((X @ w - y) ** 2) + lam * np.sum(w**2))


def grad_ridge(X, w, y, lam=0.1) -> Grads:
    return {"w": 2 * X.T @ (X @ w - y) + 2 * lam * w}


def forward_mse(Y, T):
    return _f(np.mean((Y - T) ** 2))


def grad_mse(Y, T) -> Grads:
    return {"Y": 2 * (Y - T) / Y.size}


def forward_l1(Y, T):
    return _f(np.sum(np.abs(Y - T)))


def grad_l1(Y, T) -> Grads:
    return {"Y": np.sign(Y - T)}


def _huber(r, delta):
    return np.where(np.abs(r) <= delta, 0.5 * r**2, delta * (np.abs(r) - 0.5 * delta))


def _huber_grad(r, delta):
    return np.clip(r, -delta, delta)


def forward_huber(p, y, delta=1.0):
    return _f(np.sum(_huber(p - y, delta)))


def grad_huber(p, y, delta=1.0) -> Grads:
    return {"p": _huber_grad(p - y, delta)}


def forward_huber_regression(X, w, y, delta=0.5):
    return _f(np.sum(_huber(X @ w - y, delta)))


def grad_huber_regression(X, w, y, delta=0.5) -> Grads:
    return {"w": X.T @ _huber_grad(X @ w - y, delta)}


def forward_hinge_svm(X, w, y, lam=0.1):
    return _f(np.sum(np.maximum(0.0, 1 - y * (X @ w))) + lam * (w @ w))


def grad_hinge_svm(X, w, y, lam=0.1) -> Grads:
    active = (1 - y * (X @ w) > 0).astype(float)     # samples inside the margin
    return {"w": -X.T @ (y * active) + 2 * lam * w}


def forward_poisson_regression(X, w, y):
    eta = X @ w
    return _f(np.sum(np.exp(eta) - y * eta))


def grad_poisson_regression(X, w, y) -> Grads:
    return {"w": X.T @ (np.exp(X @ w) - y)}


def forward_gaussian_nll_scalar_var(y, mu, s):
    n = y.shape[0]
    return _f(np.sum((y - mu) ** 2) / (2 * s) + n / 2 * np.log(s))


def grad_gaussian_nll_scalar_var(y, mu, s) -> Grads:
    n = y.shape[0]
    r = y - mu
    return {"mu": -r / s, "s": np.asarray(n / (2 * s) - np.sum(r**2) / (2 * s**2))}


def forward_matrix_factorization(U, V, R, lam=0.1):
    return _f(np.sum((U @ V.T - R) ** 2) + lam * (np.sum(U**2) + np.sum(V**2)))


def grad_matrix_factorization(U, V, R, lam=0.1) -> Grads:
    E = U @ V.T - R
    return {"U": 2 * E @ V + 2 * lam * U, "V": 2 * E.T @ U + 2 * lam * V}


# ---------------------------------------------------------------- activations written out

def forward_softplus(x):
    return _f(np.sum(np.logaddexp(0.0, x)))


def grad_softplus(x) -> Grads:
    return {"x": sigmoid(x)}


def forward_silu(x):
    return _f(np.sum(x * sigmoid(x)))


def grad_silu(x) -> Grads:
    s = sigmoid(x)
    return {"x": s + x * s * (1 - s)}


def forward_glu(X, W, V):
    return _f(np.sum((X @ W) * sigmoid(X @ V)))


def grad_glu(X, W, V) -> Grads:
    A, S = X @ W, sigmoid(X @ V)
    return {"W": X.T @ S, "V": X.T @ (A * S * (1 - S))}


# ---------------------------------------------------------------- normalisation layers

def _normalise(x, eps, axis=None):
    mu = np.mean(x, axis=axis)
    sigma = np.sqrt(np.mean((x - mu) ** 2, axis=axis) + eps)
    return (x - mu) / sigma, sigma


def forward_layer_norm_vector(x, g, eps=1e-5):
    xhat, _ = _normalise(x, eps)
    return _f(np.sum(xhat * g))


def grad_layer_norm_vector(x, g, eps=1e-5) -> Grads:
    xhat, sigma = _normalise(x, eps)
    dx = (g - np.mean(g) - xhat * np.mean(g * xhat)) / sigma
    return {"x": dx, "g": xhat}


def forward_batch_norm(X, gamma, beta, G, eps=1e-5):
    xhat, _ = _normalise(X, eps, axis=0)
    return _f(np.sum((gamma * xhat + beta) * G))


def grad_batch_norm(X, gamma, beta, G, eps=1e-5) -> Grads:
    xhat, sigma = _normalise(X, eps, axis=0)
    dxhat = G * gamma
    m = X.shape[0]
    dX = (m * dxhat - dxhat.sum(axis=0) - xhat * np.sum(dxhat * xhat, axis=0)) / (m * sigma)
    return {"X": dX, "gamma": np.sum(G * xhat, axis=0), "beta": G.sum(axis=0)}


def forward_rms_norm(x, g, eps=1e-5):
    r = np.sqrt(np.mean(x**2) + eps)
    return _f(np.sum(x / r * g))


def grad_rms_norm(x, g, eps=1e-5) -> Grads:
    n = x.shape[0]
    r = np.sqrt(np.mean(x**2) + eps)
    dr = -np.sum(g * x) / r**2                       # ∂f/∂r
    return {"x": g / r + dr * x / (n * r), "g": x / r}


# ---------------------------------------------------------------- multi-layer perceptrons

def forward_mlp_relu_mse(X, W1, b1, W2, T):
    return _f(np.mean((relu(X @ W1 + b1) @ W2 - T) ** 2))


def grad_mlp_relu_mse(X, W1, b1, W2, T) -> Grads:
    Z1 = X @ W1 + b1
    A1 = relu(Z1)
    Y = A1 @ W2
    dY = 2 * (Y - T) / Y.size
    dZ1 = (dY @ W2.T) * (Z1 > 0)
    return {"W1": X.T @ dZ1, "b1": dZ1.sum(axis=0)}


def forward_mlp2_tanh(X, W1, b1, W2, b2, T):
    m = X.shape[0]
    return _f(np.sum((np.tanh(X @ W1 + b1) @ W2 + b2 - T) ** 2) / (2 * m))


def grad_mlp2_tanh(X, W1, b1, W2, b2, T) -> Grads:
    m = X.shape[0]
    H = np.tanh(X @ W1 + b1)
    dY = (H @ W2 + b2 - T) / m
    dZ1 = (dY @ W2.T) * (1 - H**2)
    return {"W1": X.T @ dZ1, "b1": dZ1.sum(axis=0), "W2": H.T @ dY, "b2": dY.sum(axis=0)}


def forward_mlp2_sigmoid(X, W1, W2, T):
    return _f(np.mean((sigmoid(X @ W1) @ W2 - T) ** 2))


def grad_mlp2_sigmoid(X, W1, W2, T) -> Grads:
    S = sigmoid(X @ W1)
    Y = S @ W2
    dY = 2 * (Y - T) / Y.size
    dZ1 = (dY @ W2.T) * S * (1 - S)
    return {"W1": X.T @ dZ1, "W2": S.T @ dY}


def forward_mlp2_relu_softmax_ce(X, W1, W2, T):
    return _f(-np.sum(T * np.log(softmax(relu(X @ W1) @ W2))))


def grad_mlp2_relu_softmax_ce(X, W1, W2, T) -> Grads:
    Z1 = X @ W1
    A1 = relu(Z1)
    dZ2 = softmax(A1 @ W2) * T.sum(axis=1, keepdims=True) - T
    dZ1 = (dZ2 @ W2.T) * (Z1 > 0)
    return {"W1": X.T @ dZ1, "W2": A1.T @ dZ2}


def forward_mlp3_leaky_relu(X, W1, W2, W3, T, alpha=0.1):
    m = X.shape[0]
    A2 = leaky_relu(leaky_relu(X @ W1, alpha) @ W2, alpha)
    return _f(np.sum((A2 @ W3 - T) ** 2) / (2 * m))


def grad_mlp3_leaky_relu(X, W1, W2, W3, T, alpha=0.1) -> Grads:
    m = X.shape[0]
    Z1 = X @ W1
    A1 = leaky_relu(Z1, alpha)
    Z2 = A1 @ W2
    A2 = leaky_relu(Z2, alpha)
    dY = (A2 @ W3 - T) / m
    dZ2 = (dY @ W3.T) * np.where(Z2 >= 0, 1.0, alpha)
    dZ1 = (dZ2 @ W2.T) * np.where(Z1 >= 0, 1.0, alpha)
    return {"W1": X.T @ dZ1, "W2": A1.T @ dZ2, "W3": A2.T @ dY}


def forward_mlp3_relu(X, W1, b1, W2, b2, W3, b3, T):
    return _f(np.mean((relu(relu(X @ W1 + b1) @ W2 + b2) @ W3 + b3 - T) ** 2))


def grad_mlp3_relu(X, W1, b1, W2, b2, W3, b3, T) -> Grads:
    Z1 = X @ W1 + b1
    A1 = relu(Z1)
    Z2 = A1 @ W2 + b2
    A2 = relu(Z2)
    Y = A2 @ W3 + b3
    dY = 2 * (Y - T) / Y.size
    dZ2 = (dY @ W3.T) * (Z2 > 0)
    dZ1 = (dZ2 @ W2.T) * (Z1 > 0)
    return {"W1": X.T @ dZ1, "b1": dZ1.sum(axis=0), "W3": A2.T @ dY, "b3": dY.sum(axis=0)}


def forward_tanh3_deep(X, W1, W2, W3):
    return _f(np.sum(np.tanh(np.tanh(np.tanh(X @ W1) @ W2) @ W3)))


def grad_tanh3_deep(X, W1, W2, W3) -> Grads:
    H1 = np.tanh(X @ W1)
    H2 = np.tanh(H1 @ W2)
    H3 = np.tanh(H2 @ W3)
    dZ3 = 1 - H3**2                                  # upstream of the sum is all ones
    dZ2 = (dZ3 @ W3.T) * (1 - H2**2)
    dZ1 = (dZ2 @ W2.T) * (1 - H1**2)
    return {"W1": X.T @ dZ1}


def forward_weight_decay_mlp(X, W1, W2, T, lam=0.01):
    data = np.mean((np.tanh(X @ W1) @ W2 - T) ** 2)
    return _f(data + lam * (np.sum(W1**2) + np.sum(W2**2)))


def grad_weight_decay_mlp(X, W1, W2, T, lam=0.01) -> Grads:
    H = np.tanh(X @ W1)
    Y = H @ W2
    dY = 2 * (Y - T) / Y.size
    dZ1 = (dY @ W2.T) * (1 - H**2)
    return {"W1": X.T @ dZ1 + 2 * lam * W1, "W2": H.T @ dY + 2 * lam * W2}


def forward_residual_block(X, W1, W2, G):
    return _f(np.sum((X + relu(X @ W1) @ W2) * G))


def grad_residual_block(X, W1, W2, G) -> Grads:
    Z = X @ W1
    A = relu(Z)
    dZ = (G @ W2.T) * (Z > 0)
    return {"X": G + dZ @ W1.T, "W1": X.T @ dZ, "W2": A.T @ G}


# ---------------------------------------------------------------- chains of matrix products

def forward_chain4_trace(A, B, C, D):
    return _f(np.trace(A @ B @ C @ D))


def grad_chain4_trace(A, B, C, D) -> Grads:
    return {"C": (D @ A @ B).T}


def forward_chain5_matmul_sum(X, W1, W2, W3, W4):
    return _f(np.sum(X @ W1 @ W2 @ W3 @ W4))


def grad_chain5_matmul_sum(X, W1, W2, W3, W4) -> Grads:
    left = X @ W1                                    # m × p
    right = W3 @ W4                                  # q × k
    # ∂/∂W2 of 1ᵀ left W2 right 1 = leftᵀ 1 1ᵀ rightᵀ: the outer product of the column sums
    return {"W2": np.outer(left.sum(axis=0), right.sum(axis=1))}


def forward_chain5_weighted(A, B, C, D, E, G):
    return _f(np.sum((A @ B @ C @ D @ E) * G))


def grad_chain5_weighted(A, B, C, D, E, G) -> Grads:
    return {"A": G @ (B @ C @ D @ E).T, "C": (A @ B).T @ G @ (D @ E).T, "E": (A @ B @ C @ D).T @ G}


def forward_chain6_matmul_sum(X, W1, W2, W3, W4, W5):
    return _f(np.sum(X @ W1 @ W2 @ W3 @ W4 @ W5))


def grad_chain6_matmul_sum(X, W1, W2, W3, W4, W5) -> Grads:
    left = X @ W1 @ W2
    right = W4 @ W5
    return {"W3": np.outer(left.sum(axis=0), right.sum(axis=1))}


# ---------------------------------------------------------------- traces, inverses, determinants

def forward_trace_linear(A, X):
    return _f(np.trace(A @ X))


def grad_trace_linear(A, X) -> Grads:
    return {"X": A.T.copy()}


def forward_trace_quadratic(X, A):
    return _f(np.trace(X.T @ A @ X))


def grad_trace_quadratic(X, A) -> Grads:
    return {"X": A @ X + A.T @ X}


def forward_trace_inv(X):
    return _f(np.trace(np.linalg.inv(X)))


def grad_trace_inv(X) -> Grads:
    Xi = np.linalg.inv(X)
    return {"X": -(Xi @ Xi).T}


def forward_trace_a_inv_b(A, X, B):
    return _f(np.trace(A @ np.linalg.inv(X) @ B))


def grad_trace_a_inv_b(A, X, B) -> Grads:
    Xi = np.linalg.inv(X)
    return {"X": -(Xi @ B @ A @ Xi).T}


def forward_trace_inv_inv_plus(X, A):
    return _f(np.trace(np.linalg.inv(np.linalg.inv(X) + A)))


def grad_trace_inv_inv_plus(X, A) -> Grads:
    Xi = np.linalg.inv(X)
    Mi = np.linalg.inv(Xi + A)
    dM = -(Mi @ Mi).T                                # ∂tr(M⁻¹)/∂M
    dX = -Xi.T @ dM @ Xi.T                           # M = X⁻¹ + A: ∂/∂X = −X⁻ᵀ (∂/∂M) X⁻ᵀ
    return {"X": dX}


def forward_trace_inv_sandwich(A, X, B):
    return _f(np.trace(np.linalg.inv(A @ X @ B)))


def grad_trace_inv_sandwich(A, X, B) -> Grads:
    Mi = np.linalg.inv(A @ X @ B)
    dM = -(Mi @ Mi).T
    return {"X": A.T @ dM @ B.T}


def forward_det(X):
    return _f(np.linalg.det(X))


def grad_det(X) -> Grads:
    return {"X": np.linalg.det(X) * np.linalg.inv(X).T}


def forward_logdet(X):
    return _f(np.log(np.linalg.det(X)))


def grad_logdet(X) -> Grads:
    return {"X": np.linalg.inv(X).T}


def forward_logdet_gram(X):
    return _f(np.log(np.linalg.det(X.T @ X)))


def grad_logdet_gram(X) -> Grads:
    return {"X": 2 * X @ np.linalg.inv(X.T @ X)}


def forward_logdet_lowrank(A, X):
    return _f(np.log(np.linalg.det(A + X @ X.T)))


def grad_logdet_lowrank(A, X) -> Grads:
    dM = np.linalg.inv(A + X @ X.T).T                # ∂ log det M / ∂M
    return {"X": (dM + dM.T) @ X}


def forward_gaussian_cov_mle(X, A):
    return _f(np.trace(np.linalg.inv(X) @ A) + np.log(np.linalg.det(X)))


def grad_gaussian_cov_mle(X, A) -> Grads:
    Xi = np.linalg.inv(X)
    return {"X": Xi.T - (Xi @ A @ Xi).T}


def forward_gaussian_nll_mvn(x, mu, S):
    r = x - mu
    return _f(0.5 * r @ np.linalg.solve(S, r) + 0.5 * np.log(np.linalg.det(S)))


def grad_gaussian_nll_mvn(x, mu, S) -> Grads:
    Si = np.linalg.inv(S)
    r = x - mu
    return {"mu": -0.5 * (Si + Si.T) @ r, "S": 0.5 * (Si.T - Si.T @ np.outer(r, r) @ Si.T)}


def forward_inv_quadratic(X, y):
    return _f(y @ np.linalg.solve(X, y))


def grad_inv_quadratic(X, y) -> Grads:
    a = np.linalg.solve(X.T, y)                      # X⁻ᵀ y
    b = np.linalg.solve(X, y)                        # X⁻¹ y
    return {"X": -np.outer(a, b)}


# ---------------------------------------------------------------- quadratic forms, norms, similarities

def forward_quadratic_form(x, A):
    return _f(x @ A @ x)


def grad_quadratic_form(x, A) -> Grads:
    return {"x": A @ x + A.T @ x, "A": np.outer(x, x)}


def forward_bilinear(x, A, y):
    return _f(x @ A @ y)


def grad_bilinear(x, A, y) -> Grads:
    return {"x": A @ y, "A": np.outer(x, y), "y": A.T @ x}


def forward_rayleigh_quotient(x, A):
    return _f((x @ A @ x) / (x @ x))


def grad_rayleigh_quotient(x, A) -> Grads:
    q, r = x @ A @ x, x @ x
    return {"x": ((A + A.T) @ x * r - q * 2 * x) / r**2}


def forward_cosine_similarity(x, y):
    return _f((x @ y) / (np.linalg.norm(x) * np.linalg.norm(y)))


def grad_cosine_similarity(x, y) -> Grads:
    nx, ny = np.linalg.norm(x), np.linalg.norm(y)
    c = (x @ y) / (nx * ny)
    return {"x": y / (nx * ny) - c * x / nx**2, "y": x / (nx * ny) - c * y / ny**2}


def forward_frobenius_norm(X):
    return _f(np.linalg.norm(X))


def grad_frobenius_norm(X) -> Grads:
    return {"X": X / np.linalg.norm(X)}
