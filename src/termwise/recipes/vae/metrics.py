"""What a bottleneck has learned: active units, mutual information I(x; z), the
importance-weighted NLL bound, and the per-split diagnostics logged every epoch."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from termwise.recipes.vae.data import PAD
from termwise.recipes.vae.model import SentenceVAE, VaeOutput, decoder_targets
from termwise.terms import free_bits_kl, gaussian_kl_per_dim

LOG_2PI = math.log(2 * math.pi)
ACTIVE_VARIANCE = 0.01  # Burda et al. 2016: a unit is active when Var_x E[z_d | x] > 0.01


def active_units(mu: Tensor) -> int:
    """Latent dimensions (over all latent tokens) whose posterior mean varies across
    examples: ``Var_x(E[z_d | x]) > 0.01``."""
    flat = mu.reshape(mu.shape[0], -1).double()
    return int((flat.var(0, correction=0) > ACTIVE_VARIANCE).sum())


def mutual_information(mu: Tensor, logvar: Tensor, generator: torch.Generator) -> float:
    """I(x; z) under the aggregate posterior (He et al. 2019): ``E[log q(z|x)] - E[log q(z)]``
    with ``q(z)`` estimated by the mixture of the given examples' posteriors."""
    mu, logvar = mu.reshape(mu.shape[0], -1).double(), logvar.reshape(mu.shape[0], -1).double()
    count, dims = mu.shape
    neg_entropy = (-0.5 * dims * LOG_2PI - 0.5 * (1 + logvar).sum(-1)).mean()
    noise = torch.randn(mu.shape, generator=generator, dtype=mu.dtype)
    z = mu + noise * (0.5 * logvar).exp()
    var = logvar.exp()
    log_qz = []
    for chunk in z.split(256):
        deviation = chunk[:, None, :] - mu[None]
        density = -0.5 * (deviation.square() / var[None]).sum(-1)
        density = density - 0.5 * (dims * LOG_2PI + logvar.sum(-1))[None]
        log_qz.append(torch.logsumexp(density, 1) - math.log(count))
    return float(neg_entropy - torch.cat(log_qz).mean())


def _gaussian_log_density(x: Tensor, mu: Tensor, logvar: Tensor) -> Tensor:
    return (-0.5 * (LOG_2PI + logvar + (x - mu).square() / logvar.exp())).flatten(1).sum(-1)


@torch.no_grad()
def importance_weighted_nll(
    model: SentenceVAE, ids: Tensor, lengths: Tensor, samples: int, generator: torch.Generator
) -> Tensor:
    """``-log p(x)`` per example, bounded with ``samples`` posterior draws:
    ``-logsumexp_k [log p(x|z_k) + log p(z_k) - log q(z_k|x)] + log K`` (exact for a model
    without a latent)."""
    inputs, targets = decoder_targets(ids, lengths)
    if not model.config.use_latent:
        logits = model.decode(torch.zeros(len(ids), model.latent_size), inputs)
        return _sentence_nll(logits, targets)
    mu, logvar = model.encode(ids, lengths)
    weights = []
    for _ in range(samples):
        z = mu + torch.randn(mu.shape, generator=generator) * (0.5 * logvar).exp()
        log_px = -_sentence_nll(model.decode(z.reshape(len(ids), -1), inputs), targets)
        log_pz = _gaussian_log_density(z, torch.zeros_like(z), torch.zeros_like(z))
        weights.append(log_px + log_pz - _gaussian_log_density(z, mu, logvar))
    return -(torch.logsumexp(torch.stack(weights), 0) - math.log(samples))


def _sentence_nll(logits: Tensor, targets: Tensor) -> Tensor:
    nll = F.cross_entropy(logits.transpose(1, 2), targets, ignore_index=PAD, reduction="none")
    return nll.sum(-1)


@dataclass
class Weights:
    """The weights in force when a split is diagnosed (for the teacher's share)."""

    kl: float
    teacher: float
    free_bits: float


