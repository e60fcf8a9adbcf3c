"""BG/NBD and Gamma-Gamma models fitted by maximum likelihood with numpy/scipy (Fader, Hardie & Lee 2005; 2013)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import optimize, special

ArrayLike = Sequence[float] | np.ndarray


@dataclass(frozen=True)
class BgNbdParams:
    r: float
    alpha: float
    a: float
    b: float


@dataclass(frozen=True)
class GammaGammaParams:
    p: float
    q: float
    gamma: float


@dataclass(frozen=True)
class Fit:
    params: BgNbdParams | GammaGammaParams
    log_likelihood: float  # the paper's LL, in the data's own time unit
    customers: int
    converged: bool
    iterations: int


def _arrays(*columns: ArrayLike) -> list[np.ndarray]:
    out = [np.asarray(c, dtype=float) for c in columns]
    if len({c.shape for c in out}) != 1:
        raise ValueError("frequency, recency and T must have the same length")
    return out


def _collapse(*columns: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """Identical rows fitted once with a weight: a million customers share few (x, t_x, T) combinations."""
    stacked = np.column_stack(columns)
    unique, counts = np.unique(stacked, axis=0, return_counts=True)
    return [unique[:, k] for k in range(unique.shape[1])], counts.astype(float)


def bg_nbd_log_likelihood_terms(params: BgNbdParams, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
    """Per-customer log-likelihood, eq. (6) of Fader, Hardie & Lee (2005)."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    a1 = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha)
    a2 = special.betaln(a, b + x) - special.betaln(a, b)
    a3 = -(r + x) * np.log(alpha + T)
    repeat = x > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        a4 = np.where(
            repeat, np.log(a) - np.log(np.where(repeat, b + x - 1, 1.0)) - (r + x) * np.log(alpha + t_x), -np.inf
        )
    return a1 + a2 + np.logaddexp(a3, a4)


