"""Brownian bridges and bridge matching as pure functions of tensors (no networks, no training state).

The reference process is a Brownian motion with variance ``epsilon`` per unit time on t in [0, 1] (the
Schrodinger bridge's entropic regularisation: the static bridge between marginals p0 and p1 is the entropic
optimal-transport coupling for the cost |x - y|^2 / 2 with regularisation epsilon). Its bridge pinned at x0 and
x1 is Gaussian, x_t = (1 - t) x0 + t x1 + sqrt(epsilon t (1 - t)) z (Shi, De Bortoli, Campbell, Doucet,
"Diffusion Schrodinger Bridge Matching", NeurIPS 2023, Sec. 2, the Brownian bridge Q_{|0,1}).

Bridge matching (their eq. 8): the Markovian projection of a mixture of such bridges has the drift
v(x, t) = E[(x1 - x_t) / (1 - t) | x_t = x]. A network that regresses the endpoint x1 from (x_t, t) learns the
same conditional expectation, x1_hat(x, t) = E[x1 | x_t = x], and gives the drift (x1_hat - x) / (1 - t).
The backward process is the same construction with the roles of x0 and x1 exchanged and time s = 1 - t.
"""
from __future__ import annotations

import math
from typing import Callable

import torch

#: endpoint predictor: (x_t (N, ...), t (N,) in [0, 1)) -> the predicted endpoint, shaped like x_t
EndpointFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def broadcast_time(t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """(N,) times reshaped to (N, 1, ..., 1) so they broadcast over ``like`` (N, ...)."""
    return t.view(-1, *([1] * (like.ndim - 1)))


def bridge_point(x0: torch.Tensor, x1: torch.Tensor, t: torch.Tensor, epsilon: float,
                 noise: torch.Tensor) -> torch.Tensor:
    """A draw of the Brownian bridge between x0 and x1 at times t (N,): (1 - t) x0 + t x1 + sqrt(eps t (1 - t)) z."""
    tt = broadcast_time(t, x0)
    return (1 - tt) * x0 + tt * x1 + (epsilon * tt * (1 - tt)).sqrt() * noise


def simulate_bridge(endpoint: EndpointFn, x: torch.Tensor, steps: int, epsilon: float,
                    noise_like: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """Euler-Maruyama of dX = (x1_hat(X, t) - X) / (1 - t) dt + sqrt(epsilon) dW from t = 0 (X = x) to t = 1 in
    ``steps`` equal steps, one endpoint evaluation per step. The last step's drift lands exactly on x1_hat
    (dt / (1 - t) = 1), and its noise is left out: the sample is that prediction (the bridge's end has no
    variance). ``noise_like(x)`` draws standard normal noise shaped like x (a seeded generator's)."""
    if steps < 1:
        raise ValueError(f"simulate_bridge: expected at least 1 step, got {steps}")
    dt = 1.0 / steps
    for k in range(steps):
        t = k * dt
        pred = endpoint(x, torch.full((x.shape[0],), t, device=x.device, dtype=x.dtype))
        if k == steps - 1:
            return pred
        x = x + (pred - x) * (dt / (1.0 - t)) + math.sqrt(epsilon * dt) * noise_like(x)
    return x


def gaussian_sb_cross_covariance(var0: torch.Tensor, var1: torch.Tensor, epsilon: float) -> torch.Tensor:
    """Cross-covariance Cov(x0, x1) per coordinate of the Schrodinger bridge (equivalently the entropic OT
    coupling with cost |x - y|^2 / 2 and regularisation epsilon) between Gaussians with independent coordinates
    of variances var0 and var1. The coupling's density is f(x) g(y) exp(x y / epsilon) up to terms in x or y
    alone, so the bivariate Gaussian's precision gives c / (var0 var1 - c^2) = 1 / epsilon, whose positive root is
    c = (sqrt(4 var0 var1 + epsilon^2) - epsilon) / 2 (the diagonal case of Janati et al. 2020, Bunne et al. 2023,
    eq. 4). epsilon -> 0 gives the OT map's sqrt(var0 var1); epsilon -> infinity the independent coupling's 0."""
    return ((4 * var0 * var1 + epsilon ** 2).sqrt() - epsilon) / 2
