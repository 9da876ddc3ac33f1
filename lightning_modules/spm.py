"""SPM — attribute-driven spontaneous motion (Wu et al.), its two-stage LR→HR form (Sec. 3.3), and StarGAN
(Choi et al.) as its configuration with both SPM modules switched off.

Paper ↔ code names: G = ``G`` (``nets.spm.SPMGenerator``: SPM encoder, motion head, mask head M, refinement R);
D_d with Dc on top = ``D`` (StarGAN's discriminator; in the HR stage it is D_l); Dw = ``Dw``; the HR stage's
T_w, T_r, T_m = ``T.T_w``, ``T.T_r``, ``T.T_m`` (``nets.spm.HighResolutionSPM``) and D_h = ``D_h``. Symbols:
I_s = ``x``, c_s/c_t = ``c_src``/``c_tgt`` (one-hot), w = ``flow``, m = ``mask``, r = ``residual``, I_d =
``deformed``, I_t = ``image``; λcr = ``lambda_cls``, λcw, λm = ``lambda_mask``, λadv, λrec, λw.

Losses (one iteration = one batch; D every iteration, G every ``n_critic``-th, as the released configs):
- D (Eq. 10): ``λadv·adv_D + λgp·GP + λcr·L_dcr``, L_dcr = cls(c_s, Dc(I_s)) (Eq. 2).
- G (Eq. 9): ``λcr·L_gcr + λcw·L_cw + λm·L_m + λadv·adv_G + λrec·L_rec`` with L_gcr = cls(c_t, Dc(I_t)) (Eq. 3),
  L_cw = cls(c_t, Dw(w, I_s)) (Eq. 4), L_m = mean|m| (Eq. 5), L_rec = |I_s − G(G(I_s, c_t), c_s)|₁ (Eq. 8).
- cls: ``method.classification`` (``lightning_modules.spm_labels``): one sigmoid logit with BCE for two domains
  (the authors' ``c_dim: 1``), softmax CE for several, multi-label BCE for attribute vectors (StarGAN's CelebA).
- targets: ``method.target_sampling`` — ``other`` (the datamodule's, another domain) or ``permutation``
  (StarGAN's batch permutation; ``method=stargan``'s default).
- adversarial: WGAN-GP as in the released configs (``gan_mode=wgan``, λgp 10); ``gan_mode=vanilla`` is Eq. 7.
- Dw is not released; it is trained with G on L_cw (cooperatively, in G's optimizer) **[inferred]**.

Switches (Table 1): ``motion`` (off = "No M": no motion head, no Dw, I_d = I_s), ``refinement`` (off = "No R":
no R, no mask, I_t = I_d). Both off leaves SPM's encoder with a plain tanh image head — StarGAN's generator —
and with λcw, λm unused the objective is StarGAN's (adv + λcls·cls + λrec·rec, WGAN-GP, n_critic 5). That is
``method=stargan``. We build StarGAN from SPM rather than from AGGAN's multi-domain form because SPM already
*is* StarGAN's design on every axis StarGAN has — its discriminator (Conv4 s2, LeakyReLU 0.01, patch src head,
map-sized cls head), its encoder and up-sampling layers, WGAN-GP with n_critic, λcls/λrec/λgp — whereas
AGGAN's form has another discriminator (BatchNorm, global pooling), no critic schedule, and an image pool.

Views: ``multi_domain`` (RaFD expressions, the embedded faces), ``two_domain`` (CelebA non-x ↔ x, shapes): the
first half of the batch comes from ``image`` and the second from the unpaired ``ref`` — and ``multi_attribute``
(StarGAN's own CelebA model: multi-hot ``attrs``, targets ``target_attrs`` or permuted).

HR stage (``hr_stage=true``, ``method=spm_hr``): the input I_h is down-sampled to ``lr_size``, the LR generator
(still trained) gives w_l, r_l, m_l, and ``T`` builds the HR output from their bilinear up-samplings.
D_h judges real vs generated HR images; D_l (= ``D``) real LR vs generated LR and down-sampled generated HR.
Every per-scale term (adversarial, classification, mask, cycle) is ``HR + λlow·LR`` (λlow 0.4 at 256, 0.5 at 512:
the authors' configs). The LR weights (G, D, Dw) come from ``lr_ckpt_path`` (a ``method=spm`` checkpoint at
``lr_size``), read when training starts (not at construction, so a finished HR checkpoint evaluates without the LR
file, and a resumed HR run keeps its own weights). ``lr_ckpt_path: null`` trains both stages jointly from scratch,
with a warning. ``mid_size`` makes the 128 → 256 → 512 cascade (``lightning_modules.spm_stages``): the 256 stage
(G, T, D_h) from ``mid_ckpt_path``, frozen; ``T2`` and ``D_h2`` train at 512, D_h judging the 256 scale.

translate() returns ``image`` (I_t), ``deformed`` (I_d), ``flow`` (w, B×2×H×W in fractions of the image extent,
see ``nets.spm``), ``mask`` (m), ``residual`` (r) — those the configuration has; the HR stage adds
``low_image``, ``low_deformed``, ``low_flow`` (the stage below). A B×K (or 1×K) target combines motion bases
(Fig. 7): the fields of the K targets are summed (optionally weighted) and the input is warped once; across
separately trained models, ``lightning_modules.spm_combine``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from lightning_modules.base import GANModule
from lightning_modules.losses import (
    cycle_loss,
    discriminator_adv_loss,
    flow_smoothness,
    generator_adv_loss,
    gradient_penalty,
    interpolates,
    mask_sparsity,
    penalty_at,
)
from lightning_modules.spm_labels import LabelCodec, check_target_sampling, permuted, resolve_classification
from lightning_modules.spm_stages import HR_METHOD, LR_METHOD, load_stage
from nets.spm import SPMOutput, flow_to_pixels, resize, resolution_adaptive_layers
from suite.errors import ConfigError

__all__ = ["SPM", "LR_METHOD", "HR_METHOD"]


class SPM(GANModule):
    """SPM (LR, 256 or 512 stage) and StarGAN. See the module docstring for the mapping to the paper.

    Args (beyond ``GANModule``'s):
        generator, discriminator, motion_classifier, enhancer: ``_target_`` configs (``nets.spm``); the
            enhancer (T_w, T_r, T_m) is used only in the HR stages (``enhancer_top_kernel`` for the 512 stage's).
        motion: the spontaneous motion module (Table 1 "No M" when off).
        refinement: R and the attention mask (Table 1 "No R" when off).
        classification: ``auto`` | ``sigmoid`` | ``softmax`` | ``multilabel`` (``spm_labels``).
        target_sampling: ``other`` | ``permutation`` (``spm_labels``).
        lambda_w: λw, bound of the motion field (0.1 in code; 0.1–0.2 in the paper).
        lambda_cls 1 (λcr), lambda_cw 0.5, lambda_mask 1 (λm), lambda_adv 1, lambda_rec 10 (Sec. 3.4);
            lambda_gp 10 (WGAN-GP, only with gan_mode=wgan).
        lambda_flow_tv: weight of a motion-field smoothness term (``losses.flow_smoothness``, pixels); not in
            the paper **[inferred option]**, 0 (off) by default; the CPU recipe needs it against scrambling fields.
        gan_mode: ``wgan`` (released configs) | ``vanilla`` (Eq. 7) | ``lsgan`` | ``hinge``.
        n_critic: G is updated on every n_critic-th iteration (first included), D on every one.
        joint_critic_pass: the D step scores real, fake and WGAN-GP interpolate images in one pass per
            discriminator (``torch.cat``) instead of three. The same losses and gradients — StarGAN's D has no
            batch statistics, so each image's output depends on that image alone — in fewer, larger convolutions
            (1.3× faster D step on 2 CPU cores at 64² × 16; docs/scaling.md), at +15 % FLOP per iteration: the
            penalty's input gradient runs over all 3B images (``tests/suite/test_flops.py``). Off under ``speed.compile=steps``,
            whose compiled closure cannot hold the penalty's pass (``GANModule.optimize``).
        motion_classifier_label: Dw also reads the tiled source label **[inferred]** (see ``nets.spm``).
        hr_stage, lr_size, lr_ckpt_path, lambda_low: the HR stage (module docstring).
        mid_size, mid_ckpt_path, enhancer_top_kernel: the 512 stage of the cascade (``spm_stages``).
        freeze_previous: the stages below are not trained (always in the cascade).
    """

    supported_views = ("two_domain", "multi_domain", "multi_attribute")
    nets_package = "nets.spm"

    def __init__(
        self,
        generator: dict,
        discriminator: dict,
        motion_classifier: dict,
        enhancer: dict | None = None,
        motion: bool = True,
        refinement: bool = True,
        classification: str = "auto",
        target_sampling: str = "other",
        lambda_w: float = 0.1,
        lambda_cls: float = 1.0,
        lambda_cw: float = 0.5,
        lambda_mask: float = 1.0,
        lambda_flow_tv: float = 0.0,
        lambda_adv: float = 1.0,
        lambda_rec: float = 10.0,
        lambda_gp: float = 10.0,
        gan_mode: str = "wgan",
        n_critic: int = 5,
        joint_critic_pass: bool = True,
        motion_classifier_label: bool = False,
        hr_stage: bool = False,
        lr_size: int | None = None,
        lr_ckpt_path: str | None = None,
        lambda_low: float = 0.5,
        mid_size: int | None = None,
        mid_ckpt_path: str | None = None,
        enhancer_top_kernel: int = 7,
        freeze_previous: bool = False,
        **common: Any,
    ) -> None:
        super().__init__(**common)
        self.save_hyperparameters()
        self.check_n_critic(n_critic)
        if lambda_w <= 0:
            raise ConfigError(f"method.lambda_w (λw, the motion bound) must be positive, got {lambda_w}.")
        self.target_sampling = check_target_sampling(target_sampling)
        form = resolve_classification(classification, self.view)
        if self.view == "multi_attribute":
            names = self.require_info("attr_names", "named attributes")
        else:
            names = self.require_info("domain_names", "named domains")
            if self.view == "two_domain" and len(names) != 2:
                raise ConfigError(f"the two_domain form of {self.method_name} needs exactly 2 domains, got {names}.")
        self.num_domains = len(names)
        self.codec = LabelCodec(form, self.num_domains)
        self.image_size = int(self.require_info("image_size", "the image size"))
        self.hr_stage = bool(hr_stage)
        self.use_motion, self.use_refinement = bool(motion), bool(refinement)
        self.lr_size, self.mid_size = self._check_hr(lr_size, mid_size) if self.hr_stage else (self.image_size, None)
        self.cascade = self.mid_size is not None
        self.freeze_previous = bool(freeze_previous) or self.cascade
        if self.cascade and not freeze_previous:
            raise ConfigError("the 512 stage (method.mid_size set) trains on the frozen 256 stage; set "
                              "method.freeze_previous=true (or drop method.mid_size for one HR stage).")
        dim = self.codec.dim
        self.G = self.build_named_net("generator", generator, num_domains=dim, motion=motion, refinement=refinement,
                                      lambda_w=lambda_w)
        self.D = self.build_named_net("discriminator", discriminator, image_size=self.lr_size, num_classes=dim)
        if self.use_motion:
            self.Dw = self.build_named_net("motion_classifier", motion_classifier, image_size=self.lr_size, num_classes=dim,
                                           label_channels=dim if motion_classifier_label else 0)
        if self.hr_stage:
            first = self.mid_size or self.image_size
            self.T = self.build_named_net("enhancer", enhancer or {}, motion=motion, refinement=refinement, lambda_w=lambda_w)
            self.D_h = self.build_named_net("discriminator", discriminator, image_size=first, num_classes=dim,
                                            n_layers=resolution_adaptive_layers(self.D.n_layers, self.lr_size, first))
        if self.cascade:
            self.T2 = self.build_named_net("enhancer", {**(enhancer or {}), "kernel": enhancer_top_kernel}, motion=motion,
                                           refinement=refinement, lambda_w=lambda_w)
            self.D_h2 = self.build_named_net("discriminator", discriminator, image_size=self.image_size, num_classes=dim,
                                             n_layers=resolution_adaptive_layers(self.D.n_layers, self.lr_size, self.image_size))
        for name in self.frozen_nets():
            getattr(self, name).requires_grad_(False)
        self.build_ema(["G", *self.enhancers()])

    # ----------------------------------------------------------------------------------------- construction
    def _check_hr(self, lr_size: int | None, mid_size: int | None) -> tuple[int, int | None]:
        if not (self.hparams.motion or self.hparams.refinement):
            raise ConfigError("the HR stage enhances SPM's motion field and refinement; with method.motion=false and "
                              "method.refinement=false (StarGAN) there is nothing to enhance.")
        if not isinstance(lr_size, int) or lr_size < 8:
            raise ConfigError(f"method.lr_size (the LR stage's image size) must be an integer >= 8, got {lr_size!r}.")
        for low, high, what in ((lr_size, mid_size or self.image_size, "lr_size"), (mid_size, self.image_size, "mid_size")):
            if low is None:
                continue
            ratio = high // low if isinstance(low, int) and low > 0 else 0
            if high <= low or high % low or ratio & (ratio - 1):
                raise ConfigError(
                    f"the HR stage needs each size = method.{what} × a power of two (e.g. 128 → 256 → 512, 32 → 64); "
                    f"got {what} {low} below {high} (data.image_size {self.image_size})."
                )
        return lr_size, mid_size

    def enhancers(self) -> list[str]:
        """The enhancement stages of this run, bottom up (T: 256; T2: 512)."""
        return ["T", "T2"][: (2 if self.cascade else 1)] if self.hr_stage else []

    def frozen_nets(self) -> list[str]:
        """Nets of the stages below that this run does not train (``freeze_previous``)."""
        if not (self.hr_stage and self.freeze_previous):
            return []
        below = ["G", *(["Dw"] if self.use_motion else []), *self.enhancers()[:-1]]
        return below + (["D"] if self.cascade else [])

    # ------------------------------------------------------------------------------------------ optimizers
    def optimizer_groups(self) -> dict[str, Any]:
        frozen = set(self.frozen_nets())
        gens = [n for n in ("G", *(["Dw"] if self.use_motion else []), *self.enhancers()) if n not in frozen]
        discs = [n for n in ("D", "D_h", "D_h2") if hasattr(self, n) and n not in frozen]
        # Dw is trained with G on L_cw [inferred]
        return {"G": [p for n in gens for p in getattr(self, n).parameters()],
                "D": [p for n in discs for p in getattr(self, n).parameters()]}

    # ------------------------------------------------------------------------------------------- forward
    def generate(self, x: torch.Tensor, c_tgt: torch.Tensor, inference: bool = False) -> SPMOutput:
        """G(I_s, c_t); in the HR stages the LR generator runs on the down-sampled input and each T lifts the
        output of the stage below (frozen stages: parameters without gradients, inputs still differentiable)."""
        net = self.inference_net if inference else (lambda name: getattr(self, name))
        if not self.hr_stage:
            return net("G")(x, c_tgt)
        names = self.enhancers()
        sizes = [self.mid_size] if self.cascade else []
        out = net("G")(resize(x, self.lr_size), c_tgt)
        for name, size in zip(names[:-1], sizes, strict=True):
            out = net(name)(resize(x, size), out)
        return net(names[-1])(x, out)

    def scales(self, x: torch.Tensor, out: SPMOutput) -> list[tuple[str, nn.Module, torch.Tensor, torch.Tensor, float]]:
        """(suffix, discriminator, real, fake, weight) for each resolution the discriminators judge: the LR stage
        has one; an HR stage its own D on its size and the stage below's D on generated images of the size below
        and down-sampled generated ones (Sec. 3.3), weighted λlow."""
        if not self.hr_stage:
            return [("", self.D, x, out.image, 1.0)]
        top, below = (self.D_h2, self.D_h) if self.cascade else (self.D_h, self.D)
        size = out.low.image.shape[-1]
        fake_low = torch.cat([out.low.image, resize(out.image, size)], 0)
        return [("", top, x, out.image, 1.0), ("_low", below, resize(x, size), fake_low, self.hparams.lambda_low)]

    def _real_batch(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(I_s, source labels, target labels): indices, or attribute vectors in ``multi_attribute``; two_domain:
        first half ``image``, second half ``ref``. Targets by ``target_sampling``."""
        if self.view == "multi_attribute":
            x, src = batch["image"], batch["attrs"].float()
            tgt = permuted(src) if self.target_sampling == "permutation" else batch["target_attrs"].float()
            return x, src, tgt
        x, src, tgt = batch["image"], batch["domain"], batch["target"]
        if self.view == "two_domain" and batch.get("ref") is not None and x.shape[0] > 1:
            k = (x.shape[0] + 1) // 2
            x = torch.cat([x[:k], batch["ref"][k:]], 0)
            src = torch.cat([src[:k], batch["ref_domain"][k:]], 0)
            tgt = 1 - src
        if self.target_sampling == "permutation":
            tgt = permuted(src)
        return x, src.long(), tgt.long()

    # ----------------------------------------------------------------------------------------- iteration
    def train_iteration(self, batch: dict) -> dict[str, torch.Tensor]:
        hp = self.hparams
        x, src, tgt = self._real_batch(batch)
        c_src, c_tgt = self.codec.encode(src, x.dtype), self.codec.encode(tgt, x.dtype)
        cls_loss = self.codec.loss

        # On a G-step iteration the generator runs once, with gradients: G does not change during the D step, so
        # the D step's (detached) fakes are the very images the G step scores — no second forward pass.
        g_step = self.iteration % hp.n_critic == 0
        out_g = self.generate(x, c_tgt) if g_step else None

        wgan_gp = hp.gan_mode == "wgan" and hp.lambda_gp > 0
        joint = hp.joint_critic_pass and self.compile_steps is None

        def discriminator_step():
            if out_g is not None:
                out = out_g
            else:
                with torch.no_grad():
                    out = self.generate(x, c_tgt)
            parts: dict[str, torch.Tensor] = {}
            total = x.new_zeros(())
            judged.clear()
            for suffix, disc, real, fake, weight in self.scales(x, out):
                fake = fake.detach()
                n_fakes = fake.shape[0] // real.shape[0]
                if joint:  # one pass over [real; fake; x̂] (joint_critic_pass)
                    mixed = interpolates(real.repeat(n_fakes, 1, 1, 1), fake) if wgan_gp else None
                    both = disc(torch.cat([real, fake, *([mixed] if wgan_gp else [])]))
                    real_src, fake_src, mixed_src = both.src.split([real.shape[0], fake.shape[0], fake.shape[0] if wgan_gp else 0])
                    real_cls = both.cls[: real.shape[0]] if both.cls is not None else None
                    judged.append((suffix, weight, mixed_src, mixed))
                else:
                    real_out = disc(real)
                    real_src, real_cls, fake_src = real_out.src, real_out.cls, disc(fake).src
                    judged.append((suffix, weight, real.repeat(n_fakes, 1, 1, 1), fake, disc))
                parts[f"adv{suffix}"] = discriminator_adv_loss(real_src, fake_src, hp.gan_mode)  # Eq. 7/WGAN
                parts[f"cls{suffix}"] = cls_loss(real_cls, src)  # Eq. 2
                total = total + weight * (hp.lambda_adv * parts[f"adv{suffix}"] + hp.lambda_cls * parts[f"cls{suffix}"])  # Eq. 10
            return total, parts

        def gradient_penalties():  # WGAN-GP per judged scale, weighted as Eq. 10 weighs its scale (eager: optimize)
            parts, total = {}, x.new_zeros(())
            for suffix, weight, *points in judged:
                if joint:  # points: D(x̂) from the step's pass, and x̂
                    parts[f"gp{suffix}"] = penalty_at(*points)
                else:  # points: real, fake, D — the critic's own pass over x̂, here (eagerly)
                    real, fake, disc = points
                    parts[f"gp{suffix}"] = gradient_penalty(lambda t, d=disc: d(t).src, real, fake)
                total = total + weight * (hp.lambda_gp * parts[f"gp{suffix}"])
            return total, parts

        judged: list[tuple] = []  # (suffix, weight, D(x̂), x̂) or (suffix, weight, real, fake, D): the penalties' points
        logs = self.optimize("D", discriminator_step, gradient_penalties if wgan_gp else None)
        if not g_step:
            return logs

        def generator_step():
            out = out_g
            rec = self.generate(out.image, c_src)
            parts: dict[str, torch.Tensor] = {}
            total = x.new_zeros(())
            for suffix, disc, _real, fake, weight in self.scales(x, out):
                fake_out = disc(fake)
                parts[f"adv{suffix}"] = generator_adv_loss(fake_out.src, hp.gan_mode)
                parts[f"cls{suffix}"] = cls_loss(fake_out.cls, torch.cat([tgt] * (fake.shape[0] // x.shape[0])))  # Eq. 3
                total = total + weight * (hp.lambda_adv * parts[f"adv{suffix}"] + hp.lambda_cls * parts[f"cls{suffix}"])
            for suffix, o, r, real, weight in self._pyramid(x, out, rec):
                parts[f"rec{suffix}"] = cycle_loss(r.image, real)  # Eq. 8
                total = total + weight * hp.lambda_rec * parts[f"rec{suffix}"]
                if o.mask is not None:
                    parts[f"mask{suffix}"] = mask_sparsity(o.mask)  # Eq. 5
                    total = total + weight * hp.lambda_mask * parts[f"mask{suffix}"]
                if o.flow is not None and hp.lambda_flow_tv > 0:
                    parts[f"flow_tv{suffix}"] = flow_smoothness(flow_to_pixels(o.flow))
                    total = total + weight * hp.lambda_flow_tv * parts[f"flow_tv{suffix}"]
            if self.use_motion and "Dw" not in self.frozen_nets():
                low = out.low if self.hr_stage else out
                logits = self.Dw(low.flow, resize(x, self.lr_size), c_src if hp.motion_classifier_label else None)
                parts["cw"] = cls_loss(logits, tgt)  # Eq. 4
                total = total + hp.lambda_cw * parts["cw"]
            return total, parts

        logs.update(self.optimize("G", generator_step))
        return logs

    def _pyramid(self, x: torch.Tensor, out: SPMOutput, rec: SPMOutput) -> list[tuple[str, SPMOutput, SPMOutput, torch.Tensor, float]]:
        """(suffix, output, reconstruction, real, weight) per trained resolution for the mask and cycle terms."""
        if not self.hr_stage or self.freeze_previous:
            return [("", out, rec, x, 1.0)]
        return [("", out, rec, x, 1.0), ("_low", out.low, rec.low, resize(x, self.lr_size), self.hparams.lambda_low)]

    # ----------------------------------------------------------------------------------------- stage start
    def on_fit_start(self) -> None:
        super().on_fit_start()
        if self.hr_stage and self.iteration == 0 and getattr(self.trainer, "ckpt_path", None) is None:
            if self.cascade:
                self.load_previous_stage(self.hparams.mid_ckpt_path)
            else:
                self.load_low_resolution(self.hparams.lr_ckpt_path)

    def load_low_resolution(self, path: str | None) -> None:
        """Start the 256 stage from a ``method=spm`` checkpoint trained at ``lr_size``: its G, D (→ D_l) and Dw
        (and its EMA generator when both runs keep one). ``None``: keep the fresh LR nets, with a warning."""
        nets = {"G": self.G, "D": self.D, **({"Dw": self.Dw} if self.use_motion else {})}
        load_stage(self, path, method=LR_METHOD, size=self.lr_size, size_key="lr_size", nets=nets, ema=("G",),
                   what="the LR generator, D_l and Dw")

    def load_previous_stage(self, path: str | None) -> None:
        """Start the 512 stage from a ``method=spm_hr`` checkpoint trained at ``mid_size``: its G, D, Dw, T and D_h
        (and EMA copies of G and T)."""
        nets = {"G": self.G, "D": self.D, **({"Dw": self.Dw} if self.use_motion else {}), "T": self.T, "D_h": self.D_h}
        load_stage(self, path, method=HR_METHOD, size=self.mid_size, size_key="mid_size", nets=nets, ema=("G", "T"),
                   what="the frozen 128 and 256 stages")

    # ----------------------------------------------------------------------------------------- translate
    def sample_target(self, batch: dict) -> Any:
        return batch["target_attrs"] if self.view == "multi_attribute" else batch["target"]

    def encode_target(self, target: Any, batch_size: int, device, dtype) -> torch.Tensor:
        """A target as given to translate() (indices; or A-vectors in ``multi_attribute``) → B×dim labels."""
        target = torch.as_tensor(target, device=device)
        if self.codec.form == "multilabel":
            return self.codec.encode(target.float().view(-1, self.num_domains).expand(batch_size, -1), dtype)
        return self.codec.encode(target.long().view(-1).expand(batch_size), dtype)

    @torch.no_grad()
    def translate(self, images: torch.Tensor, target: Any, weights: Any = None, **kwargs: Any) -> dict[str, torch.Tensor]:
        """images B×3×H×W in [−1, 1] (H = the stage's image size). ``target``: B (or one) domain indices, or B×A
        (or A) attribute vectors in ``multi_attribute``; or B×K / 1×K indices to combine the motion fields of K
        targets (Fig. 7), each scaled by ``weights`` (K or B×K, default 1). Returns the module docstring's keys."""
        if isinstance(target, dict):  # translate.py's attribute edit: {"target_attrs": …, "source_attrs": …}
            target = target["target_attrs"]
        target_t = torch.as_tensor(target, device=images.device)
        if target_t.dim() <= 1 or self.codec.form == "multilabel":
            out = self.generate(images, self.encode_target(target_t, images.shape[0], images.device, images.dtype),
                                inference=True)
        else:
            out = self._combine(images, target_t.long(), weights)
        result = {k: v for k, v in out._asdict().items() if torch.is_tensor(v)}
        if out.low is not None:
            result.update({f"low_{k}": v for k, v in out.low._asdict().items() if k in ("image", "deformed", "flow") and v is not None})
        return result

    def motion_basis(self, x_low: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(w, m) of G for labels ``c`` on the LR input: one motion basis of Fig. 7 and its mask."""
        G = self.inference_net("G")
        f = G.encode(x_low, c)
        return G.motion_field(f), (G.mask_head(f) if G.mask_head is not None else None)

    def _combine(self, images: torch.Tensor, target: torch.Tensor, weights: Any) -> SPMOutput:
        """Motion-basis combination: w = Σ_k a_k·w(I_s, c_k), warped once; the mask is the union (max) of the
        K masks and R refines the once-warped image (the paper shows the deformed results only) **[inferred]**."""
        if not self.use_motion:
            raise ConfigError("combining motion fields needs the motion module (method.motion=true).")
        B, K = images.shape[0], target.shape[1]
        target = target.expand(B, K)
        a = torch.ones(B, K, device=images.device, dtype=images.dtype) if weights is None else (
            torch.as_tensor(weights, device=images.device, dtype=images.dtype).expand(B, K))
        x_low = resize(images, self.lr_size) if self.hr_stage else images
        flow, mask, label = 0.0, None, 0.0
        for k in range(K):
            c_k = self.codec.encode(target[:, k], images.dtype)
            w, m = self.motion_basis(x_low, c_k)
            flow = flow + a[:, k, None, None, None] * w
            if m is not None:
                mask = m if mask is None else torch.maximum(mask, m)
            label = label + a[:, k, None] * c_k
        low = self.inference_net("G").compose(x_low, flow, mask, label.clamp(0, 1))
        return self.lift(images, low)

    def lift(self, images: torch.Tensor, low: SPMOutput) -> SPMOutput:
        """An LR output through this run's enhancement stages (identity for the LR stage)."""
        for name, size in zip(self.enhancers(), [*([self.mid_size] if self.cascade else []), self.image_size], strict=False):
            low = self.inference_net(name)(resize(images, size), low)
        return low
