"""NumPy oracles of the baseline losses, written pair by pair from the papers.

Each oracle loops over anchors ``i`` and partners ``j`` and computes the
per-anchor loss from the equations quoted in the loss modules' docstrings;
none calls ``keras_dhsps``. They are deliberately slow and literal.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray


def hard_sim(y_i: NDArray, y_j: NDArray) -> float:
    """1 if the two label sets intersect, else 0."""
    return float(np.any((y_i > 0) & (y_j > 0)))


def cosine(y_i: NDArray, y_j: NDArray) -> float:
    return float(y_i @ y_j / (np.linalg.norm(y_i) * np.linalg.norm(y_j)))


def log1pexp(x: float) -> float:
    """log(1 + e^x) without overflow."""
    return max(x, 0.0) + math.log1p(math.exp(-abs(x)))


def sign(x: NDArray) -> NDArray:
    return np.where(x >= 0, 1.0, -1.0)


def _partners(batch: int, i: int, include_diagonal: bool) -> list[int]:
    return [j for j in range(batch) if include_diagonal or j != i]


def dhn(y, u, scale=0.5, lam=0.1, include_diagonal=True) -> NDArray:
    """DHN eq. 3 + λ·mean log cosh(|u| − 1)."""
    y, u = np.asarray(y, float), np.asarray(u, float)
    out = []
    for i in range(len(u)):
        js = _partners(len(u), i, include_diagonal)
        pairs = []
        for j in js:
            theta = scale * float(u[i] @ u[j])
            pairs.append(log1pexp(theta) - hard_sim(y[i], y[j]) * theta)
        quant = np.mean(np.log(np.cosh(np.abs(u[i]) - 1.0)))
        out.append(np.mean(pairs) + lam * quant)
    return np.array(out)


def dpsh(y, u, scale=0.5, eta=0.1, include_diagonal=True) -> NDArray:
    """DPSH eq. 2 + η·mean (u − sgn u)²."""
    y, u = np.asarray(y, float), np.asarray(u, float)
    out = []
    for i in range(len(u)):
        pairs = []
        for j in _partners(len(u), i, include_diagonal):
            theta = scale * float(u[i] @ u[j])
            pairs.append(log1pexp(theta) - hard_sim(y[i], y[j]) * theta)
        out.append(np.mean(pairs) + eta * np.mean((u[i] - sign(u[i])) ** 2))
    return np.array(out)


def hashnet(
    y, u, scale=None, continuation=1.0, include_diagonal=True
) -> NDArray:
    """HashNet eq. 4–6: w_ij = |S|/|S1| or |S|/|S0|, mean over partners."""
    y, u = np.asarray(y, float), np.asarray(u, float)
    b, k = u.shape
    alpha = 10.0 / k if scale is None else scale
    if continuation != 1.0:
        u = np.tanh(continuation * np.arctanh(np.clip(u, -1 + 1e-6, 1 - 1e-6)))
    pairs = [
        (i, j) for i in range(b) for j in _partners(b, i, include_diagonal)
    ]
    n1 = sum(hard_sim(y[i], y[j]) for i, j in pairs)
    n0 = len(pairs) - n1
    out = []
    for i in range(b):
        terms = []
        for j in _partners(b, i, include_diagonal):
            s = hard_sim(y[i], y[j])
            theta = alpha * float(u[i] @ u[j])
            w = len(pairs) / n1 if s else len(pairs) / n0
            terms.append(w * (log1pexp(theta) - s * theta))
        out.append(np.mean(terms))
    return np.array(out)


def dsh(y, u, margin=None, alpha=0.01, include_diagonal=True) -> NDArray:
    """DSH eq. 4: ½(1−y)D + ½y·max(m − D, 0) + α‖|u| − 1‖₁."""
    y, u = np.asarray(y, float), np.asarray(u, float)
    m = 2.0 * u.shape[1] if margin is None else margin
    out = []
    for i in range(len(u)):
        terms = []
        for j in _partners(len(u), i, include_diagonal):
            d = float(np.sum((u[i] - u[j]) ** 2))
            dissimilar = 1.0 - hard_sim(y[i], y[j])
            terms.append(
                0.5 * (1 - dissimilar) * d + 0.5 * dissimilar * max(m - d, 0.0)
            )
        out.append(np.mean(terms) + alpha * np.sum(np.abs(np.abs(u[i]) - 1)))
    return np.array(out)


def sylvester_hadamard(n: int) -> NDArray:
    """H_1 = [1], H_2n = [[H, H], [H, −H]]."""
    h = np.ones((1, 1))
    while h.shape[0] < n:
        h = np.block([[h, h], [h, -h]])
    return h


def csq(y, u, centers, tie_break, lam=1e-4, eps=1e-7) -> NDArray:
    """CSQ eq. 6–8 with the multi-label centre sign(Σ_c y_c h_c)."""
    y, u = np.asarray(y, float), np.asarray(u, float)
    out = []
    for i in range(len(u)):
        total = sum(centers[c] for c in range(len(centers)) if y[i, c] > 0)
        centre = np.where(total > 0, 1.0, np.where(total < 0, -1.0, tie_break))
        t = (centre + 1) / 2
        p = (u[i] + 1) / 2
        bce = -(
            t * np.log(np.maximum(p, eps))
            + (1 - t) * np.log(np.maximum(1 - p, eps))
        )
        out.append(np.mean(bce) + lam * np.mean((np.abs(u[i]) - 1) ** 2))
    return np.array(out)


def soft_only(y, u, gamma=0.1, alpha=0.1, include_diagonal=True) -> NDArray:
    """γK((⟨u_i,u_j⟩ + K)/2K − s)² on every pair + α mean| |u| − 1 |."""
    y, u = np.asarray(y, float), np.asarray(u, float)
    k = u.shape[1]
    out = []
    for i in range(len(u)):
        terms = [
            gamma * k * ((u[i] @ u[j] + k) / (2 * k) - cosine(y[i], y[j])) ** 2
            for j in _partners(len(u), i, include_diagonal)
        ]
        out.append(np.mean(terms) + alpha * np.mean(np.abs(np.abs(u[i]) - 1)))
    return np.array(out)


def idhn_dhp(
    y,
    u,
    bank_y=None,
    bank_u=None,
    alpha=0.5,
    gamma=0.1,
    lam=0.1,
    softsign=False,
) -> NDArray:
    """Literal port of DeepHash-pytorch ``IDHN.py`` ``DPSHLoss.forward``.

    Partners are the bank rows (all of them) or, without a bank, the batch.
    """
    y, u = np.asarray(y, float), np.asarray(u, float)
    if softsign:
        u = u / (np.abs(u) + 1)
    if bank_u is None:
        bank_y, bank_u = y, u
    k = u.shape[1]
    out = []
    for i in range(len(u)):
        terms = []
        for j in range(len(bank_u)):
            norm = np.linalg.norm(y[i]) * np.linalg.norm(bank_y[j])
            s = float(y[i] @ bank_y[j]) / (norm + 1e-5)
            hard = (s > 0.99) or (s < 0.01)
            theta = alpha * float(u[i] @ bank_u[j])
            if hard:
                terms.append(log1pexp(theta) - s * theta)
            else:
                terms.append(gamma * (theta + k - 2 * s * k) ** 2)
        out.append(np.mean(terms) + lam * np.mean(np.abs(np.abs(u[i]) - 1)))
    return np.array(out)