def bg_nbd_log_likelihood(params: BgNbdParams, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> float:
    x, t_x, t = _arrays(frequency, recency, T)
    return float(bg_nbd_log_likelihood_terms(params, x, t_x, t).sum())


def fit_bg_nbd(frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> Fit:
    """Maximum-likelihood BG/NBD (r, α, a, b) on log parameters; time in the data's unit (weeks for CDNOW)."""
    x, t_x, t = _arrays(frequency, recency, T)
    if x.size == 0:
        raise ValueError("no customers to fit")
    (ux, utx, ut), w = _collapse(x, t_x, t)
    # Scale time so α starts near 1; the likelihood is invariant apart from α and a constant term.
    scale = float(max(ut.max(), 1e-9)) / 10.0
    utx_s, ut_s = utx / scale, ut / scale

    def negative(log_params: np.ndarray) -> float:
        r, alpha, a, b = np.exp(log_params)
        ll = bg_nbd_log_likelihood_terms(BgNbdParams(r, alpha, a, b), ux, utx_s, ut_s)
        return -float(np.dot(w, ll)) / w.sum()

    result = _minimise(negative, np.zeros(4))
    r, alpha_s, a, b = np.exp(result.x)
    params = BgNbdParams(float(r), float(alpha_s * scale), float(a), float(b))
    return Fit(params, bg_nbd_log_likelihood(params, x, t_x, t), int(x.size), bool(result.success), int(result.nit))


def _minimise(objective, start: np.ndarray):
    # Nelder-Mead finds the basin without gradients; L-BFGS-B then polishes to ~1e-10 relative.
    coarse = optimize.minimize(
        objective, start, method="Nelder-Mead", options={"xatol": 1e-6, "fatol": 1e-10, "maxiter": 4000}
    )
    fine = optimize.minimize(
        objective, coarse.x, method="L-BFGS-B", options={"ftol": 1e-15, "gtol": 1e-10, "maxiter": 1000}
    )
    best = fine if fine.fun <= coarse.fun else coarse
    best.nit = int(getattr(coarse, "nit", 0)) + int(getattr(fine, "nit", 0))
    # L-BFGS-B may stop "abnormally" at the 1e-15 tolerance while already at the optimum Nelder-Mead found.
    best.success = bool(coarse.success or fine.success)
    return best


def probability_alive(params: BgNbdParams, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> np.ndarray:
    """P(alive | x, t_x, T); 1 for customers without repeat purchases (BG/NBD convention)."""
    x, t_x, t = _arrays(frequency, recency, T)
    return 1.0 / (1.0 + _odds_dead(params, x, t_x, t))


def _odds_dead(params: BgNbdParams, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    repeat = x > 0
    safe = np.where(repeat, b + x - 1, 1.0)
    log_term = np.log(a) - np.log(safe) + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x))
    return np.where(repeat, np.exp(log_term), 0.0)


def conditional_expected_purchases(
    params: BgNbdParams, t: float, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
) -> np.ndarray:
    """E[Y(t) | x, t_x, T]: expected purchases in the next ``t`` time units (eq. 10)."""
    x, t_x, T_ = _arrays(frequency, recency, T)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    if a == 1:
        raise ValueError("E[Y(t)] is undefined at a = 1")
    z = t / (alpha + T_ + t)
    hyp = special.hyp2f1(r + x, b + x, a + b + x - 1, z)
    numerator = (a + b + x - 1) / (a - 1) * (1 - ((alpha + T_) / (alpha + T_ + t)) ** (r + x) * hyp)
    return numerator / (1.0 + _odds_dead(params, x, t_x, T_))


def expected_purchases(params: BgNbdParams, t: float) -> float:
    """Unconditional E[X(t)] for a new customer (eq. 9)."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    hyp = special.hyp2f1(r, b, a + b - 1, t / (alpha + t))
    return float((a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t)) ** r * hyp))


# ---------------------------------------------------------------- Gamma-Gamma spend model


def gamma_gamma_log_likelihood_terms(params: GammaGammaParams, x: np.ndarray, zbar: np.ndarray) -> np.ndarray:
    p, q, g = params.p, params.q, params.gamma
    px = p * x
    return (
        special.gammaln(px + q) - special.gammaln(px) - special.gammaln(q) + q * np.log(g)
        + (px - 1) * np.log(zbar) + px * np.log(x) - (px + q) * np.log(g + x * zbar)
    )


def gamma_gamma_log_likelihood(params: GammaGammaParams, frequency: ArrayLike, monetary_value: ArrayLike) -> float:
    x, z = _arrays(frequency, monetary_value)
    keep = x > 0
    return float(gamma_gamma_log_likelihood_terms(params, x[keep], z[keep]).sum())


def fit_gamma_gamma(frequency: ArrayLike, monetary_value: ArrayLike) -> Fit:
    """Maximum-likelihood Gamma-Gamma (p, q, γ) on repeat customers only (frequency > 0, mean spend > 0)."""
    x, z = _arrays(frequency, monetary_value)
    keep = (x > 0) & (z > 0)
    x, z = x[keep], z[keep]
    if x.size == 0:
        raise ValueError("no repeat customers to fit")
    (ux, uz), w = _collapse(x, z)
    scale = float(np.mean(z))  # spend in units of its mean keeps γ near 1

    def negative(log_params: np.ndarray) -> float:
        p, q, g = np.exp(log_params)
        ll = gamma_gamma_log_likelihood_terms(GammaGammaParams(p, q, g), ux, uz / scale)
        return -float(np.dot(w, ll)) / w.sum()

    result = _minimise(negative, np.zeros(3))
    p, q, g = np.exp(result.x)
    params = GammaGammaParams(float(p), float(q), float(g * scale))
    return Fit(params, gamma_gamma_log_likelihood(params, x, z), int(x.size), bool(result.success), int(result.nit))


def conditional_expected_value(params: GammaGammaParams, frequency: ArrayLike, monetary_value: ArrayLike) -> np.ndarray:
    """E[Z | x, z̄]: a weighted mean of the population mean pγ/(q−1) and the customer's own mean spend."""
    x, z = _arrays(frequency, monetary_value)
    p, q, g = params.p, params.q, params.gamma
    if q <= 1:
        raise ValueError("E[Z] needs q > 1")
    population = p * g / (q - 1)
    weight = (q - 1) / (p * x + q - 1)
    return weight * population + (1 - weight) * np.where(x > 0, z, 0.0)


def customer_lifetime_value(
    bg: BgNbdParams,
    gg: GammaGammaParams,
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
    monetary_value: ArrayLike,
    *,
    months: int = 12,
    monthly_discount_rate: float = 0.01,
    units_per_month: float = 4.345,
) -> np.ndarray:
    """Discounted expected spend over ``months`` (lifetimes' method; 4.345 for weekly data, 30 for daily).

    The time unit must be the one the BG/NBD model was fitted in: a daily factor on weekly data inflates it ~4x.
    """
    value = conditional_expected_value(gg, frequency, monetary_value)
    total = np.zeros_like(value)
    previous = np.zeros_like(value)
    for month_ in range(1, months + 1):
        horizon = month_ * units_per_month
        cumulative = conditional_expected_purchases(bg, horizon, frequency, recency, T)
        total += value * (cumulative - previous) / (1 + monthly_discount_rate) ** month_
        previous = cumulative
    return total
