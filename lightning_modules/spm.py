"""SPM — attribute-driven spontaneous motion (Wu et al.), its two-stage LR→HR form (Sec. 3.3), and StarGAN
(Choi et al.) as its configuration with both SPM modules switched off.

Paper ↔ code names: G = ``G`` (``nets.spm.SPMGenerator``: SPM encoder, motion head, mask head M, refinement R);
D_d with Dc on top = ``D`` (StarGAN's discriminator; in the HR stage it is D_l); Dw = ``Dw``; the HR stage's
T_w, T_r, T_m = ``T.T_w``, ``T.T_r``, ``T.T_m`` (``nets.spm.HighResolutionSPM``) and D_h = ``D_h``. Symbols:
I_s = ``x``, c_s/c_t = ``c_src``/``c_tgt`` (one-hot), w = ``flow``, m = ``mask``, r = ``residual``, I_d =
``deformed``, I_t = ``image``; λcr = ``lambda_cls``, λcw, λm = ``lambda_mask``, λadv, λrec, λw.

Losses (one iteration = one batch; D every iteration, G every ``n_critic``-th, as the released configs):
- D (Eq. 10): ``λadv·adv_D + λgp·GP + λcr·L_dcr``, L_dcr = CE(c_s, Dc(I_s)) (Eq. 2).
- G (Eq. 9): ``λcr·L_gcr + λcw·L_cw + λm·L_m + λadv·adv_G + λrec·L_rec`` with L_gcr = CE(c_t, Dc(I_t)) (Eq. 3),
  L_cw = CE(c_t, Dw(w, I_s)) (Eq. 4), L_m = mean|m| (Eq. 6), L_rec = |I_s − G(G(I_s, c_t), c_s)|₁ (Eq. 8).
- adversarial: WGAN-GP as in the released configs (``gan_mode=wgan``, λgp 10); ``gan_mode=vanilla`` is Eq. 7.
- Dw is not released; it is trained with G on L_cw (cooperatively, in G's optimizer) **[inferred]**.

Switches (Table 1): ``motion`` (off = "No M": no motion head, no Dw, I_d = I_s), ``refinement`` (off = "No R":
no R, no mask, I_t = I_d). Both off leaves SPM's encoder with a plain tanh image head — StarGAN's generator —
and with λcw, λm unused the objective is StarGAN's (adv + λcls·cls + λrec·rec, WGAN-GP, n_critic 5). That is
``method=stargan``. We build StarGAN from SPM rather than from AGGAN's multi-domain form because SPM already
*is* StarGAN's design on every axis StarGAN has — its discriminator (Conv4 s2, LeakyReLU 0.01, patch src head,
map-sized cls head), its encoder and up-sampling layers, WGAN-GP with n_critic, λcls/λrec/λgp — whereas
AGGAN's form has another discriminator (BatchNorm, global pooling), no critic schedule, and an image pool.

Views: ``multi_domain`` (RaFD expressions, the embedded faces) and ``two_domain`` (CelebA non-x ↔ x, shapes):
in the two-domain view the first half of the batch comes from ``image`` and the second from the unpaired
``ref``, each translated to the other domain — StarGAN's two-domain training, which Eq. 8's cycle needs anyway.

HR stage (``hr_stage=true``, ``method=spm_hr``): the input I_h is down-sampled to ``lr_size``, the LR generator
(still trained) gives w_l, r_l, m_l, and ``T`` builds the HR output from their bilinear up-samplings.
D_h judges real vs generated HR images; D_l (= ``D``) real LR vs generated LR and down-sampled generated HR.
Every per-scale term (adversarial, classification, mask, cycle) is ``HR + λlow·LR`` (λlow 0.5, code 0.4–0.5).
The LR weights (G, D, Dw) come from ``lr_ckpt_path`` (a ``method=spm`` checkpoint at ``lr_size``), read when
training starts (not at construction, so a finished HR checkpoint evaluates without the LR file, and a resumed
HR run keeps its own weights). ``lr_ckpt_path: null`` trains both stages jointly from scratch, with a warning.

translate() returns ``image`` (I_t), ``deformed`` (I_d), ``flow`` (w, B×2×H×W in fractions of the image extent,
see ``nets.spm``), ``mask`` (m), ``residual`` (r) — those the configuration has; the HR stage adds
``low_image``, ``low_deformed``, ``low_flow``. A B×K (or 1×K) target combines motion bases (Fig. 7): the fields
of the K targets are summed (optionally weighted) and the input is warped once.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from lightning_modules.base import GANModule
from lightning_modules.losses import (
    cycle_loss,
    discriminator_adv_loss,
    domain_classification_loss,
    flow_smoothness,
    generator_adv_loss,
    gradient_penalty,
    mask_sparsity,
)
from nets.spm import SPMOutput, flow_to_pixels, resize, resolution_adaptive_layers
from suite.checkpoints import read_checkpoint
from suite.errors import CheckpointError, ConfigError

log = logging.getLogger(__name__)

LR_METHOD = "spm"  # the method whose checkpoints start the HR stage


class SPM(GANModule):
    """SPM (LR or HR stage) and StarGAN. See the module docstring for the mapping to the paper.

    Args (beyond ``GANModule``'s):
        generator, discriminator, motion_classifier, enhancer: ``_target_`` configs (``nets.spm``); the
            enhancer (T_w, T_r, T_m) is used only in the HR stage.
        motion: the spontaneous motion module (Table 1 "No M" when off).
        refinement: R and the attention mask (Table 1 "No R" when off).
        lambda_w: λw, bound of the motion field (0.1 in code; 0.1–0.2 in the paper).
        lambda_cls 1 (λcr), lambda_cw 0.5, lambda_mask 1 (λm), lambda_adv 1, lambda_rec 10 (Sec. 3.4);
            lambda_gp 10 (WGAN-GP, only with gan_mode=wgan).
        lambda_flow_tv: weight of a motion-field smoothness term (``losses.flow_smoothness``, pixels); not in
            the paper **[inferred option]**, 0 (off) by default; the CPU recipe needs it against scrambling fields.
        gan_mode: ``wgan`` (released configs) | ``vanilla`` (Eq. 7) | ``lsgan`` | ``hinge``.
        n_critic: G is updated on every n_critic-th iteration (first included), D on every one.
        motion_classifier_label: Dw also reads the tiled source label **[inferred]** (see ``nets.spm``).
        hr_stage, lr_size, lr_ckpt_path, lambda_low: the HR stage (module docstring).
    """

    supported_views = ("two_domain", "multi_domain")
    nets_package = "nets.spm"

    def __init__(
        self,
        generator: dict,
        discriminator: dict,
        motion_classifier: dict,
        enhancer: dict | None = None,
        motion: bool = True,
        refinement: bool = True,
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
        motion_classifier_label: bool = False,
        hr_stage: bool = False,
        lr_size: int | None = None,
        lr_ckpt_path: str | None = None,
        lambda_low: float = 0.5,
        **common: Any,
    ) -> None:
        super().__init__(**common)
        self.save_hyperparameters()
        self.check_n_critic(n_critic)
        if lambda_w <= 0:
            raise ConfigError(f"method.lambda_w (λw, the motion bound) must be positive, got {lambda_w}.")
        domains = self.require_info("domain_names", "named domains")
        self.num_domains = len(domains)
        if self.view == "two_domain" and self.num_domains != 2:
            raise ConfigError(f"the two_domain form of {self.method_name} needs exactly 2 domains, got {domains}.")
        self.image_size = int(self.require_info("image_size", "the image size"))
        self.hr_stage = bool(hr_stage)
        self.lr_size = self._check_hr(lr_size) if self.hr_stage else self.image_size
        self.use_motion, self.use_refinement = bool(motion), bool(refinement)

        self.G = self.build_named_net("generator", generator, num_domains=self.num_domains, motion=motion,
                             refinement=refinement, lambda_w=lambda_w)
        self.D = self.build_named_net("discriminator", discriminator, image_size=self.lr_size, num_classes=self.num_domains)
        if self.use_motion:
            label_ch = self.num_domains if motion_classifier_label else 0
            self.Dw = self.build_named_net("motion_classifier", motion_classifier, image_size=self.lr_size,
                                  num_classes=self.num_domains, label_channels=label_ch)
        if self.hr_stage:
            self.T = self.build_named_net("enhancer", enhancer or {}, motion=motion, refinement=refinement, lambda_w=lambda_w)
            n_layers_h = resolution_adaptive_layers(self.D.n_layers, self.lr_size, self.image_size)
            self.D_h = self.build_named_net("discriminator", discriminator, image_size=self.image_size,
                                   num_classes=self.num_domains, n_layers=n_layers_h)
        self.build_ema(["G", "T"] if self.hr_stage else ["G"])

    # ----------------------------------------------------------------------------------------- construction
    def _check_hr(self, lr_size: int | None) -> int:
        if not (self.hparams.motion or self.hparams.refinement):
            raise ConfigError("the HR stage enhances SPM's motion field and refinement; with method.motion=false and "
                              "method.refinement=false (StarGAN) there is nothing to enhance.")
        if not isinstance(lr_size, int) or lr_size < 8:
            raise ConfigError(f"method.lr_size (the LR stage's image size) must be an integer >= 8, got {lr_size!r}.")
        if self.image_size <= lr_size or self.image_size % lr_size or (self.image_size // lr_size) & (self.image_size // lr_size - 1):
            raise ConfigError(
                f"the HR stage needs data.image_size = method.lr_size × a power of two (e.g. 128 → 256/512, 32 → 64); "
                f"got image_size {self.image_size} and lr_size {lr_size}."
            )
        return lr_size

    # ------------------------------------------------------------------------------------------ optimizers
    def optimizer_groups(self) -> dict[str, Any]:
        gens = list(self.G.parameters())
        if self.use_motion:
            gens += list(self.Dw.parameters())  # Dw is trained with G on L_cw [inferred]
        if self.hr_stage:
            gens += list(self.T.parameters())
        discs = list(self.D.parameters()) + (list(self.D_h.parameters()) if self.hr_stage else [])
        return {"G": gens, "D": discs}

    # ------------------------------------------------------------------------------------------- forward
    def generate(self, x: torch.Tensor, c_tgt: torch.Tensor, inference: bool = False) -> SPMOutput:
        """G(I_s, c_t); in the HR stage the LR generator runs on the down-sampled input and T lifts its fields."""
        G = self.inference_net("G") if inference else self.G
        if not self.hr_stage:
            return G(x, c_tgt)
        low = G(resize(x, self.lr_size), c_tgt)
        return (self.inference_net("T") if inference else self.T)(x, low)

    def scales(self, x: torch.Tensor, out: SPMOutput) -> list[tuple[str, nn.Module, torch.Tensor, torch.Tensor, float]]:
        """(suffix, discriminator, real, fake, weight) for each resolution the discriminators judge: the LR stage
        has one; the HR stage has D_h on HR and D_l on LR with two kinds of fakes (Sec. 3.3)."""
        if not self.hr_stage:
            return [("", self.D, x, out.image, 1.0)]
        fake_low = torch.cat([out.low.image, resize(out.image, self.lr_size)], 0)
        return [("", self.D_h, x, out.image, 1.0), ("_low", self.D, resize(x, self.lr_size), fake_low, self.hparams.lambda_low)]

    def _real_batch(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(I_s, source indices, target indices); two_domain: first half ``image``, second half ``ref``."""
        x, src, tgt = batch["image"], batch["domain"], batch["target"]
        if self.view == "two_domain" and batch.get("ref") is not None and x.shape[0] > 1:
            k = (x.shape[0] + 1) // 2
            x = torch.cat([x[:k], batch["ref"][k:]], 0)
            src = torch.cat([src[:k], batch["ref_domain"][k:]], 0)
            tgt = 1 - src
        return x, src.long(), tgt.long()

    # ----------------------------------------------------------------------------------------- iteration
    def train_iteration(self, batch: dict) -> dict[str, torch.Tensor]:
        hp = self.hparams
        x, src, tgt = self._real_batch(batch)
        c_src = F.one_hot(src, self.num_domains).to(x.dtype)
        c_tgt = F.one_hot(tgt, self.num_domains).to(x.dtype)

        # On a G-step iteration the generator runs once, with gradients: G does not change during the D step, so
        # the D step's (detached) fakes are the very images the G step scores — no second forward pass.
        g_step = self.iteration % hp.n_critic == 0
        out_g = self.generate(x, c_tgt) if g_step else None

        def discriminator_step():
            if out_g is not None:
                out = out_g
            else:
                with torch.no_grad():
                    out = self.generate(x, c_tgt)
            parts: dict[str, torch.Tensor] = {}
            total = x.new_zeros(())
            for suffix, disc, real, fake, weight in self.scales(x, out):
                fake = fake.detach()
                real_out = disc(real)
                n_fakes = fake.shape[0] // real.shape[0]
                parts[f"adv{suffix}"] = discriminator_adv_loss(real_out.src, disc(fake).src, hp.gan_mode)  # Eq. 7/WGAN
                parts[f"cls{suffix}"] = domain_classification_loss(real_out.cls, src)  # Eq. 2
                scale = hp.lambda_adv * parts[f"adv{suffix}"] + hp.lambda_cls * parts[f"cls{suffix}"]
                if hp.gan_mode == "wgan" and hp.lambda_gp > 0:
                    parts[f"gp{suffix}"] = gradient_penalty(lambda t, d=disc: d(t).src, real.repeat(n_fakes, 1, 1, 1), fake)
                    scale = scale + hp.lambda_gp * parts[f"gp{suffix}"]
                total = total + weight * scale  # Eq. 10
            return total, parts

        logs = self.optimize("D", discriminator_step)
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
                parts[f"cls{suffix}"] = domain_classification_loss(fake_out.cls, tgt.repeat(fake.shape[0] // x.shape[0]))  # Eq. 3
                total = total + weight * (hp.lambda_adv * parts[f"adv{suffix}"] + hp.lambda_cls * parts[f"cls{suffix}"])
            for suffix, o, r, real, weight in self._pyramid(x, out, rec):
                parts[f"rec{suffix}"] = cycle_loss(r.image, real)  # Eq. 8
                total = total + weight * hp.lambda_rec * parts[f"rec{suffix}"]
                if o.mask is not None:
                    parts[f"mask{suffix}"] = mask_sparsity(o.mask)  # Eq. 6
                    total = total + weight * hp.lambda_mask * parts[f"mask{suffix}"]
                if o.flow is not None and hp.lambda_flow_tv > 0:
                    parts[f"flow_tv{suffix}"] = flow_smoothness(flow_to_pixels(o.flow))
                    total = total + weight * hp.lambda_flow_tv * parts[f"flow_tv{suffix}"]
            if self.use_motion:
                low = out.low if self.hr_stage else out
                x_low = resize(x, self.lr_size)
                logits = self.Dw(low.flow, x_low, c_src if hp.motion_classifier_label else None)
                parts["cw"] = domain_classification_loss(logits, tgt)  # Eq. 4
                total = total + hp.lambda_cw * parts["cw"]
            return total, parts

        logs.update(self.optimize("G", generator_step))
        return logs

    def _pyramid(self, x: torch.Tensor, out: SPMOutput, rec: SPMOutput) -> list[tuple[str, SPMOutput, SPMOutput, torch.Tensor, float]]:
        """(suffix, output, reconstruction, real, weight) per resolution for the mask and cycle terms."""
        if not self.hr_stage:
            return [("", out, rec, x, 1.0)]
        return [("", out, rec, x, 1.0), ("_low", out.low, rec.low, resize(x, self.lr_size), self.hparams.lambda_low)]

    # ----------------------------------------------------------------------------------------- HR start
    def on_fit_start(self) -> None:
        super().on_fit_start()
        if self.hr_stage and self.iteration == 0 and getattr(self.trainer, "ckpt_path", None) is None:
            self.load_low_resolution(self.hparams.lr_ckpt_path)

    def load_low_resolution(self, path: str | None) -> None:
        """Start the HR stage from a ``method=spm`` checkpoint trained at ``lr_size``: copy its G, D (→ D_l) and
        Dw (and its EMA generator when both runs keep one). ``None``: keep the fresh LR nets, with a warning."""
        if path is None:
            log.warning(
                "method.lr_ckpt_path is not set: the HR stage trains the LR generator from scratch together with the "
                "HR nets; the paper starts it from a trained method=spm checkpoint (method.lr_ckpt_path=<run>/checkpoints/last.ckpt)."
            )
            return
        ckpt = read_checkpoint(path, expected_method=LR_METHOD)
        info = ckpt["suite"].get("data_info") or {}
        if info.get("image_size") != self.lr_size:
            raise CheckpointError(
                f"{path} was trained at {info.get('image_size')} px, but method.lr_size is {self.lr_size}; set "
                f"method.lr_size={info.get('image_size')} or use an LR checkpoint at {self.lr_size} px."
            )
        if info.get("domain_names") != self.data_info.get("domain_names"):
            raise CheckpointError(
                f"{path} was trained on the domains {info.get('domain_names')}, this run has "
                f"{self.data_info.get('domain_names')}; use an LR checkpoint of the same data and domains."
            )
        state = ckpt["state_dict"]
        targets = {"G": self.G, "D": self.D}
        if self.use_motion:
            targets["Dw"] = self.Dw
        for prefix, net in targets.items():
            self._load_part(path, net, state, prefix)
        if "G" in self.ema_nets:
            ema_prefix = "ema_nets.G" if any(k.startswith("ema_nets.G.") for k in state) else "G"
            self._load_part(path, self.ema_nets["G"], state, ema_prefix)
        log.info("HR stage: loaded the LR generator, D_l and Dw from %s", path)

    @staticmethod
    def _load_part(path: str, net: nn.Module, state: dict, prefix: str) -> None:
        sub = {k[len(prefix) + 1:]: v for k, v in state.items() if k.startswith(prefix + ".")}
        try:
            net.load_state_dict(sub)
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()[0]
            raise CheckpointError(
                f"the networks in {path} do not match this run's ({prefix}: {first}); use the LR run's settings for "
                "method.motion, method.refinement, method.generator, method.discriminator and method.motion_classifier."
            ) from None

    # ----------------------------------------------------------------------------------------- translate
    @torch.no_grad()
    def translate(self, images: torch.Tensor, target: Any, weights: Any = None, **kwargs: Any) -> dict[str, torch.Tensor]:
        """images B×3×H×W in [−1, 1] (H = the stage's image size). ``target``: B (or one) domain indices; or B×K /
        1×K indices to combine the motion fields of K targets (Fig. 7), each scaled by ``weights`` (K or B×K,
        default 1). Returns the module docstring's keys."""
        target = torch.as_tensor(target, device=images.device).long()
        if target.dim() <= 1:
            c_tgt = F.one_hot(target.view(-1).expand(images.shape[0]), self.num_domains).to(images.dtype)
            out = self.generate(images, c_tgt, inference=True)
        else:
            out = self._combine(images, target, weights)
        result = {k: v for k, v in out._asdict().items() if torch.is_tensor(v)}
        if out.low is not None:
            result.update({f"low_{k}": v for k, v in out.low._asdict().items() if k in ("image", "deformed", "flow") and v is not None})
        return result

    def _combine(self, images: torch.Tensor, target: torch.Tensor, weights: Any) -> SPMOutput:
        """Motion-basis combination: w = Σ_k a_k·w(I_s, c_k), warped once; the mask is the union (max) of the
        K masks and R refines the once-warped image (the paper shows the deformed results only) **[inferred]**."""
        if not self.use_motion:
            raise ConfigError("combining motion fields needs the motion module (method.motion=true).")
        B, K = images.shape[0], target.shape[1]
        target = target.expand(B, K)
        a = torch.ones(B, K, device=images.device, dtype=images.dtype) if weights is None else (
            torch.as_tensor(weights, device=images.device, dtype=images.dtype).expand(B, K))
        G = self.inference_net("G")
        x_low = resize(images, self.lr_size) if self.hr_stage else images
        flow, mask, label = 0.0, None, 0.0
        for k in range(K):
            c_k = F.one_hot(target[:, k], self.num_domains).to(images.dtype)
            f = G.encode(x_low, c_k)
            flow = flow + a[:, k, None, None, None] * G.motion_field(f)
            if G.mask_head is not None:
                m = G.mask_head(f)
                mask = m if mask is None else torch.maximum(mask, m)
            label = label + a[:, k, None] * c_k
        low = G.compose(x_low, flow, mask, label.clamp(0, 1))
        return self.inference_net("T")(images, low) if self.hr_stage else low
