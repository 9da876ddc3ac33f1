"""The label/reference bridge (Huang et al., ICCV 2021): multi-attribute translation driven either by target
labels (label-based, with a random code for diverse results) or by a reference image (reference-based), with
both kinds of code living in one spatial attribute space that G reads through SPADE.

Paper ↔ code names: G = ``G`` (``nets.bridge.BridgeGenerator``), M = ``M`` (mapping network), E = ``E`` (one
encoder for every path), D and C = ``D`` (one trunk, heads ``src`` = D and ``cls`` = C). Symbols: X_s = ``x``,
Y_s/Y_t = ``y_s``/``y_t`` (B×n in {0, 1}), X_r = ``x_ref``, r = ``r``, att_diff^{s→t} = ``d_st`` = y_t − y_s,
att_diff^{t→s} = ``d_ts`` = −d_st, S_rand/S_ref/S_int = ``codes["rand"/"ref"/"int"]``, X_g = ``fakes[...]``;
λcls, λrec, λcyc, λsty, λak, λms = ``lambda_cls``, ``lambda_rec``, ``lambda_cyc``, ``lambda_sty``,
``lambda_ak``, ``lambda_ms``.

Syntheses (../shared/specs/methods.md §5):
- label-based (LEM): ``S_rand = M(r, att_diff^{s→t}) + E(X_s, att_diff^{t→s})``
- reference-based (REM): ``S_ref = E(X_r, att_diff^{s→t}) + E(X_s, att_diff^{t→s})``, X_r a random
  permutation of the batch (:func:`draw_references`) and Y_t its labels
- interpolated: ``S_int = α·S_rand + (1 − α)·S_ref``, α ~ U(0, 1) per sample; X_g = G(X_s, S).

Losses (weights from the supplement Sec. C, reductions from the authors' code as recorded in methods.md §5):
- D: ``L_adv + λgp·GP + λcls_real·BCE(C(X_s), Y_s)``, WGAN-GP averaged over the syntheses.
- G: ``λadv·L_adv + λcls·L_cls + λrec·L_rec + λcyc·L_cyc + λsty·L_sty + λak·L_ak + λms·L_ms`` with
  L_cls = BCE(C(X_g), Y_t) over the syntheses; L_rec = |G(X_s, S(att_diff = 0)) − X_s|₁ through both paths;
  latent cycle L_cyc = |S_rand − (E(sg(X_rand), att_diff^{s→t}) + E(X_s, att_diff^{t→s}))|₁ and the same for
  S_ref; style closeness L_sty = |S_rand − S_ref|₁; attribute keeping (supplement Sec. A, Eqs. 10–11)
  L_ak = |E(X_g, att_ak) − E(X_s, att_ak)|₁ with att_ak = (1 − |Y_t − Y_s|)⊙(1 − 2Y_s) (:func:`attribute_keeping`);
  mode seeking L_ms = |r₁ − r|₁ / (|G(X_s, S_rand(r₁)) − G(X_s, S_rand(r))|₁ + 1e-5).
- D every iteration, G every ``n_critic``-th (5 critic steps per generator step, first iteration included).

**[inferred]** choices, each a config value: the reference path of L_rec encodes X_r with att_diff = 0
(``rec_reference=reference``; ``source`` encodes X_s twice); the two L_rec paths are averaged, as are the two
L_cyc terms; L_ak is applied to the label-based output (the supplement's X_g^l), or to the reference-based one
when the label mode is off; BCE is averaged over attributes (as in AttGAN/STGAN, whose λ 10/100 these are).

Switches: ``modes`` (``[label, reference]``; one alone trains that path only — no S_int, no L_sty; L_ms needs the
label mode), ``interpolation`` (S_int), ``references`` (``permute`` the batch as in the code, or ``batch``: the
datamodule's ``ref``/``target_attrs``); any λ = 0 skips its term.

Use: :meth:`Bridge.translate` takes target labels (``num_codes`` random codes for diverse results, ``scale`` on
att_diff — 1.5 at test time in the code) or a reference image (``reference=``), or both with ``alpha`` for S_int.
Source (and reference) labels come from the batch; missing ones are read off the model's own classifier C.
``sample_target(batch)`` asks for ``batch["target_attrs"]`` label-based. ``metrics.bridge_eval.bridge_report``
scores both modes.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from lightning_modules.base import GANModule
from lightning_modules.losses import (
    attribute_classification_loss,
    discriminator_adv_loss,
    generator_adv_loss,
    gradient_penalty,
    mode_seeking_loss,
)
from suite.errors import ConfigError

MODES = ("label", "reference")


# ------------------------------------------------------------------------------------------------ labels
def attribute_difference(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """att_diff^{s→t} = Y_t − Y_s ∈ {−1, 0, 1}^n: +1 adds an attribute, −1 removes it, 0 leaves it alone."""
    return target.float() - source.float()


def attribute_keeping(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """att_ak^{Y_s↓} = (1 − |Y_t − Y_s|) ⊙ (1 − 2·Y_s) (supplement Eq. 11, Fig. 1).

    Part A = 1 − |att_diff| selects the attributes the translation keeps; part B = 1 − 2·Y_s is the att_diff that
    would flip each of them (+1 where Y_s = 0, −1 where Y_s = 1), the form in which E extracts an attribute.
    Their product asks E for exactly the kept attributes; changed ones are 0.
    """
    source, target = source.float(), target.float()
    return (1 - (target - source).abs()) * (1 - 2 * source)


def draw_references(batch_size: int, device: torch.device | str | None = None,
                    generator: torch.Generator | None = None) -> torch.Tensor:
    """A random permutation of ``range(batch_size)``: reference i of the batch is image ``perm[i]``."""
    return torch.randperm(batch_size, device=device, generator=generator)


# ------------------------------------------------------------------------------------------------ module
class Bridge(GANModule):
    """Label- and reference-based multi-attribute translation. See the module docstring for the paper mapping.

    Args (beyond ``GANModule``'s):
        generator, mapping, encoder, discriminator: ``_target_`` configs (``nets.bridge``).
        modes: the syntheses trained, a subset of ``[label, reference]``.
        interpolation: also train on S_int (needs both modes).
        references: ``permute`` (X_r = a random permutation of the batch, the code) or ``batch`` (the
            datamodule's ``ref`` with ``target_attrs``).
        latent_dim: d, the length of r (16). code_channels: S's channels (32). code_size: S's side (None:
            image_size/2, i.e. 64 at 128 px).
        lambda_adv 1, lambda_gp 10, lambda_cls 10 (fakes, G step), lambda_cls_real 1 (reals, D step),
            lambda_rec 100, lambda_cyc 100, lambda_sty 50, lambda_ak 100, lambda_ms 0.005 (supplement Sec. C).
        ms_eps: the 1e-5 of L_ms.  n_critic: G every n_critic-th iteration (5).
        rec_reference: ``reference`` | ``source`` — the image encoded on L_rec's reference path **[inferred]**.
        test_diff_scale: the scale on att_diff in ``translate`` (1.5 in the authors' test code).
    """

    supported_views = ("multi_attribute",)
    nets_package = "nets.bridge"

    def __init__(
        self,
        generator: dict,
        mapping: dict,
        encoder: dict,
        discriminator: dict,
        modes: list[str] | tuple[str, ...] = MODES,
        interpolation: bool = True,
        references: str = "permute",
        latent_dim: int = 16,
        code_channels: int = 32,
        code_size: int | None = None,
        lambda_adv: float = 1.0,
        lambda_gp: float = 10.0,
        lambda_cls: float = 10.0,
        lambda_cls_real: float = 1.0,
        lambda_rec: float = 100.0,
        lambda_cyc: float = 100.0,
        lambda_sty: float = 50.0,
        lambda_ak: float = 100.0,
        lambda_ms: float = 0.005,
        ms_eps: float = 1e-5,
        n_critic: int = 5,
        rec_reference: str = "reference",
        test_diff_scale: float = 1.5,
        **common: Any,
    ) -> None:
        super().__init__(**common)
        self.save_hyperparameters()
        self.modes = self._check_modes(modes)
        self.check_n_critic(n_critic)
        if references not in ("permute", "batch"):
            raise ConfigError(f"method.references must be permute or batch, got {references!r}.")
        if rec_reference not in ("reference", "source"):
            raise ConfigError(f"method.rec_reference must be reference or source, got {rec_reference!r}.")
        self.attr_names = list(self.require_info("attr_names", "named binary attributes (the multi_attribute view)"))
        self.num_attrs = len(self.attr_names)
        self.image_size = int(self.require_info("image_size", "the image size"))
        self.code_size = int(code_size) if code_size else self.image_size // 2
        self.interpolation = bool(interpolation) and len(self.modes) == 2

        self.G = self.build_named_net("generator", generator, image_size=self.image_size, code_channels=code_channels)
        self.M = self.build_named_net("mapping", mapping, num_attrs=self.num_attrs, code_size=self.code_size,
                             code_channels=code_channels, latent_dim=latent_dim)
        self.E = self.build_named_net("encoder", encoder, num_attrs=self.num_attrs, image_size=self.image_size,
                             code_size=self.code_size, code_channels=code_channels)
        self.D = self.build_named_net("discriminator", discriminator, image_size=self.image_size, num_attrs=self.num_attrs)
        self.build_ema(["G", "M", "E"])

    # ----------------------------------------------------------------------------------------- construction
    @staticmethod
    def _check_modes(modes: Any) -> tuple[str, ...]:
        modes = (modes,) if isinstance(modes, str) else tuple(modes or ())
        if not modes or any(m not in MODES for m in modes) or len(set(modes)) != len(modes):
            raise ConfigError(f"method.modes must be a non-empty subset of {list(MODES)}, got {list(modes)}.")
        return tuple(m for m in MODES if m in modes)

    @property
    def syntheses(self) -> list[str]:
        """The fakes trained on: ``rand`` (label mode), ``ref`` (reference mode), ``int`` (interpolation)."""
        on = {"rand": "label" in self.modes, "ref": "reference" in self.modes, "int": self.interpolation}
        return [k for k, used in on.items() if used]

    def optimizer_groups(self) -> dict[str, Any]:
        # G, M and E minimise one objective, so they share one optimizer (all lr 2e-4 in the paper)
        return {"G": [*self.G.parameters(), *self.M.parameters(), *self.E.parameters()], "D": list(self.D.parameters())}

    # ----------------------------------------------------------------------------------------- codes
    def encode_many(self, pairs: list[tuple[torch.Tensor, torch.Tensor]], E: nn.Module | None = None) -> list[torch.Tensor]:
        """E(X, att_diff) for several (X, att_diff) pairs in one batched pass (IN is per sample, so it is exact)."""
        E = E or self.E
        out = E(torch.cat([x for x, _ in pairs]), torch.cat([d for _, d in pairs]))
        return list(out.split([x.shape[0] for x, _ in pairs]))

    def generate_many(self, x: torch.Tensor, codes: list[torch.Tensor], G: nn.Module | None = None) -> list[torch.Tensor]:
        """G(X_s, S) for several codes of the same sources in one batched pass."""
        G = G or self.G
        out = G(x.repeat(len(codes), 1, 1, 1), torch.cat(codes))
        return list(out.split(x.shape[0]))

    def noise(self, batch_size: int, like: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """r ~ N(0, I), B×latent_dim."""
        return torch.randn(batch_size, self.hparams.latent_dim, device=like.device, dtype=like.dtype, generator=generator)

    def synthesis_codes(self, x: torch.Tensor, x_ref: torch.Tensor, d_st: torch.Tensor, r: torch.Tensor) -> dict[str, torch.Tensor]:
        """The training codes: ``source`` = E(X_s, att_diff^{t→s}), and S_rand / S_ref / S_int for the modes on."""
        pairs = [(x, -d_st)] + ([(x_ref, d_st)] if "reference" in self.modes else [])
        encoded = self.encode_many(pairs)
        codes = {"source": encoded[0]}
        if "label" in self.modes:
            codes["rand"] = self.M(r, d_st) + codes["source"]
        if "reference" in self.modes:
            codes["ref"] = encoded[1] + codes["source"]
        if self.interpolation:
            alpha = torch.rand(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype)
            codes["int"] = alpha * codes["rand"] + (1 - alpha) * codes["ref"]
        return codes

    # ----------------------------------------------------------------------------------------- iteration
    def _references(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(X_s, Y_s, X_r, Y_t)."""
        x, y_s = batch["image"], batch["attrs"].to(batch["image"].dtype)
        if self.hparams.references == "batch":
            return x, y_s, batch["ref"], batch["target_attrs"].to(x.dtype)
        perm = draw_references(x.shape[0], x.device)
        return x, y_s, x[perm], y_s[perm]

    def train_iteration(self, batch: dict) -> dict[str, torch.Tensor]:
        hp = self.hparams
        x, y_s, x_ref, y_t = self._references(batch)
        d_st = attribute_difference(y_s, y_t).to(x.dtype)
        syntheses = self.syntheses
        n_fakes = len(syntheses)

        def discriminator_step():
            with torch.no_grad():
                codes = self.synthesis_codes(x, x_ref, d_st, self.noise(x.shape[0], x))
                fakes = torch.cat(self.generate_many(x, [codes[k] for k in syntheses]))
            real = self.D(x)
            parts = {
                "adv": discriminator_adv_loss(real.src, self.D.critic(fakes), "wgan"),  # mean over the syntheses
                "cls": attribute_classification_loss(real.cls, y_s),  # C on real images
            }
            total = hp.lambda_adv * parts["adv"] + hp.lambda_cls_real * parts["cls"]
            if hp.lambda_gp > 0:
                parts["gp"] = gradient_penalty(self.D.critic, x.repeat(n_fakes, 1, 1, 1), fakes)
                total = total + hp.lambda_gp * parts["gp"]
            return total, parts

        logs = self.optimize("D", discriminator_step)
        if self.iteration % hp.n_critic:
            return logs
        logs.update(self.optimize("G", lambda: self.generator_loss(x, y_s, x_ref, y_t, d_st, syntheses)))
        return logs

    def generator_loss(self, x: torch.Tensor, y_s: torch.Tensor, x_ref: torch.Tensor, y_t: torch.Tensor,
                       d_st: torch.Tensor, syntheses: list[str]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The G step's objective (module docstring) and its named parts."""
        hp = self.hparams
        B, zero = x.shape[0], torch.zeros_like(d_st)
        r = self.noise(B, x)
        codes = self.synthesis_codes(x, x_ref, d_st, r)
        labelled = "label" in self.modes
        # reconstruction codes: att_diff = 0 through each path
        rec_image = x_ref if hp.rec_reference == "reference" else x
        rec_pairs = [(x, zero)] + ([(rec_image, zero)] if "reference" in self.modes else [])
        rec_enc = self.encode_many(rec_pairs) if hp.lambda_rec > 0 else []
        rec_codes = []
        if rec_enc and labelled:
            rec_codes.append(self.M(r, zero) + rec_enc[0])
        if rec_enc and "reference" in self.modes:
            rec_codes.append(rec_enc[1] + rec_enc[0])
        ms = labelled and hp.lambda_ms > 0
        r1 = self.noise(B, x) if ms else None
        extra = [self.M(r1, d_st) + codes["source"]] if ms else []
        images = self.generate_many(x, [codes[k] for k in syntheses] + rec_codes + extra)
        fakes = dict(zip(syntheses, images))
        recs = images[len(syntheses): len(syntheses) + len(rec_codes)]

        fake_all = torch.cat([fakes[k] for k in syntheses])
        out = self.D(fake_all)
        parts = {
            "adv": generator_adv_loss(out.src, "wgan"),
            "cls": attribute_classification_loss(out.cls, y_t.repeat(len(syntheses), 1)),
        }
        total = hp.lambda_adv * parts["adv"] + hp.lambda_cls * parts["cls"]
        if recs:
            parts["rec"] = torch.stack([F.l1_loss(rec, x) for rec in recs]).mean()
            total = total + hp.lambda_rec * parts["rec"]
        cyc_keys = [k for k in ("rand", "ref") if k in fakes] if hp.lambda_cyc > 0 else []
        ak_key = "rand" if labelled else "ref"
        att_ak = attribute_keeping(y_s, y_t).to(x.dtype)
        pairs = [(fakes[k].detach(), d_st) for k in cyc_keys]  # generated images re-encoded without gradient to G
        if hp.lambda_ak > 0:
            pairs += [(fakes[ak_key], att_ak), (x, att_ak)]
        encoded = self.encode_many(pairs) if pairs else []
        if cyc_keys:
            parts["cyc"] = torch.stack(
                [F.l1_loss(codes[k], enc + codes["source"]) for k, enc in zip(cyc_keys, encoded)]
            ).mean()
            total = total + hp.lambda_cyc * parts["cyc"]
        if hp.lambda_ak > 0:
            parts["ak"] = F.l1_loss(encoded[-2], encoded[-1])  # supplement Eq. 10
            total = total + hp.lambda_ak * parts["ak"]
        if "rand" in codes and "ref" in codes and hp.lambda_sty > 0:
            parts["sty"] = F.l1_loss(codes["rand"], codes["ref"])
            total = total + hp.lambda_sty * parts["sty"]
        if ms:
            parts["ms"] = mode_seeking_loss(r1, r, images[-1], fakes["rand"], hp.ms_eps)
            total = total + hp.lambda_ms * parts["ms"]
        return total, parts

    # ----------------------------------------------------------------------------------------- translate
    def sample_target(self, batch: dict) -> dict[str, torch.Tensor]:
        """Label-based translation of each image to ``batch["target_attrs"]`` (its ``ref``'s attributes)."""
        return {"target_attrs": batch["target_attrs"], "source_attrs": batch["attrs"]}

    def extra_evaluation(self, loader: Any, out_dir: Any, *, max_images: int | None = None,
                         classifier: Any = None) -> dict[str, float]:
        """Both modes' per-attribute target accuracy, diversity and figures (``metrics.bridge_eval``); needs the
        multi-label evaluation classifier."""
        if classifier is None:
            return {}
        from metrics.bridge_eval import bridge_report

        return bridge_report(self, loader, classifier, out_dir, max_images=max_images)

    @torch.no_grad()
    def predict_attributes(self, images: torch.Tensor) -> torch.Tensor:
        """C's verdict (B×n in {0, 1}) — the labels of an image that came without them."""
        return (self.D(images).cls > 0).to(images.dtype)

    @torch.no_grad()
    def translate(
        self,
        images: torch.Tensor,
        target: Any = None,
        *,
        source_attrs: torch.Tensor | None = None,
        reference: torch.Tensor | None = None,
        reference_attrs: torch.Tensor | None = None,
        num_codes: int = 1,
        scale: float | None = None,
        noise: torch.Tensor | None = None,
        alpha: float | torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        **kwargs: Any,
    ) -> dict[str, torch.Tensor]:
        """Translate ``images`` (B×3×H×W in [−1, 1]).

        Label-based: ``target`` = the target attributes (B×n or n, {0, 1}); ``num_codes`` K random codes r
        (or ``noise``, K×B×d or B×d) give K results. Reference-based: ``reference`` = B (or 1) images, whose
        labels ``reference_attrs`` are the target. Both with ``alpha``: S_int = α·S_rand + (1 − α)·S_ref.
        ``target`` may also be the dict of :meth:`sample_target` (keys ``target_attrs``, ``source_attrs``,
        ``reference``, ``reference_attrs``). Labels not given are predicted by C. ``scale`` multiplies att_diff
        (default ``test_diff_scale``). Without ``generator``/``noise`` the codes are drawn from a generator
        seeded with ``method.seed``, so repeated calls agree.

        Returns ``image`` (B×3×H×W, the first code's result), ``images`` (K×B×3×H×W) and ``code`` (S of the
        first code).
        """
        if isinstance(target, dict):
            source_attrs = target.get("source_attrs", source_attrs)
            reference = target.get("reference", reference)
            reference_attrs = target.get("reference_attrs", reference_attrs)
            target = target.get("target_attrs")
        if target is None and reference is None:
            raise ConfigError("translate needs target attributes (label-based) or a reference image (reference-based).")
        B, dtype, dev = images.shape[0], images.dtype, images.device
        scale = self.hparams.test_diff_scale if scale is None else float(scale)
        G, M, E = self.inference_net("G"), self.inference_net("M"), self.inference_net("E")
        y_s = self.predict_attributes(images) if source_attrs is None else self._labels(source_attrs, B, images)

        label_codes: list[torch.Tensor] = []
        if target is not None:
            d_st = attribute_difference(y_s, self._labels(target, B, images)).to(dtype) * scale
            source = E(images, -d_st)
            r = self._translate_noise(noise, num_codes, B, images, generator)
            label_codes = [M(r_k, d_st) + source for r_k in r]
        ref_code = None
        if reference is not None:
            reference = reference.to(dev, dtype).expand(B, -1, -1, -1)
            y_r = self.predict_attributes(reference) if reference_attrs is None else self._labels(reference_attrs, B, images)
            d_ref = attribute_difference(y_s, y_r).to(dtype) * scale
            ref_code = sum(self.encode_many([(reference, d_ref), (images, -d_ref)], E))
        if label_codes and ref_code is not None:
            if alpha is None:
                raise ConfigError("translate got both target attributes and a reference; pass alpha for S_int.")
            a = torch.as_tensor(alpha, device=dev, dtype=dtype).reshape(-1, 1, 1, 1)
            codes = [a * c + (1 - a) * ref_code for c in label_codes]
        else:
            codes = label_codes or [ref_code]
        outs = torch.stack(self.generate_many(images, codes, G))
        return {"image": outs[0], "images": outs, "code": codes[0]}

    def _labels(self, labels: Any, batch_size: int, like: torch.Tensor) -> torch.Tensor:
        y = torch.as_tensor(labels, device=like.device).to(like.dtype)
        if y.dim() == 1:
            y = y.unsqueeze(0)
        if y.shape[-1] != self.num_attrs:
            raise ConfigError(f"attribute vectors must have {self.num_attrs} entries ({', '.join(self.attr_names)}), got {tuple(y.shape)}.")
        return y.expand(batch_size, -1)

    def _translate_noise(self, noise: torch.Tensor | None, num_codes: int, batch_size: int, like: torch.Tensor,
                         generator: torch.Generator | None) -> torch.Tensor:
        if noise is not None:
            r = torch.as_tensor(noise, device=like.device, dtype=like.dtype)
            return r.unsqueeze(0) if r.dim() == 2 else r
        if num_codes < 1:
            raise ConfigError(f"num_codes must be at least 1, got {num_codes}.")
        if generator is None:
            generator = torch.Generator(device=like.device).manual_seed(int(self.seed))
        return torch.randn(num_codes, batch_size, self.hparams.latent_dim, device=like.device, dtype=like.dtype,
                           generator=generator)
