"""Fast, vectorised Bradley–Terry fits and Kendall tau-b for many bootstrap resamples at once.

One Newton solve per iteration for all resamples (a batch of n x n systems), with a small ridge
penalty so that an essay that wins every comparison keeps a finite score. For the 10-30
anchors of an alignment run, 1000 resamples take well under a second.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int_]

RIDGE = 0.01
_MAX_ITERATIONS = 100
_MAX_STEP = 2.0
_TOLERANCE = 1e-7


def fit_bt_batch(wins: FloatArray, ridge: float = RIDGE) -> FloatArray:
    """Mean-centred BT abilities for each win matrix of ``wins`` (shape B x n x n).

    ``wins[b, i, j]`` counts how often item i beat item j in resample b. The fit maximises the
    BT log-likelihood minus ``ridge / 2 * sum(theta ** 2)`` by Newton's method.
    """
    batch, n, _ = wins.shape
    games = wins + wins.transpose(0, 2, 1)
    won = wins.sum(axis=2)
    theta = np.zeros((batch, n))
    diagonal = np.arange(n)
    for _ in range(_MAX_ITERATIONS):
        p = 1.0 / (1.0 + np.exp(theta[:, None, :] - theta[:, :, None]))  # P(i beats j)
        gradient = won - (games * p).sum(axis=2) - ridge * theta
        weights = games * p * (1.0 - p)
        hessian = -weights
        hessian[:, diagonal, diagonal] = weights.sum(axis=2) + ridge
        step = np.clip(np.linalg.solve(hessian, gradient[..., None])[..., 0], -_MAX_STEP, _MAX_STEP)
        theta += step
        if float(np.abs(step).max(initial=0.0)) < _TOLERANCE:
            break
    centred: FloatArray = theta - theta.mean(axis=1, keepdims=True)
    return centred


def tau_b_batch(x: Sequence[float], y: FloatArray) -> FloatArray:
    """Kendall tau-b between ``x`` (n) and each row of ``y`` (B x n); NaN where undefined."""
    xs = np.asarray(x, dtype=float)
    i, j = np.triu_indices(xs.size, 1)
    sign_x = np.sign(xs[i] - xs[j])
    sign_y = np.sign(y[:, i] - y[:, j])
    pairs = i.size
    untied_x = np.count_nonzero(sign_x)
    untied_y = np.count_nonzero(sign_y, axis=1)
    denominator = np.sqrt(untied_x * untied_y.astype(float))
    score = (sign_x * sign_y).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        tau: FloatArray = np.where(denominator > 0, score / denominator, np.nan)
    return tau if pairs else np.full(y.shape[0], np.nan)


def win_matrix(n: int, winners: IntArray, losers: IntArray, counts: FloatArray) -> FloatArray:
    """Win matrices (B x n x n) from comparison weights ``counts`` (B x m)."""
    cells = np.zeros((winners.size, n * n))
    cells[np.arange(winners.size), winners * n + losers] = 1.0
    wins: FloatArray = (counts @ cells).reshape(counts.shape[0], n, n)
    return wins


def resample_counts(m: int, resamples: int, rng: np.random.Generator) -> FloatArray:
    """How often each of ``m`` comparisons is drawn in each resample (with replacement)."""
    if m == 0:
        return np.zeros((resamples, 0))
    counts: FloatArray = rng.multinomial(m, np.full(m, 1.0 / m), size=resamples).astype(float)
    return counts


def stable_rng(seed: int, *keys: str) -> np.random.Generator:
    """An RNG determined by ``seed`` and the keys (not by the order things are processed in)."""
    words = [int.from_bytes(hashlib.sha256(key.encode()).digest()[:4], "big") for key in keys]
    return np.random.default_rng([seed, *words])


def percentile_interval(values: FloatArray, level: float = 0.95) -> tuple[float, float]:
    """The percentile bootstrap interval of ``values`` (NaN resamples left out)."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return (float("nan"), float("nan"))
    tail = (1.0 - level) / 2.0 * 100.0
    low, high = np.percentile(finite, [tail, 100.0 - tail])
    return (float(low), float(high))
