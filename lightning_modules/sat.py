"""SAT — "Show, Attend and Translate: Unsupervised Image Translation with Self-Regularization and Attention"
(Yang et al., ICLR 2019 submission). No code was released; everything here is from the paper
(../shared/specs/methods.md §3), with the unpublished choices marked **[inferred]** and made config values.

Paper ↔ code names: vanilla generator G0 = ``G0``; attention branch G_attn = ``A``; discriminator D = ``D``;
VGG-19 feature net F of Eq. 4 = ``feature_net`` (frozen, in no optimizer); λ of Eq. 1 = ``induction.value``.

One generator, one direction (x ∈ X → Y; the datamodule's ``direction`` says which domain is X):
- Eq. 1: ``L_G = ℓ_adv(G(x), Y) + λ·ℓ_reg(x, G(x))`` with ``G(x) = A(x)⊙G0(x) + (1−A(x))⊙x``.
- Eqs. 2–3: the standard GAN (``gan_mode=vanilla``: D maximises log D(y) + log(1−D(G(x))), G minimises the
  non-saturating −log D(G(x)); LSGAN/WGAN-GP/hinge as options, Sec. 2 "Analysis" names them as drop-ins).
- Eq. 4: ``ℓ_reg`` = perceptual distance on the first three VGG-19 layers with weights 1/32, 1/16, 1/8
  (``regularizer=perceptual``); ``l1``/``l2`` pixel distances as the alternatives the paper lists.
- Training scheme: phase 1 trains G0 alone (G(x) = G0(x), i.e. A ≡ 1); phase 2 trains A with G0 frozen (weights
  and BatchNorm statistics: G0 runs in eval mode); phase 3 fine-tunes both jointly at ``joint_lr_scale``·lr.
  Phase lengths are iteration counts (``phases.g0``, ``phases.attention``; phase 3 is the rest), so the phase
  follows from the checkpointed iteration counter and a resumed run continues mid-phase.
- Adaptive weight induction (``AdaptiveWeightInduction``): λ starts at 0 and rises by ``step`` every ``every``
  iterations until the smoothed adversarial loss sinks below ℓ_adv^t (``threshold``); then λ holds — but never
  before it has risen ``min_increments`` times (the guard **[inferred: 1]**: the paper starts at 0 "then
  gradually increase[s] λ", so at least once; without it a discriminator already ahead at a phase start holds λ
  at 0 and leaves G without self-regularisation for the whole phase). Restarted at
  the start of the G0 and the attention phases (the paper: "we repeat such process both when training G0 and
  G_attn"); the joint phase keeps the held λ (``restart_phases`` to change that). Threshold, step, interval and
  smoothing are not published: config values **[inferred]**. Which adversarial loss: the paper says raising λ
  *raises* the adversarial loss (outputs drift back to X, D wins) and that λ stops rising when "the adversarial
  loss sinks below" ℓ_adv^t — consistent only for the discriminator's loss L_D, which sinks as D wins; so
  ``monitor=discriminator`` by default **[inferred]**, ``monitor=generator`` with ``stop_when=above`` as the
  other reading. ``mode=fixed`` holds λ at ``fixed`` throughout (for comparison).

Sec. 3: Adam lr 2e-4, a history of 50 generated images for D, 256 px; "trained from scratch ... Starting from 5k
iteration, we linearly decay the learning rate over the remaining 5k iterations" — read per phase
(``schedule.per_phase``, :meth:`SAT.phase_lr_factor`): each phase's optimizer is constant for the first
``decay_start_fraction`` of its phase and decays linearly to 0 at the phase's end; D follows the phase being
trained **[inferred]** (one D runs through all phases; it restarts at full lr with each phase).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F

from lightning_modules.base import GANModule
from lightning_modules.losses import (
    GAN_MODES,
    discriminator_adv_loss,
    generator_adv_loss,
    mask_sparsity,
    perceptual_self_regularization,
)
from lightning_modules.schedules import linear_decay_from
from nets.sat import SATOutput, compose
from nets.vgg import VGG19Features
from suite.errors import ConfigError

log = logging.getLogger(__name__)

PHASES = {1: "g0", 2: "attention", 3: "joint"}
PHASE_OPTIMIZER = {1: "G0", 2: "A", 3: "joint"}
OPTIMIZER_PHASE = {name: phase for phase, name in PHASE_OPTIMIZER.items()}  # D: none (it follows the phase trained)
REGULARIZERS = ("perceptual", "l1", "l2")


class AdaptiveWeightInduction:
    """λ of SAT Eq. 1 by adaptive weight induction (Sec. 2), or fixed.

    ``update(loss)`` is called once per iteration with the monitored adversarial loss ℓ and sets the λ for
    the next iteration:
    - the smoothed loss s ← β·s + (1−β)·ℓ (s = ℓ at the first update after a restart; β = ``smoothing``);
    - once s crosses ``threshold`` (``stop_when=below``: s < threshold; ``above``: s > threshold) λ holds until
      the next ``restart``;
    - otherwise every ``every``-th update raises λ by ``step`` (capped at ``max_value`` when set: one cap for every
      phase, or a mapping from phase name — g0, attention, joint — to that phase's cap, ``None`` for none);
    - the guard: the hold test waits until λ has been raised ``min_increments`` times since the restart, so λ
      cannot stay at ``start`` (0) when the loss is already below the threshold at the first update
      **[inferred: 1]**; ``min_increments=0`` is the unguarded rule.
    ``mode=fixed`` keeps ``fixed`` always (s is still tracked, for the logs). Non-finite losses are ignored.

    The state lives in float64 0-d tensors on the loss's device and every rule above is a ``torch.where``: an
    update never reads the loss back to the host (issue #25), and float64 keeps the arithmetic of Python floats.
    ``weight`` is λ as a tensor (what the loss multiplies by); ``value``, ``smoothed``, ``holding``, ``count``
    and ``increments`` read the state as Python values (a host sync: for logs at intervals, tests and
    ``state_dict()``, which a checkpoint holds so a run resumes the induction exactly where it was).
    """

    def __init__(
        self,
        mode: str = "adaptive",
        start: float = 0.0,
        step: float = 0.1,
        every: int = 100,
        threshold: float = 1.0,
        smoothing: float = 0.9,
        stop_when: str = "below",
        max_value: float | Mapping[str, float | None] | None = None,
        fixed: float = 1.0,
        min_increments: int = 1,
    ) -> None:
        if mode not in ("adaptive", "fixed"):
            raise ConfigError(f"method.induction.mode must be adaptive or fixed, got '{mode}'.")
        if stop_when not in ("below", "above"):
            raise ConfigError(f"method.induction.stop_when must be below or above, got '{stop_when}'.")
        if int(every) < 1 or step < 0 or not 0 <= smoothing < 1:
            raise ConfigError(
                f"method.induction needs every ≥ 1, step ≥ 0 and 0 ≤ smoothing < 1; got every={every}, step={step}, smoothing={smoothing}."
            )
        self.mode, self.start, self.step, self.every = mode, float(start), float(step), int(every)
        self.threshold, self.smoothing, self.stop_when = float(threshold), float(smoothing), stop_when
        self.max_values = self._caps(max_value)
        self.fixed = float(fixed)
        if isinstance(min_increments, bool) or not isinstance(min_increments, int) or min_increments < 0:
            raise ConfigError(f"method.induction.min_increments must be an integer ≥ 0, got {min_increments!r}.")
        self.min_increments = min_increments
        self.phase: int | None = None
        self._state: dict[str, torch.Tensor] = {}
        self.restart()

    @staticmethod
    def _caps(max_value: float | Mapping[str, float | None] | None) -> dict[int | None, float | None]:
        """λ's cap per phase number, from one cap (for every phase, and before a restart names one) or a mapping from
        phase name to cap (uncapped before a restart names a phase)."""
        def as_cap(value: float | None) -> float | None:
            return None if value is None else float(value)

        if not isinstance(max_value, Mapping):
            return dict.fromkeys([None, *PHASES], as_cap(max_value))
        unknown = sorted(set(map(str, max_value)) - set(PHASES.values()))
        if unknown:
            raise ConfigError(
                f"method.induction.max_value maps phase names to caps; unknown phase {', '.join(unknown)} "
                f"(expected {', '.join(PHASES.values())})."
            )
        return {None: None, **{phase: as_cap(max_value.get(name)) for phase, name in PHASES.items()}}

    @property
    def max_value(self) -> float | None:
        """λ's cap in the current phase (``None``: uncapped)."""
        return self.max_values.get(self.phase)

    def _set(self, device: torch.device | None = None, *, value: float, smoothed: float | None, holding: bool,
             count: int, increments: int) -> None:
        device = device if device is not None else (self.weight.device if self._state else torch.device("cpu"))
        full = lambda x: torch.full((), float(x), dtype=torch.float64, device=device)  # noqa: E731  (fill: no copy)
        self._state = {"value": full(value), "smoothed": full(0.0 if smoothed is None else smoothed),
                       "has_smoothed": full(smoothed is not None), "holding": full(holding), "count": full(count),
                       "increments": full(increments)}

    def restart(self, phase: int | None = None) -> None:
        """λ back to ``start`` (0), smoothing and hold state cleared — the start of a training phase."""
        self._set(value=self.fixed if self.mode == "fixed" else self.start, smoothed=None,
                  holding=self.mode == "fixed", count=0, increments=0)
        self.phase = phase

    @property
    def weight(self) -> torch.Tensor:
        """λ (float64, 0-d, on the device of the last update)."""
        return self._state["value"]

    def update(self, loss: torch.Tensor | float) -> torch.Tensor:
        """One step of the rule with the monitored loss ℓ; returns ``weight`` (no host sync)."""
        st = self._state
        loss = torch.as_tensor(loss).detach().to(torch.float64)
        if st["value"].device != loss.device:  # the first update on this device (once per run)
            self._state = st = {k: v.to(loss.device) for k, v in st.items()}
        finite = torch.isfinite(loss)  # a step dropped by nan_guard=skip must not poison the smoothed loss
        count = st["count"] + finite.double()
        blended = torch.where(st["has_smoothed"] > 0, self.smoothing * st["smoothed"] + (1 - self.smoothing) * loss, loss)
        smoothed = torch.where(finite, blended, st["smoothed"])
        has_smoothed = torch.where(finite, torch.ones_like(loss), st["has_smoothed"])
        crossed = (smoothed < self.threshold) if self.stop_when == "below" else (smoothed > self.threshold)
        active = finite & (st["holding"] == 0)
        hold_now = active & (has_smoothed > 0) & crossed & (st["increments"] >= self.min_increments)
        rise = active & ~hold_now & (torch.remainder(count, self.every) == 0)
        value = torch.where(rise, st["value"] + self.step, st["value"])
        if self.max_value is not None:
            value = value.clamp(max=self.max_value)
        self._state = {"value": value, "smoothed": smoothed, "has_smoothed": has_smoothed,
                       "holding": torch.where(hold_now, torch.ones_like(loss), st["holding"]), "count": count,
                       "increments": st["increments"] + rise.double()}
        return self.weight

    # Python views of the state (host syncs)
    @property
    def value(self) -> float:
        return float(self._state["value"])

    @property
    def smoothed(self) -> float | None:
        return float(self._state["smoothed"]) if bool(self._state["has_smoothed"]) else None

    @property
    def holding(self) -> bool:
        return bool(self._state["holding"])

    @property
    def count(self) -> int:
        return int(self._state["count"])

    @property
    def increments(self) -> int:
        return int(self._state["increments"])

    def state_dict(self) -> dict[str, Any]:
        return {"value": self.value, "smoothed": self.smoothed, "holding": self.holding, "count": self.count,
                "increments": self.increments, "phase": self.phase}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        count = int(state["count"])
        # checkpoints from before the guard: one increment per `every` updates until the hold
        self._set(value=float(state["value"]), smoothed=None if state["smoothed"] is None else float(state["smoothed"]),
                  holding=bool(state["holding"]), count=count, increments=int(state.get("increments", count // self.every)))
        self.phase = None if state["phase"] is None else int(state["phase"])


class SAT(GANModule):
    """Show, Attend and Translate. See the module docstring for the mapping to the paper.

    Args (beyond ``GANModule``'s):
        generator, attention, discriminator: ``_target_`` configs of G0, A (``nets.sat``) and D (``nets.aggan``).
        pretrained: ImageNet VGG-19 weights (from the torch cache, never downloaded) for A's encoder and F;
            False trains with random VGG features — allowed only when said explicitly; warned and logged
            (``train/vgg_pretrained``).
        use_attention: False = G0 alone throughout (the paper's setting for maps and digits).
        regularizer: ℓ_reg's distance d — ``perceptual`` (Eq. 4), ``l1`` or ``l2`` (pixel).
        perceptual_layers / perceptual_weights: the "first three layers" of VGG-19 and w_l = 1/32, 1/16, 1/8.
            The paper does not name the layers; relu1_1, relu2_1, relu3_1 (one per block, the layers these
            weights go with in pix2pixHD's VGG loss) **[inferred]**.
        phases: ``{g0: iterations, attention: iterations}``; the joint phase is the rest of training.
        joint_lr_scale: the joint phase's "smaller learning rate" as a fraction of lr **[inferred: 0.1]**
            (``optim.lr_joint`` overrides it).
        d_lr_scales: D's lr multiplier in phases 1, 2 and 3 (on top of the per-phase decay). The paper gives one
            lr for all networks and says only that the two branches are "jointly fine-tuned with a smaller learning
            rate": (1, 1, 1), D at its own lr throughout, by default **[inferred]**.
        induction: ``AdaptiveWeightInduction`` arguments plus ``monitor`` (discriminator | generator) and
            ``restart_phases`` (phases, by number 1–3, at whose start λ restarts and in which it is induced; in the
            other phases λ holds its last value: Sec. 2 repeats the induction "for G0 and G_attn" and keeps λ
            constant afterwards, so the joint phase 3 keeps phase 2's λ).
        gan_mode: ``vanilla`` (Eqs. 2–3) | ``lsgan`` | ``wgan`` (+ ``lambda_gp``) | ``hinge``.
        pool_size: history of 50 generated images for D (Shrivastava et al.).
        mask_sparsity: weight of an ℓ1 prior on A(x) (``losses.mask_sparsity``, mean of the map) added to the
            generator loss in phases 2 and 3. Not in the paper (Eq. 1 has no mask term: 0 there) **[inferred]**;
            the CPU recipe sets it because a G0 that leaves the input untouched gives A no reason to stay off.
        frozen_g0_norm: which statistics G0's BatchNorm uses while G0 is frozen in phase 2: ``running`` (eval
            mode) or ``batch`` (train mode, as in phase 1, so D sees the same G0 it saw there; G0's weights stay
            fixed, its running statistics keep tracking the batches) **[inferred]**.
    """

    supported_views = ("two_domain",)

    def __init__(
        self,
        generator: dict,
        attention: dict,
        discriminator: dict,
        pretrained: bool = True,
        use_attention: bool = True,
        regularizer: str = "perceptual",
        perceptual_layers: tuple[str, ...] = ("relu1_1", "relu2_1", "relu3_1"),
        perceptual_weights: tuple[float, ...] = (1 / 32, 1 / 16, 1 / 8),
        phases: dict | None = None,
        joint_lr_scale: float = 0.1,
        d_lr_scales: tuple[float, float, float] = (1.0, 1.0, 1.0),
        induction: dict | None = None,
        gan_mode: str = "vanilla",
        lambda_gp: float = 10.0,
        pool_size: int = 50,
        mask_sparsity: float = 0.0,
        frozen_g0_norm: str = "running",
        **common: Any,
    ) -> None:
        super().__init__(**common)
        self.save_hyperparameters()
        if frozen_g0_norm not in ("running", "batch"):
            raise ConfigError(f"method.frozen_g0_norm must be running or batch, got '{frozen_g0_norm}'.")
        self.d_lr_scales = [float(v) for v in d_lr_scales]
        if len(self.d_lr_scales) != 3 or any(v < 0 for v in self.d_lr_scales):
            raise ConfigError(f"method.d_lr_scales needs three multipliers ≥ 0 (phases 1, 2, 3), got {list(d_lr_scales)}.")
        if mask_sparsity < 0:
            raise ConfigError(f"method.mask_sparsity is a loss weight and must be ≥ 0, got {mask_sparsity}.")
        if regularizer not in REGULARIZERS:
            raise ConfigError(f"method.regularizer must be one of {', '.join(REGULARIZERS)}, got '{regularizer}'.")
        if gan_mode not in GAN_MODES:
            raise ConfigError(f"method.gan_mode must be one of {', '.join(GAN_MODES)}, got '{gan_mode}'.")
        if len(perceptual_layers) != len(perceptual_weights):
            raise ConfigError(
                f"method.perceptual_layers ({len(perceptual_layers)}) and method.perceptual_weights ({len(perceptual_weights)}) must have the same length."
            )
        if not joint_lr_scale > 0:
            raise ConfigError(f"method.joint_lr_scale must be positive, got {joint_lr_scale}.")
        domains = self.require_info("domain_names", "named domains")
        if len(domains) != 2:
            raise ConfigError(f"{self.method_name} translates between exactly 2 domains, got {domains}.")
        direction = self.data_info.get("direction", "a2b")
        self.source_domain = 0 if direction == "a2b" else 1
        self.target_domain = 1 - self.source_domain

        phases = dict(phases or {})
        self.phase_lengths = {k: int(phases.get(k, 0)) for k in ("g0", "attention")}
        if any(v < 0 for v in self.phase_lengths.values()):
            raise ConfigError(f"method.phases.g0 and method.phases.attention must be ≥ 0 iterations, got {phases}.")

        induction = dict(induction or {})
        self.monitor = induction.pop("monitor", "discriminator")
        if self.monitor not in ("discriminator", "generator"):
            raise ConfigError(f"method.induction.monitor must be discriminator or generator, got '{self.monitor}'.")
        self.restart_phases = {int(p) for p in induction.pop("restart_phases", (1, 2))}
        self.induction = AdaptiveWeightInduction(**induction)

        uses_vgg = use_attention or regularizer == "perceptual"
        self.vgg_pretrained = bool(pretrained)
        if uses_vgg and not self.vgg_pretrained:
            message = (
                f"method={self.method_name} runs with pretrained=false: its VGG-19 layers (attention encoder, perceptual "
                "features F) are randomly initialised, not ImageNet's as in the paper."
            )
            warnings.warn(message, UserWarning, stacklevel=2)
            log.warning(message)

        # networks: G0, A (Sec. 2 "The model architectures"), D, and the frozen F of Eq. 4
        self.G0 = self.build_net(dict(generator))
        self.A = self.build_net(dict(attention), pretrained=self.vgg_pretrained) if use_attention else None
        self.D = self.build_net(dict(discriminator))
        self.feature_net = (
            VGG19Features(list(perceptual_layers), pretrained=self.vgg_pretrained, frozen=True)
            if regularizer == "perceptual"
            else None
        )
        self.perceptual_weights = [float(w) for w in perceptual_weights]
        self.register_pool("fake", pool_size)
        self.build_ema(["G0", "A"] if use_attention else ["G0"])
        if "lr_joint" not in self.optim_cfg:
            self.optim_cfg = {**self.optim_cfg, "lr_joint": float(self.optim_cfg["lr"]) * joint_lr_scale}
        self.per_phase = bool((self.schedule_cfg or {}).get("per_phase", False))
        if self.per_phase and self.uses_epochs():
            raise ConfigError("method.schedule.per_phase decays within each phase's iterations; give "
                              "method.schedule.decay_start_fraction (of each phase), not decay_start_epoch.")
        last = self.phase_lengths["g0"] + self.phase_lengths["attention"]
        if use_attention and 0 < self.max_iterations <= last:
            log.info("method=%s: %d iterations end before the joint phase (starts at %d).", self.method_name,
                     self.max_iterations, last)

    # ------------------------------------------------------------------------------------------ optimizers
    def optimizer_groups(self) -> dict[str, Any]:
        """G0 (phase 1), A (phase 2), joint = G0 + A at the smaller lr (phase 3), D. The VGG feature net F (and a
        frozen attention encoder) are in none."""
        groups: dict[str, Any] = {"G0": list(self.G0.parameters())}
        if self.A is not None:
            attention = [p for p in self.A.parameters() if p.requires_grad]
            groups["A"] = attention
            groups["joint"] = list(self.G0.parameters()) + attention
        groups["D"] = list(self.D.parameters())
        return groups

    def configure_optimizers(self):
        """The base optimizers; with ``schedule.per_phase`` each one's lr follows :meth:`phase_lr_factor`."""
        optimizers, schedulers = super().configure_optimizers()
        if self.per_phase:
            for name, sched in zip(self._optimizer_names, schedulers):
                sched.lr_lambdas = [lambda _epoch, m=self, n=name: m.phase_lr_factor(n)]
        return optimizers, schedulers

    # ---------------------------------------------------------------------------------------- schedules
    def phase_span(self, phase: int) -> tuple[int, int]:
        """[first, end) iterations of ``phase``; without attention phase 1 is the whole run."""
        g0, attention = self.phase_lengths["g0"], self.phase_lengths["attention"]
        if self.A is None:
            return 0, self.max_iterations
        return {1: (0, g0), 2: (g0, g0 + attention), 3: (g0 + attention, self.max_iterations)}[phase]

    def phase_lr_factor(self, name: str) -> float:
        """The lr multiplier of optimizer ``name`` at the current iteration, per phase (Sec. 3: constant, then
        linear decay to 0 over the phase's last ``1 − decay_start_fraction``): G0, A and joint by their own
        phase, D by the phase being trained. With ``per_phase`` off: the base's one schedule over the run."""
        trained = self.phase_at(self.iteration)
        scale = self.d_lr_scales[trained - 1] if name == "D" else 1.0
        if not self.per_phase:
            return scale * self.lr_factor()
        first, end = self.phase_span(OPTIMIZER_PHASE.get(name) or trained)
        fraction = (self.schedule_cfg or {}).get("decay_start_fraction")
        if fraction is None:
            return scale
        return scale * linear_decay_from(self.iteration, first + float(fraction) * (end - first), end)

    def phase_at(self, iteration: int) -> int:
        """Training phase (1 = G0, 2 = attention, 3 = joint) of a 0-based iteration."""
        if self.A is None or iteration < self.phase_lengths["g0"]:
            return 1
        if iteration < self.phase_lengths["g0"] + self.phase_lengths["attention"]:
            return 2
        return 3

    @property
    def phase(self) -> int:
        """The phase of the last trained iteration (what ``translate`` composes with)."""
        return self.phase_at(max(self.iteration - 1, 0))

    def _enter_phase(self, phase: int) -> None:
        if self.induction.phase == phase:
            return
        if phase in self.restart_phases:
            self.induction.restart(phase)
        else:
            self.induction.phase = phase

    # ----------------------------------------------------------------------------------------- generator
    def generate(self, x: torch.Tensor, phase: int, ema: bool = False) -> SATOutput:
        """G(x) as trained in ``phase``: phase 1 G0(x) (A ≡ 1); phase 2 the composite with G0 fixed (no graph
        through G0); phase 3 the composite with gradients to both."""
        g0 = self.inference_net("G0") if ema else self.G0
        if phase == 1 or self.A is None:
            content = g0(x)
            return SATOutput(content, torch.ones_like(x[:, :1]), content)
        a = self.inference_net("A") if ema else self.A
        if phase == 2:
            with torch.no_grad():
                content = g0(x)
        else:
            content = g0(x)
        mask = a(x)
        return SATOutput(compose(content, mask, x), mask, content)

    def self_regularization(self, x: torch.Tensor, translated: torch.Tensor) -> torch.Tensor:
        """ℓ_reg(G(x), x): Eq. 4 with the frozen F, or the l1/l2 pixel distance."""
        hp = self.hparams
        if hp.regularizer == "perceptual":
            with torch.no_grad():
                source = self.feature_net(x)
            return perceptual_self_regularization(source, self.feature_net(translated), self.perceptual_weights)
        if hp.regularizer == "l1":
            return F.l1_loss(translated, x)
        return F.mse_loss(translated, x)

    # ----------------------------------------------------------------------------------------- iteration
    def train_iteration(self, batch: dict) -> dict[str, torch.Tensor]:
        hp = self.hparams
        phase = self.phase_at(self.iteration)
        self._enter_phase(phase)
        # phase 2: G0 frozen; its BatchNorm uses its running statistics, or the batch's (frozen_g0_norm)
        self.G0.train(self.training and (phase != 2 or self.hparams.frozen_g0_norm == "batch"))
        lam = self.induction.weight  # a device tensor: λ of this step, set by the last update
        x, y = batch["image"], batch["ref"]  # x ∈ X (source domain), y ∈ Y (unpaired target-domain image)
        saved: dict[str, torch.Tensor] = {}

        def generator_step():  # Eq. 1
            out = self.generate(x, phase)
            parts = {"adv": generator_adv_loss(self.D(out.image).src, hp.gan_mode), "reg": self.self_regularization(x, out.image)}
            saved["fake"] = out.image.detach()
            total = parts["adv"] + lam.to(parts["reg"].dtype) * parts["reg"]
            if hp.mask_sparsity > 0 and phase >= 2:  # not in the paper: a prior on A (phase ≥ 2 implies an A)
                parts["mask_sparsity"] = mask_sparsity(out.mask)
                total = total + hp.mask_sparsity * parts["mask_sparsity"]
            return total, parts

        opt = PHASE_OPTIMIZER[phase]
        logs = {k.replace(f"loss/{opt}/", "loss/G/"): v for k, v in self.optimize(opt, generator_step).items()}

        fake = self.pools["fake"].query(saved["fake"])  # the image history (Python bookkeeping: before the step)

        def discriminator_step():  # Eq. 2, on the image history
            parts = {"adv": discriminator_adv_loss(self.D(y).src, self.D(fake).src, hp.gan_mode)}
            return parts["adv"], parts

        penalty = self.wgan_penalty(lambda t: self.D(t).src, lambda: (y, fake), hp.gan_mode == "wgan")
        logs.update(self.optimize("D", discriminator_step, penalty))
        monitored = logs["loss/D/adv"] if self.monitor == "discriminator" else logs["loss/G/adv"]
        if phase in self.restart_phases:  # the induction runs for G0 and for G_attn; the joint phase keeps λ
            self.induction.update(monitored)
        logs.update(self.schedule_logs(phase, lam))
        return logs

    def schedule_logs(self, phase: int, lam: torch.Tensor) -> dict[str, torch.Tensor]:
        """What the W&B/CSV charts show every step: phase, the λ used this step, the smoothed monitored loss
        (NaN until the phase's first finite loss), whether λ holds, and whether the VGG features are ImageNet's.
        Device tensors, or CPU tensors of what the host knows (Lightning copies a Python number to the device,
        a host sync on CUDA; a CPU tensor it logs as it is): nothing here is read back."""
        state = self.induction._state
        return {
            "schedule/phase": torch.tensor(float(phase)),
            "schedule/lambda": lam.float(),
            "schedule/lambda_holding": state["holding"].float(),
            "vgg_pretrained": torch.tensor(float(self.vgg_pretrained)),
            "schedule/adv_smoothed": torch.where(state["has_smoothed"] > 0, state["smoothed"],
                                                 torch.full_like(state["smoothed"], float("nan"))).float(),
        }

    # ----------------------------------------------------------------------------------------- translate
    @torch.no_grad()
    def translate(self, images: torch.Tensor, target: Any = None, **kwargs: Any) -> dict[str, torch.Tensor]:
        """images B×3×H×W in [−1, 1] from the source domain; target: the target domain index (or B of them; SAT
        learns one direction). Returns ``image`` G(x), ``mask`` A(x) (B×1×H×W; all ones while only G0 has been
        trained: A ≡ 1 in phase 1) and ``content`` G0(x); without attention only ``image``."""
        if target is not None:
            wanted = torch.as_tensor(target).view(-1)
            if bool((wanted != self.target_domain).any()):
                names = self.data_info["domain_names"]
                raise ConfigError(
                    f"method={self.method_name} learns one direction, {names[self.source_domain]} → {names[self.target_domain]}; "
                    f"it cannot translate to {names[int(wanted[wanted != self.target_domain][0])]} (train with data.direction flipped for that)."
                )
        out = self.generate(images, self.phase, ema=True)
        if self.A is None:
            return {"image": out.image}
        return {"image": out.image, "mask": out.mask, "content": out.content}

    # ---------------------------------------------------------------------------------------- checkpoints
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        super().on_save_checkpoint(checkpoint)
        checkpoint["sat"] = {"induction": self.induction.state_dict(), "phase": self.phase}

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        super().on_load_checkpoint(checkpoint)
        state = checkpoint.get("sat")
        if state is not None:
            self.induction.load_state_dict(state["induction"])
