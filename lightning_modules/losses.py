"""Losses shared by the methods, as pure functions of tensors (and nets where a penalty needs them).

Each cites the equation it implements. Reductions are means over the batch unless the paper says otherwise.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

GAN_MODES = ("lsgan", "vanilla", "wgan", "hinge")


def _check_mode(mode: str) -> None:
    if mode not in GAN_MODES:
        raise ValueError(f"unknown GAN loss '{mode}'; expected one of {GAN_MODES}")


def discriminator_adv_loss(real_pred: torch.Tensor, fake_pred: torch.Tensor, mode: str = "lsgan") -> torch.Tensor:
    """The discriminator's side of the adversarial game.

    - ``lsgan`` (Mao et al., used by AGGAN/CycleGAN): ``½·[(D(y)−1)² + D(G(x))²]`` — the ½ is AGGAN's "divide the
      objective by 2 while optimizing discriminators" (Sec. III-D).
    - ``vanilla``: the log-likelihood form of AGGAN Eq. 2 / SAT Eq. 2, with logits: ``BCE(D(y),1) + BCE(D(G(x)),0)``.
    - ``wgan``: ``E[D(G(x))] − E[D(y)]`` (add the gradient penalty separately).
    - ``hinge``: ``E[relu(1−D(y))] + E[relu(1+D(G(x)))]``.
    """
    _check_mode(mode)
    if mode == "lsgan":
        return 0.5 * (F.mse_loss(real_pred, torch.ones_like(real_pred)) + F.mse_loss(fake_pred, torch.zeros_like(fake_pred)))
    if mode == "vanilla":
        return F.binary_cross_entropy_with_logits(real_pred, torch.ones_like(real_pred)) + F.binary_cross_entropy_with_logits(
            fake_pred, torch.zeros_like(fake_pred)
        )
    if mode == "wgan":
        return fake_pred.mean() - real_pred.mean()
    return F.relu(1 - real_pred).mean() + F.relu(1 + fake_pred).mean()


def generator_adv_loss(fake_pred: torch.Tensor, mode: str = "lsgan") -> torch.Tensor:
    """The generator's side: LSGAN ``(D(G(x))−1)²``; vanilla non-saturating ``BCE(D(G(x)),1)``; WGAN/hinge ``−E[D(G(x))]``."""
    _check_mode(mode)
    if mode == "lsgan":
        return F.mse_loss(fake_pred, torch.ones_like(fake_pred))
    if mode == "vanilla":
        return F.binary_cross_entropy_with_logits(fake_pred, torch.ones_like(fake_pred))
    return -fake_pred.mean()


def cycle_loss(reconstruction: torch.Tensor, original: torch.Tensor) -> torch.Tensor:
    """Cycle consistency, AGGAN Eq. 4 (one direction): ``‖F(G(x)) − x‖₁``, mean over pixels."""
    return F.l1_loss(reconstruction, original)


