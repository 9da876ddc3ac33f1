"""AGGAN — Attention-Guided Generative Adversarial Networks (Tang et al.), and CycleGAN as its configuration
with the attention parts switched off.

Paper ↔ code names: G_{X→Y} = ``G_xy``, G_{Y→X} = ``G_yx``; D_Y = ``D_y``, D_X = ``D_x``; attention-guided
D_{YA} = ``D_ya``, D_{XA} = ``D_xa``; attention masks M_y, M_x; content masks R_y, R_x.

Views:
- ``two_domain``: two generators and (2 or 4) discriminators, Eqs. 1–9.
- ``multi_domain`` (the paper's RaFD setting, 8 expressions in one model), in one of two forms
  (``multi_domain_form``):
  - ``authors`` (default): as the authors trained it (``Ha0Tang/AttentionGAN`` ``stargan_attention/solver.py``),
    StarGAN's trainer with the attention generator — WGAN-GP, a D step every iteration and a G step every
    ``n_critic``-th, StarGAN's D (``nets.spm.StarGANDiscriminator``), an instance-norm G
    (``nets.aggan.AttentionStarGANGenerator``); G: adv + λ_cls·cls + λ_cycle·rec, D: adv + λ_cls·cls + λ_gp·gp.
    Their code has no attention-guided D, pixel or TV loss, curriculum or image pool, so neither has this form:
    ``attention_discriminator``, ``pixel_loss``, ``tv_loss``, ``curriculum``, ``lambda_gan`` and ``pool_size``
    apply to the other forms only. The settings of this form are ``method.multi_domain.*``.
  - ``hybrid``: this suite's earlier form — the two-domain G/D with a tiled label and a 1×1 classification head,
    LSGAN + pool, an unconditioned attention-guided D, the curriculum, λ_cls outside it. Neither source has it.

Switches (Table II ablations): ``attention_generator`` (AG), ``attention_discriminator`` (AD), ``pixel_loss``
(PL), ``tv_loss`` (AL); plus ``curriculum`` (Eq. 9 vs Eq. 7) and ``lambda_identity`` (CycleGAN's identity loss).

The discriminator loss is not weighted by the curriculum r: Eq. 9 scales the generator's objective; the
discriminator is trained on its own (halved, Sec. III-D) adversarial loss.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from lightning_modules.base import Closure, GANModule
from lightning_modules.losses import (
    TV_FORMS,
    cycle_loss,
    discriminator_adv_loss,
    domain_classification_loss,
    generator_adv_loss,
    gradient_penalty,
    pixel_loss,
    total_variation,
)
from lightning_modules.schedules import switch_iteration
from lightning_modules.spm_labels import check_target_sampling, permuted
from suite.errors import ConfigError


class AGGAN(GANModule):
    """Attention-guided GAN (and CycleGAN). See the module docstring for the mapping to the paper.

    Args (beyond ``GANModule``'s):
        generator, discriminator: ``_target_`` configs of the networks (``nets.aggan``).
        attention_generator: AG — generators emit mask + content (Eq. 1); off = plain CycleGAN generator.
        attention_discriminator: AD — add D_{YA}, D_{XA} on [M, image] pairs (Eq. 3). Needs AG.
        pixel_loss: PL — Eq. 5.  tv_loss: AL — Eq. 6.  tv_form: ``paper`` (Eq. 6 on the 1-channel mask, batch
            mean) | ``authors`` (their 3-channel mask summed over the batch: 3·B times larger); see
            ``losses.total_variation``.
        curriculum: weight the objective by r as in Eq. 9 (else the plain sum of Eq. 7).
        curriculum_r_early / curriculum_r_late: r = 0.01, then 0.5 (Sec. IV-A).
        curriculum_epochs / curriculum_fraction: the early phase's length, in epochs (the paper's 10) or as a
            fraction of the run (the embedded recipe's 0.05 = 10 of 200 epochs); exactly one of them is set
            (conf/method/aggan.yaml: 10 epochs; both default to None here so that checkpoints from before the epoch
            form, which hold only the fraction, still load).
        lambda_gan 0.5, lambda_cycle 10, lambda_pixel 1, lambda_tv 1e-6 (Sec. IV-A); lambda_identity: CycleGAN's
            identity loss weight (relative to lambda_cycle, as in CycleGAN); lambda_cls: StarGAN's domain
            classification weight (multi-domain form); lambda_gp: gradient penalty (only with gan_mode=wgan).
        gan_mode: ``lsgan`` (paper) | ``vanilla`` | ``wgan`` | ``hinge``.
        pool_size: image history of 50.
        multi_domain_form: ``authors`` | ``hybrid`` (see the module docstring).
        target_sampling: multi-domain targets — ``other`` (the datamodule's: another domain, uniformly) or
            ``permutation`` (the authors' StarGAN-based trainer: the batch's own labels shuffled,
            ``lightning_modules.spm_labels.permuted``; with batch 1 every target is its source). Two-domain: unused.
        multi_domain: the authors' multi-domain form: ``{n_critic, gan_mode, generator, discriminator}``.
    """

    supported_views = ("two_domain", "multi_domain")
    multi_domain_forms = ("authors", "hybrid")

    def __init__(
        self,
        generator: dict,
        discriminator: dict,
        attention_generator: bool = True,
        attention_discriminator: bool = True,
        pixel_loss: bool = True,
        tv_loss: bool = True,
        tv_form: str = "paper",
        curriculum: bool = True,
        curriculum_r_early: float = 0.01,
        curriculum_r_late: float = 0.5,
        curriculum_epochs: float | None = None,
        curriculum_fraction: float | None = None,
        lambda_gan: float = 0.5,
        lambda_cycle: float = 10.0,
        lambda_pixel: float = 1.0,
        lambda_tv: float = 1e-6,
        lambda_identity: float = 0.0,
        lambda_cls: float = 1.0,
        lambda_gp: float = 10.0,
        gan_mode: str = "lsgan",
        pool_size: int = 50,
        multi_domain_form: str = "authors",
        target_sampling: str = "other",
        multi_domain: dict | None = None,
        **common: Any,
    ) -> None:
        super().__init__(**common)
        self.save_hyperparameters()
        self.target_sampling = check_target_sampling(target_sampling)
        if tv_form not in TV_FORMS:
            raise ConfigError(f"method.tv_form must be one of {', '.join(TV_FORMS)}, got {tv_form!r}.")
        if multi_domain_form not in self.multi_domain_forms:
            raise ConfigError(f"method.multi_domain_form must be one of {', '.join(self.multi_domain_forms)}, got {multi_domain_form!r}.")
        self.authors_form = self.view == "multi_domain" and multi_domain_form == "authors"
        if attention_discriminator and not attention_generator and not self.authors_form:
            raise ConfigError(
                "method.attention_discriminator=true needs method.attention_generator=true (the attention-guided "
                "discriminator sees the generator's mask); switch both off for the −AG ablation."
            )
        hp = self.hparams
        self.multi_domain = self.view == "multi_domain"
        domains = self.require_info("domain_names", "named domains")
        self.num_domains = len(domains)
        if not self.multi_domain and self.num_domains != 2:
            raise ConfigError(f"the two_domain form of {self.method_name} needs exactly 2 domains, got {domains}.")
        g_cfg, d_cfg = dict(generator), dict(discriminator)
        if self.authors_form:
            self._build_authors_multi_domain(dict(multi_domain or {}), attention_generator)
        elif self.multi_domain:
            self.G = self.build_net(g_cfg, attention=attention_generator, num_domains=self.num_domains)
            self.D = self.build_net(d_cfg, num_classes=self.num_domains)
            if attention_discriminator:
                self.D_a = self.build_net(d_cfg, extra_in_channels=1)
            self.register_pool("fake", pool_size)
            self.build_ema(["G"])
        else:
            self.G_xy = self.build_net(g_cfg, attention=attention_generator)
            self.G_yx = self.build_net(g_cfg, attention=attention_generator)
            self.D_y = self.build_net(d_cfg)
            self.D_x = self.build_net(d_cfg)
            if attention_discriminator:
                self.D_ya = self.build_net(d_cfg, extra_in_channels=1)
                self.D_xa = self.build_net(d_cfg, extra_in_channels=1)
            self.register_pool("fake_y", pool_size)
            self.register_pool("fake_x", pool_size)
            self.build_ema(["G_xy", "G_yx"])
        extras = not self.authors_form  # the authors' multi-domain code has none of AD, PL, AL, curriculum
        self.use_pixel = extras and pixel_loss and hp.lambda_pixel > 0
        self.use_tv = extras and tv_loss and attention_generator and hp.lambda_tv > 0
        self.use_ad = extras and attention_discriminator
        self.use_curriculum = extras and curriculum
        for name in ("D", "D_a", "D_y", "D_x", "D_ya", "D_xa"):
            self._check_discriminator_size(name)
        if self.use_curriculum:
            self.curriculum_switch()  # a malformed curriculum fails here, not at the first step

    def _build_authors_multi_domain(self, cfg: dict, attention_generator: bool) -> None:
        """The authors' multi-domain nets: their attention G and StarGAN's D with its classification head."""
        self.n_critic = self.check_n_critic(cfg.get("n_critic", 5))
        self.md_gan_mode = cfg.get("gan_mode", "wgan")
        self.G = self.build_named_net("multi_domain.generator", cfg.get("generator"), attention=attention_generator,
                                      num_domains=self.num_domains)
        self.D = self.build_named_net("multi_domain.discriminator", cfg.get("discriminator"),
                                      image_size=self.require_info("image_size", "the image size"),
                                      num_classes=self.num_domains)
        self.build_ema(["G"])

    def _check_discriminator_size(self, name: str) -> None:
        net, size = getattr(self, name, None), self.data_info.get("image_size")
        if net is not None and size and hasattr(net, "check_image_size"):
            try:
                net.check_image_size(int(size))
            except ValueError as exc:
                raise ConfigError(f"method.discriminator: {exc}.") from None

    # ------------------------------------------------------------------------------------------ optimizers
    def optimizer_groups(self) -> dict[str, Any]:
        if self.multi_domain:
            gens = list(self.G.parameters())
            discs = list(self.D.parameters()) + (list(self.D_a.parameters()) if self.use_ad else [])
        else:
            gens = list(self.G_xy.parameters()) + list(self.G_yx.parameters())
            discs = list(self.D_y.parameters()) + list(self.D_x.parameters())
            if self.use_ad:
                discs += list(self.D_ya.parameters()) + list(self.D_xa.parameters())
        return {"G": gens, "D": discs}

    # ---------------------------------------------------------------------------------------- schedules
    def curriculum_switch(self) -> float | None:
        """The iteration where r leaves its early value (None while an epoch count awaits train start)."""
        hp = self.hparams
        return switch_iteration("method.curriculum", hp.curriculum_fraction, hp.curriculum_epochs,
                                self.max_iterations, self.iterations_per_epoch)

    def curriculum_r(self) -> float:
        """r of Eq. 9 at the current iteration: early for the first 10 epochs (or the fraction), then late."""
        hp = self.hparams
        switch = self.curriculum_switch()
        return hp.curriculum_r_early if switch is None or self.iteration < switch else hp.curriculum_r_late

    def uses_epochs(self) -> bool:
        return super().uses_epochs() or (self.use_curriculum and self.hparams.curriculum_epochs is not None)

    def weigh(self, gan_terms: torch.Tensor, tv: torch.Tensor, recon_terms: torch.Tensor,
              r: float | None = None) -> torch.Tensor:
        """Eq. 9 (curriculum) or Eq. 7: gan_terms and recon_terms arrive already multiplied by their λ. ``r``: the
        curriculum weight, read before the step by the iterations (a step that read the iteration counter itself
        would be compiled anew every iteration); None reads it here."""
        if not self.use_curriculum:
            return gan_terms + tv + recon_terms
        r = self.curriculum_r() if r is None else r
        return (gan_terms + tv) * (1 - r) + recon_terms * r

    # ----------------------------------------------------------------------------------------- iteration
    def train_iteration(self, batch: dict) -> dict[str, torch.Tensor]:
        if self.authors_form:
            return self._authors_multi_domain_iteration(batch)
        logs = self._multi_domain_iteration(batch) if self.multi_domain else self._two_domain_iteration(batch)
        if self.use_curriculum:
            logs["schedule/r"] = torch.tensor(self.curriculum_r())
        return logs

    def training_targets(self, batch: dict) -> torch.Tensor:
        """Multi-domain targets by ``target_sampling``: the datamodule's, or the batch's labels permuted."""
        return permuted(batch["domain"]) if self.target_sampling == "permutation" else batch["target"]

    def _adv_pair(self, disc, fake: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return generator_adv_loss(disc(fake, mask).src, self.hparams.gan_mode)

    def _disc_loss(self, disc, real: torch.Tensor, fake: torch.Tensor, real_mask=None, fake_mask=None) -> torch.Tensor:
        """A discriminator's adversarial loss on (real, fake) — with masks, the attention discriminator's pairs."""
        return discriminator_adv_loss(disc(real, real_mask).src, disc(fake, fake_mask).src, self.hparams.gan_mode)

    def _gradient_penalty(self, pairs: list[tuple]) -> Closure | None:
        """``optimize``'s penalty: λgp · Σ WGAN-GP over ``(critic, real, fake, real mask, fake mask)`` pairs (a mask
        pair is interpolated together with its image), or None when the GAN mode has none."""
        hp = self.hparams
        if not (hp.gan_mode == "wgan" and hp.lambda_gp > 0) or not pairs:
            return None

        def penalty():
            terms = []
            for disc, real, fake, real_mask, fake_mask in pairs:
                if real_mask is not None:
                    both_real, both_fake = torch.cat([real_mask, real], 1), torch.cat([fake_mask, fake], 1)
                    terms.append(gradient_penalty(lambda t, d=disc: d(t[:, 1:], t[:, :1]).src, both_real, both_fake))
                else:
                    terms.append(gradient_penalty(lambda t, d=disc: d(t).src, real, fake))
            gp = torch.stack(terms).sum()
            return hp.lambda_gp * gp, {"gp": gp}

        return penalty

    def _two_domain_iteration(self, batch: dict) -> dict[str, torch.Tensor]:
        hp = self.hparams
        from_x = batch["domain"] == 0
        sel = from_x.view(-1, 1, 1, 1)
        x = torch.where(sel, batch["image"], batch["ref"])
        y = torch.where(sel, batch["ref"], batch["image"])
        saved: dict[str, torch.Tensor] = {}
        r = self.curriculum_r() if self.use_curriculum else None  # read here, not inside the (compiled) step

        def generator_step():
            out_y, out_x = self.G_xy(x), self.G_yx(y)  # x → [M_y, R_y, G_y];  y → [M_x, R_x, G_x]
            rec_x, rec_y = self.G_yx(out_y.image).image, self.G_xy(out_x.image).image
            parts = {
                "gan": self._adv_pair(self.D_y, out_y.image) + self._adv_pair(self.D_x, out_x.image),
                "cycle": cycle_loss(rec_x, x) + cycle_loss(rec_y, y),
            }
            if self.use_ad:
                parts["agan"] = self._adv_pair(self.D_ya, out_y.image, out_y.mask) + self._adv_pair(self.D_xa, out_x.image, out_x.mask)
            if self.use_pixel:
                parts["pixel"] = pixel_loss(out_y.image, x) + pixel_loss(out_x.image, y)
            if self.use_tv:
                parts["tv"] = total_variation(out_y.mask, hp.tv_form) + total_variation(out_x.mask, hp.tv_form)
            recon = hp.lambda_cycle * parts["cycle"] + hp.lambda_pixel * parts.get("pixel", 0.0)
            if hp.lambda_identity > 0:
                parts["identity"] = F.l1_loss(self.G_xy(y).image, y) + F.l1_loss(self.G_yx(x).image, x)
                recon = recon + hp.lambda_identity * hp.lambda_cycle * parts["identity"]
            # λ_gan scales the attention-guided terms too, as Eq. 7 writes it (Eq. 9 scales only the vanilla GAN
            # terms; the paper contradicts itself and the authors' code has no D_A) [inferred]: fidelity row L3
            gan = hp.lambda_gan * (parts["gan"] + parts.get("agan", 0.0))
            total = self.weigh(gan, hp.lambda_tv * parts.get("tv", torch.zeros((), device=x.device)), recon, r)
            saved.update(fake_y=out_y.image.detach(), fake_x=out_x.image.detach())
            if self.use_ad:
                saved.update(mask_y=out_y.mask.detach(), mask_x=out_x.mask.detach())
            return total, parts

        logs = self.optimize("G", generator_step)

        # the image pools (Python bookkeeping and random picks) run before the step, outside anything compiled
        if self.use_ad:  # pool [M, G] pairs so a stored fake keeps the mask it was made with
            pair_y = self.pools["fake_y"].query(torch.cat([saved["mask_y"], saved["fake_y"]], 1))
            pair_x = self.pools["fake_x"].query(torch.cat([saved["mask_x"], saved["fake_x"]], 1))
            fake_y, fake_x = pair_y[:, 1:], pair_x[:, 1:]
        else:
            fake_y = self.pools["fake_y"].query(saved["fake_y"])
            fake_x = self.pools["fake_x"].query(saved["fake_x"])
        # (critic, real, fake, real mask, fake mask) of each adversarial term
        terms = {"gan": [(self.D_y, y, fake_y, None, None), (self.D_x, x, fake_x, None, None)]}
        if self.use_ad:
            terms["agan"] = [(self.D_ya, y, fake_y, saved["mask_y"], pair_y[:, :1]),
                             (self.D_xa, x, fake_x, saved["mask_x"], pair_x[:, :1])]

        def discriminator_step():
            parts = {}
            if self.use_ad:
                parts["agan"] = self._disc_loss(*terms["agan"][0]) + self._disc_loss(*terms["agan"][1])
            parts["gan"] = self._disc_loss(*terms["gan"][0]) + self._disc_loss(*terms["gan"][1])
            return parts["gan"] + parts.get("agan", 0.0), parts

        logs.update(self.optimize("D", discriminator_step, self._gradient_penalty([*terms.get("agan", []), *terms["gan"]])))
        return logs

    def _authors_multi_domain_iteration(self, batch: dict) -> dict[str, torch.Tensor]:
        """The authors' multi-domain iteration (StarGAN's): a D step, then a G step on every ``n_critic``-th
        iteration (``(i+1) % n_critic == 0``, as their solver). G does not change during the D step, so on a G-step
        iteration G runs once, with gradients, and the D step scores its detached output."""
        hp, mode = self.hparams, self.md_gan_mode
        x, src, tgt = batch["image"], batch["domain"], self.training_targets(batch)
        c_src = F.one_hot(src, self.num_domains).to(x.dtype)
        c_tgt = F.one_hot(tgt, self.num_domains).to(x.dtype)
        g_step = (self.iteration + 1) % self.n_critic == 0
        out_g = self.G(x, c_tgt) if g_step else None

        def discriminator_step():
            if out_g is not None:
                fake = out_g.image.detach()
            else:
                with torch.no_grad():
                    fake = self.G(x, c_tgt).image
            real_out = self.D(x)
            saved["fake"] = fake
            parts = {"gan": discriminator_adv_loss(real_out.src, self.D(fake).src, mode),
                     "cls": domain_classification_loss(real_out.cls, src)}
            return parts["gan"] + hp.lambda_cls * parts["cls"], parts

        saved: dict[str, torch.Tensor] = {}
        penalty = self.wgan_penalty(lambda t: self.D(t).src, lambda: (x, saved["fake"]), mode == "wgan")
        logs = self.optimize("D", discriminator_step, penalty)
        if not g_step:
            return logs

        def generator_step():
            d_out = self.D(out_g.image)
            parts = {"gan": generator_adv_loss(d_out.src, mode),
                     "cls": domain_classification_loss(d_out.cls, tgt),
                     "cycle": cycle_loss(self.G(out_g.image, c_src).image, x)}
            return parts["gan"] + hp.lambda_cls * parts["cls"] + hp.lambda_cycle * parts["cycle"], parts

        logs.update(self.optimize("G", generator_step))
        return logs

    def _multi_domain_iteration(self, batch: dict) -> dict[str, torch.Tensor]:
        """The ``hybrid`` multi-domain form (this suite's own; see the module docstring)."""
        hp = self.hparams
        x, src, tgt = batch["image"], batch["domain"], self.training_targets(batch)
        c_src = F.one_hot(src, self.num_domains).float()
        c_tgt = F.one_hot(tgt, self.num_domains).float()
        saved: dict[str, torch.Tensor] = {}
        r = self.curriculum_r() if self.use_curriculum else None  # read here, not inside the (compiled) step

        def generator_step():
            out = self.G(x, c_tgt)
            rec = self.G(out.image, c_src).image
            d_out = self.D(out.image)
            parts = {
                "gan": generator_adv_loss(d_out.src, hp.gan_mode),
                "cls": domain_classification_loss(d_out.cls, tgt),
                "cycle": cycle_loss(rec, x),
            }
            if self.use_ad:
                parts["agan"] = self._adv_pair(self.D_a, out.image, out.mask)
            if self.use_pixel:
                parts["pixel"] = pixel_loss(out.image, x)
            if self.use_tv:
                parts["tv"] = total_variation(out.mask, hp.tv_form)
            recon = hp.lambda_cycle * parts["cycle"] + hp.lambda_pixel * parts.get("pixel", 0.0)
            gan = hp.lambda_gan * (parts["gan"] + parts.get("agan", 0.0))
            total = self.weigh(gan, hp.lambda_tv * parts.get("tv", torch.zeros((), device=x.device)), recon, r)
            total = total + hp.lambda_cls * parts["cls"]
            saved["fake"] = out.image.detach()
            if self.use_ad:
                saved["mask"] = out.mask.detach()
            return total, parts

        logs = self.optimize("G", generator_step)

        if self.use_ad:  # the pool runs before the step, outside anything compiled
            pair = self.pools["fake"].query(torch.cat([saved["mask"], saved["fake"]], 1))
            fake, fake_mask = pair[:, 1:], pair[:, :1]
        else:
            fake = self.pools["fake"].query(saved["fake"])

        def discriminator_step():
            parts = {}
            if self.use_ad:
                parts["agan"] = self._disc_loss(self.D_a, batch["ref"], fake, saved["mask"], fake_mask)
            real_out = self.D(x)
            parts["gan"] = discriminator_adv_loss(real_out.src, self.D(fake).src, hp.gan_mode)
            parts["cls"] = domain_classification_loss(real_out.cls, src)
            return parts["gan"] + parts.get("agan", 0.0) + hp.lambda_cls * parts["cls"], parts

        critics = [(self.D_a, batch["ref"], fake, saved["mask"], fake_mask)] if self.use_ad else []
        logs.update(self.optimize("D", discriminator_step, self._gradient_penalty([*critics, (self.D, x, fake, None, None)])))
        return logs

    # ----------------------------------------------------------------------------------------- translate
    @torch.no_grad()
    def translate(self, images: torch.Tensor, target: torch.Tensor, **kwargs: Any) -> dict[str, torch.Tensor]:
        """images B×3×H×W in [−1, 1]; target: B domain indices. Returns ``image`` and, with attention, ``mask``
        (B×1×H×W) and ``content``."""
        target = torch.as_tensor(target, device=images.device).long().view(-1).expand(images.shape[0])
        if self.multi_domain:
            out = self.inference_net("G")(images, F.one_hot(target, self.num_domains).to(images.dtype))
            return {k: v for k, v in out._asdict().items() if v is not None}
        result: dict[str, torch.Tensor] = {}
        for name, value in (("G_xy", 1), ("G_yx", 0)):
            idx = (target == value).nonzero(as_tuple=True)[0]
            if idx.numel() == 0:
                continue
            out = self.inference_net(name)(images[idx])
            for key, tensor in out._asdict().items():
                if tensor is None:
                    continue
                if key not in result:
                    result[key] = tensor.new_zeros((images.shape[0], *tensor.shape[1:]))
                result[key][idx] = tensor
        return result