@torch.no_grad()
def diagnose_split(
    model: SentenceVAE,
    ids: Tensor,
    lengths: Tensor,
    labels: Tensor,
    teacher: Tensor,
    weights: Weights,
    reduce: str,
    generator: torch.Generator,
    iw_samples: int = 0,
    advance: Callable[[int], None] | None = None,
) -> dict[str, float]:
    """Every diagnostic of one split (without prefix): reconstruction NLL per token and
    token accuracy at the posterior mean (or, for classify, loss and exact accuracy), the
    KL statistics, active units, MI, the teacher loss and its share of the total, and with
    ``iw_samples`` the importance-weighted NLL and perplexity. ``advance(n)`` is told of
    every ``n`` examples done (once per pass: twice per example with ``iw_samples``)."""
    model.eval()
    sums: dict[str, float] = {}
    mus, logvars = [], []
    for rows in torch.arange(len(ids)).split(256):
        out = model(ids[rows], lengths[rows], sample=False)
        answer = _answer(model, out.logits, ids[rows], lengths[rows], labels[rows], sums)
        kl = torch.zeros(len(rows))
        if out.mu is not None and out.logvar is not None:
            mus.append(out.mu)
            logvars.append(out.logvar)
            term = free_bits_kl(out.mu, out.logvar, weights.free_bits, reduce)  # type: ignore[arg-type]
            kl = sentence_kl(term.values, model.config.latent_dim, reduce)
            for name in ("kl_raw", "kl_after", "penalty_reduction", "free_fraction"):
                sums[name] = sums.get(name, 0.0) + float(term.stats[name]) * len(rows)
            sums["kl"] = sums.get("kl", 0.0) + float(kl_of(out.mu, out.logvar).sum())
        teacher_loss = teacher_term(out, teacher[rows], model.task)
        parts = [answer, weights.kl * kl, weights.teacher * teacher_loss]
        total = torch.stack([p.abs() for p in parts]).sum(0)
        sums["teacher"] = sums.get("teacher", 0.0) + float(teacher_loss.sum())
        sums["teacher_share"] = sums.get("teacher_share", 0.0) + float(
            (parts[2].abs() / total.clamp_min(1e-12)).sum()
        )
        if advance is not None:
            advance(len(rows))
    count = len(ids)
    metrics = {k: v / count for k, v in sums.items() if k not in ("nll_sum", "tokens", "correct")}
    if model.task == "reconstruct":
        metrics["nll"] = sums["nll_sum"] / sums["tokens"]
        metrics["token_accuracy"] = sums["correct"] / sums["tokens"]
    if mus:
        mu, logvar = torch.cat(mus), torch.cat(logvars)
        metrics["active_units"] = float(active_units(mu))
        metrics["mi"] = mutual_information(mu, logvar, generator)
    if iw_samples and model.task == "reconstruct":
        bounds = []
        for rows in torch.arange(len(ids)).split(512):
            bounds.append(
                importance_weighted_nll(model, ids[rows], lengths[rows], iw_samples, generator)
            )
            if advance is not None:
                advance(len(rows))
        bound = torch.cat(bounds)
        metrics["iw_nll"] = float(bound.sum()) / sums["tokens"]
        metrics["perplexity"] = math.exp(metrics["iw_nll"])
    return metrics


def _answer(
    model: SentenceVAE,
    logits: Tensor,
    ids: Tensor,
    lengths: Tensor,
    labels: Tensor,
    sums: dict[str, float],
) -> Tensor:
    """Per-example answer loss, accumulating the counts the metrics need."""
    if model.task == "classify":
        loss = F.cross_entropy(logits, labels, reduction="none")
        sums["loss"] = sums.get("loss", 0.0) + float(loss.sum())
        sums["exact"] = sums.get("exact", 0.0) + float((logits.argmax(-1) == labels).sum())
        return loss
    _, targets = decoder_targets(ids, lengths)
    nll = _sentence_nll(logits, targets)
    real = targets != PAD
    sums["nll_sum"] = sums.get("nll_sum", 0.0) + float(nll.sum())
    sums["tokens"] = sums.get("tokens", 0.0) + float(real.sum())
    correct = (logits.argmax(-1) == targets) & real
    sums["correct"] = sums.get("correct", 0.0) + float(correct.sum())
    return nll


def kl_of(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL(q(z|x) || N(0, I)) per example in nats, over every latent token and dim."""
    return gaussian_kl_per_dim(mu, logvar).flatten(1).sum(-1)


def sentence_kl(values: Tensor, latent_dim: int, reduce: str) -> Tensor:
    """free_bits_kl's per-latent-token values in nats per example: mean_dims and per_dim
    average over dims (times latent_dim is the sum); sum_dims is already a sum."""
    scale = 1.0 if reduce == "sum_dims" else float(latent_dim)
    return values.sum(-1) * scale


def teacher_term(out: VaeOutput, target: Tensor, task: str) -> Tensor:
    """Per example: ``1 - cos`` to the teacher embedding (reconstruct), or
    ``KL(teacher || student)`` of the class probabilities (classify); 0 without one."""
    logits = out.logits
    if target.shape[-1] == 0:
        return torch.zeros(len(target), device=target.device)
    if task == "classify":
        log_student = F.log_softmax(logits, -1)
        return (target * (target.clamp_min(1e-12).log() - log_student)).sum(-1)
    prediction = out.teacher
    if prediction is None:
        return torch.zeros(len(target), device=target.device)
    return 1.0 - F.cosine_similarity(prediction, target, dim=-1)


def prefixed(prefix: str, metrics: Mapping[str, float]) -> dict[str, float]:
    return {f"{prefix}_{k}": v for k, v in metrics.items()}