def pixel_loss(translated: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
    """Pixel loss, AGGAN Eq. 5 (one direction): ``‖G(x) − x‖₁``, mean over pixels."""
    return F.l1_loss(translated, source)


TV_FORMS = ("paper", "authors")


def total_variation(mask: torch.Tensor, form: str = "paper") -> torch.Tensor:
    """Attention (TV) loss, AGGAN Eq. 6: Σ_{w,h} |M(w+1,h)−M(w,h)| + |M(w,h+1)−M(w,h)| — summed over pixels and
    channels as the paper writes it (hence λ_tv = 1e-6).

    ``form``: ``paper`` — the 1-channel mask's sum, averaged over the batch (Eq. 6 per image; the paper trains at
    batch 1); ``authors`` — AGGAN's released code: the mask repeated to 3 channels and summed over the batch too,
    i.e. 3·B times the paper form at batch B."""
    if form not in TV_FORMS:
        raise ValueError(f"unknown TV form {form!r}; expected one of {', '.join(TV_FORMS)}")
    dh = (mask[:, :, 1:, :] - mask[:, :, :-1, :]).abs().flatten(1).sum(1)
    dw = (mask[:, :, :, 1:] - mask[:, :, :, :-1]).abs().flatten(1).sum(1)
    per_image = dh + dw
    return per_image.mean() if form == "paper" else 3 * per_image.sum()


def domain_classification_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """StarGAN's domain classification loss (also SPM Eqs. 2–3): softmax cross-entropy of D_cls(x) vs the label."""
    return F.cross_entropy(logits, labels)


def interpolates(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """WGAN-GP's sample points x̂ = α·x + (1 − α)·x̃, one α ~ U[0, 1] per image, detached from both and requiring
    grad (Gulrajani et al., Alg. 1 line 6)."""
    alpha = torch.rand(real.shape[0], 1, 1, 1, device=real.device, dtype=real.dtype)
    return (alpha * real.detach() + (1 - alpha) * fake.detach()).requires_grad_(True)


def penalty_at(score: torch.Tensor, mixed: torch.Tensor) -> torch.Tensor:
    """``E[(‖∇_x̂ D(x̂)‖₂ − 1)²]`` from the critic's ``score`` at ``mixed`` (from :func:`interpolates`), with
    ``create_graph`` so the penalty trains the critic. ``score`` may come from a pass over a larger batch that holds
    ``mixed`` as a part (``torch.cat``): only critics without batch statistics, where each image's score depends on
    that image alone, give the same penalty that way. The norm is computed in float32 (bf16 gradients lose too much
    precision for ``(‖g‖−1)²``)."""
    (grad,) = torch.autograd.grad(score.sum(), mixed, create_graph=True)
    norm = grad.float().flatten(1).norm(2, dim=1)
    return ((norm - 1) ** 2).mean()


def gradient_penalty(
    critic: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor, fake: torch.Tensor
) -> torch.Tensor:
    """WGAN-GP (Gulrajani et al., Eq. 3): ``E[(‖∇_x̂ D(x̂)‖₂ − 1)²]`` at random interpolates x̂ of real and fake, with
    the critic's own pass over x̂.

    The penalty is taken w.r.t. the *input*, so under DDP it joins the critic loss in one backward.
    """
    mixed = interpolates(real, fake)
    return penalty_at(critic(mixed), mixed)


def mask_sparsity(mask: torch.Tensor) -> torch.Tensor:
    """Attention-mask sparsity, SPM Eq. 6: ``L_m = 1/(CHW) Σ |m_ijk|``, averaged over the batch."""
    return mask.abs().mean()


def flow_smoothness(flow_pixels: torch.Tensor) -> torch.Tensor:
    """Smoothness of a motion field in pixels: ``mean |∂x w| + mean |∂y w|`` (L1 total variation, averaged).

    Not in the SPM paper **[inferred option]**: with few iterations at 32 px the motion head otherwise finds
    pixel-alternating fields that scramble the face rather than move its parts. flow_pixels: B×2×H×W.
    """
    dy = (flow_pixels[:, :, 1:, :] - flow_pixels[:, :, :-1, :]).abs().mean()
    dx = (flow_pixels[:, :, :, 1:] - flow_pixels[:, :, :, :-1]).abs().mean()
    return dx + dy


def perceptual_self_regularization(
    source_features: list[torch.Tensor], translated_features: list[torch.Tensor], weights: list[float]
) -> torch.Tensor:
    """Self-regularization, SAT Eq. 4: ``Σ_l w_l/(H_l·W_l) Σ_{h,w} ‖F_l(x)_{hw} − F_l(G(x))_{hw}‖₂²`` — the squared
    ℓ2 distance over channels at each location of feature map l (B×C_l×H_l×W_l), averaged over the locations,
    weighted by w_l (SAT: first three VGG-19 layers, 1/32, 1/16, 1/8), summed over layers, mean over the batch."""
    if not (len(source_features) == len(translated_features) == len(weights)):
        raise ValueError(
            f"perceptual_self_regularization: {len(source_features)} source, {len(translated_features)} translated "
            f"feature maps and {len(weights)} weights; they must match"
        )
    total = source_features[0].new_zeros(())
    for w, fx, fy in zip(weights, source_features, translated_features):
        total = total + w * (fx - fy).pow(2).sum(dim=1).mean(dim=(1, 2)).mean()
    return total


def uniform_posterior_cross_entropy(logits: torch.Tensor) -> torch.Tensor:
    """Disentanglement loss term, Oldfield et al. Eq. 4: the cross-entropy between the uniform distribution U over
    the K classes of an attribute and the classifier's posterior p = softmax(C(z)) on an encoding of *another*
    attribute, ``CE(U, p) = −(1/K) Σ_k log p_k`` (logits B×K), averaged over the batch. It equals log K exactly
    when p is uniform and is larger otherwise (``= log K + KL(U ‖ p)``)."""
    return -F.log_softmax(logits.float(), dim=1).mean(dim=1).mean()


def attribute_classification_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Multi-label attribute classification (the bridge's L_cls; STGAN/AttGAN style): independent sigmoid
    cross-entropies of C(x) (B×n logits) vs the {0, 1} labels, averaged over attributes and batch."""
    return F.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype))


def mode_seeking_loss(
    code_a: torch.Tensor, code_b: torch.Tensor, image_a: torch.Tensor, image_b: torch.Tensor, eps: float = 1e-5
) -> torch.Tensor:
    """Mode seeking (Mao et al., MSGAN; the bridge's L_ms): ``mean|r_a − r_b| / (mean|G(r_a) − G(r_b)| + eps)``.

    Minimising it pushes two outputs for two random codes apart. With identical images it is
    ``mean|r_a − r_b| / eps`` — large but finite.
    """
    return (code_a - code_b).abs().mean() / ((image_a - image_b).abs().mean() + eps)
