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

Losses (weights from the supplement Sec. C and the authors' ``train_arch9.py``; docs/fidelity/bridge.md §3):
- D: ``L_adv + λgp·GP + λcls_real·BCE(C(X_s), Y_s)``, WGAN-GP averaged over the syntheses.
- G: ``λadv·L_adv + λcls·L_cls + λrec·L_rec + L_latent + λsty·L_sty + λms·L_ms`` with
  L_cls = BCE(C(X_g), Y_t) over the syntheses; L_rec = |G(X_s, S(att_diff = 0)) − X_s|₁ through both paths;
  latent cycles L_cyc^k = |S_k − (E(sg(X_k), att_diff^{s→t}) + E(X_s, att_diff^{t→s}))|₁ for k = rand, ref;
  attribute keeping (supplement Sec. A, Eqs. 10–11) L_ak = |E(X_rand, att_ak) − E(X_s, att_ak)|₁ with
  att_ak = (1 − |Y_t − Y_s|)⊙(1 − 2Y_s) (:func:`attribute_keeping`); style closeness L_sty = |S_rand − S_ref|₁;
  mode seeking L_ms = |r₁ − r|₁ / (|sg(G(X_s, S_rand(r₁))) − G(X_s, S_rand(r))|₁ + 1e-5), r₁ fresh N(0, I).
  ``loss_weighting: authors`` (default): L_latent = λcyc_ak · mean(L_cyc^rand, L_cyc^ref, L_ak) with
  λcyc_ak = 50 (the code's ``g_loss_cyc · rec_loss_weight/2``, ≈ 16.7 per term); ``paper``: the supplement's
  per-term weights, L_latent = λcyc · mean_k L_cyc^k + λak · L_ak (100, 100). ``ms_stop_gradient`` (on, the
  code's ``tf.stop_gradient(xg_rand1)``) stops L_ms's gradient through G(r₁).
- The random code r of the label path (``random_code``): ``memory`` (the authors') reads the reference image's
  row of a per-image code memory r_M and steps it (``lightning_modules.bridge_memory``: D steps use the step
  without storing it, the G step writes it back); ``fresh``: r ~ N(0, I) at every step.
- D every iteration, G every ``n_critic``-th (5 critic steps per generator step, first iteration included).

**[inferred]** choices, each a config value: the two L_rec paths are averaged, as in the code; L_ak is applied
to the label-based output (the code's ``xg_rand``), or to the reference-based one when the label mode is off;
BCE is averaged over attributes (``tf.losses.sigmoid_cross_entropy``); ``rec_reference=source`` encodes X_s
instead of X_r on L_rec's reference path (``reference``, the code's ``Encoder(xt, 0)``, is the default).

Switches: ``modes`` (``[label, reference]``; one alone trains that path only — no S_int, no L_sty; L_ms and the
memory need the label mode), ``interpolation`` (S_int), ``references`` (``permute`` the batch as in the code, or
``batch``: the datamodule's ``ref``/``target_attrs``/``ref_index``), ``random_code``, ``loss_weighting``,
``ms_stop_gradient``, ``architecture`` (``authors`` | ``stargan_v2``, passed to every net, ``nets.bridge``);
any λ = 0 skips its term.

Use: :meth:`Bridge.translate` takes target labels (``num_codes`` fresh codes, att_diff × ``scale``) or a
reference image, or both with ``alpha`` for S_int; missing source labels are read off C.
``metrics.bridge_eval.bridge_report`` scores both modes; ``suite.protocols.bridge`` gives Tables 1–3.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from lightning_modules.base import GANModule
from lightning_modules.bridge_memory import CodeMemory, matching_gradient
from lightning_modules.losses import (
    attribute_classification_loss,
    discriminator_adv_loss,
    generator_adv_loss,
    mode_seeking_loss,
)
from nets.bridge import VARIANTS
from suite.errors import ConfigError, DatasetError

MODES = ("label", "reference")
REFERENCES = ("permute", "batch")
RANDOM_CODES = ("memory", "fresh")
WEIGHTINGS = ("authors", "paper")


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
class Pairing(NamedTuple):
    """One training step's pairs: X_s, Y_s, X_r, Y_t, att_diff^{s→t} and the reference's row in the training
    split (None when the batch does not carry one)."""

    x: torch.Tensor
    y_s: torch.Tensor
    x_ref: torch.Tensor
    y_t: torch.Tensor
    d_st: torch.Tensor
    ref_index: torch.Tensor | None


class Bridge(GANModule):
    """Label- and reference-based multi-attribute translation. See the module docstring for the paper mapping.

    Args (beyond ``GANModule``'s):
        generator, mapping, encoder, discriminator: ``_target_`` configs (``nets.bridge``).
        architecture: ``authors`` (``models_712.py``) or ``stargan_v2`` (the earlier inferred blocks), given to
            every net as ``variant``.
        modes: the syntheses trained, a subset of ``[label, reference]``.
        interpolation: also train on S_int (needs both modes).
        references: ``permute`` (X_r = a random permutation of the batch, the code) or ``batch`` (the
            datamodule's ``ref`` with ``target_attrs`` and ``ref_index``).
        random_code: ``memory`` (the authors' per-image r_M) or ``fresh`` (N(0, I) every step).
        code_memory: ``{size, scale, offset, clip, direction}`` of r_M (size null: the training split's size;
            0.9, 5, 1, ascent as in the code; :mod:`lightning_modules.bridge_memory`).
        latent_dim: d (16). code_channels: S's channels (32). code_size: S's side (None: image_size/2).
        loss_weighting: ``authors`` (λcyc_ak on the mean of the two cycles and L_ak) or ``paper`` (λcyc, λak).
        lambda_adv 1, lambda_gp 10, lambda_cls 10 (fakes, G step), lambda_cls_real 1 (reals, D step),
            lambda_rec 100, lambda_cyc 100, lambda_sty 50, lambda_ak 100, lambda_ms 0.005 (supplement Sec. C),
            lambda_cyc_ak 50 (the code). Under ``authors`` weighting λcyc and λak only switch their terms on/off.
        ms_eps: the 1e-5 of L_ms. ms_stop_gradient: no gradient through G(r₁) in L_ms (the code).
        n_critic: G every n_critic-th iteration (5). rec_reference: ``reference`` | ``source`` (L_rec).
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
        architecture: str = "authors",
        modes: list[str] | tuple[str, ...] = MODES,
        interpolation: bool = True,
        references: str = "permute",
        random_code: str = "memory",
        code_memory: dict | None = None,
        latent_dim: int = 16,
        code_channels: int = 32,
        code_size: int | None = None,
        loss_weighting: str = "authors",
        lambda_adv: float = 1.0,
        lambda_gp: float = 10.0,
        lambda_cls: float = 10.0,
        lambda_cls_real: float = 1.0,
        lambda_rec: float = 100.0,
        lambda_cyc: float = 100.0,
        lambda_sty: float = 50.0,
        lambda_ak: float = 100.0,
        lambda_cyc_ak: float = 50.0,
        lambda_ms: float = 0.005,
        ms_eps: float = 1e-5,
        ms_stop_gradient: bool = True,
        n_critic: int = 5,
        rec_reference: str = "reference",
        test_diff_scale: float = 1.5,
        **common: Any,
    ) -> None:
        super().__init__(**common)
        self.save_hyperparameters()
        self.modes = self._check_modes(modes)
        self.check_n_critic(n_critic)
        for key, value, valid in (("architecture", architecture, VARIANTS), ("references", references, REFERENCES),
                                  ("random_code", random_code, RANDOM_CODES), ("loss_weighting", loss_weighting, WEIGHTINGS),
                                  ("rec_reference", rec_reference, ("reference", "source"))):
            if value not in valid:
                raise ConfigError(f"method.{key} must be one of {', '.join(valid)}, got {value!r}.")
        self.attr_names = list(self.require_info("attr_names", "named binary attributes (the multi_attribute view)"))
        self.num_attrs = len(self.attr_names)
        self.image_size = int(self.require_info("image_size", "the image size"))
        self.code_size = int(code_size) if code_size else self.image_size // 2
        self.interpolation = bool(interpolation) and len(self.modes) == 2

        v = {"variant": architecture}
        self.G = self.build_named_net("generator", generator, image_size=self.image_size, code_channels=code_channels, **v)
        self.M = self.build_named_net("mapping", mapping, num_attrs=self.num_attrs, code_size=self.code_size,
                                      code_channels=code_channels, latent_dim=latent_dim, **v)
        self.E = self.build_named_net("encoder", encoder, num_attrs=self.num_attrs, image_size=self.image_size,
                                      code_size=self.code_size, code_channels=code_channels, **v)
        self.D = self.build_named_net("discriminator", discriminator, image_size=self.image_size,
                                      num_attrs=self.num_attrs, **v)
        self.memory = self._build_memory(code_memory) if random_code == "memory" and "label" in self.modes else None
        self._memory_write: tuple[torch.Tensor, torch.Tensor] | None = None
        self.build_ema(["G", "M", "E"])

    # ----------------------------------------------------------------------------------------- construction
    @staticmethod
    def _check_modes(modes: Any) -> tuple[str, ...]:
        modes = (modes,) if isinstance(modes, str) else tuple(modes or ())
        if not modes or any(m not in MODES for m in modes) or len(set(modes)) != len(modes):
            raise ConfigError(f"method.modes must be a non-empty subset of {list(MODES)}, got {list(modes)}.")
        return tuple(m for m in MODES if m in modes)

    def _build_memory(self, cfg: dict | None) -> CodeMemory:
        cfg = dict(cfg or {})
        size = cfg.pop("size", None)
        if size is None:
            sizes = self.require_info("split_sizes", "the training split's size for the code memory (or set "
                                      "method.code_memory.size, or method.random_code=fresh)")
            size = int(sizes["train"])
        return CodeMemory(size, self.hparams.latent_dim, **cfg)

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

    def encode_named(self, pairs: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> dict[str, torch.Tensor]:
        """:meth:`encode_many` with each result under its request's name."""
        return dict(zip(pairs, self.encode_many(list(pairs.values())))) if pairs else {}

    def generate_named(self, x: torch.Tensor, codes: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """:meth:`generate_many` with each image under its code's name."""
        return dict(zip(codes, self.generate_many(x, list(codes.values()))))

    def noise(self, batch_size: int, like: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """r ~ N(0, I), B×latent_dim."""
        return torch.randn(batch_size, self.hparams.latent_dim, device=like.device, dtype=like.dtype, generator=generator)

    def random_code(self, p: Pairing, reference_code: torch.Tensor | None = None) -> torch.Tensor:
        """The label path's r: the memory step from the reference's row of r_M (``random_code=memory``; nothing
        is stored here) or fresh N(0, I). ``reference_code``: E(X_r, att_diff^{s→t}) when already computed."""
        if self.memory is None:
            return self.noise(p.x.shape[0], p.x)
        if p.ref_index is None:
            raise DatasetError("method.random_code=memory needs each reference's training row (batch['index'], "
                               "or 'ref_index' with references=batch); set method.random_code=fresh.")
        r0 = self.memory.read(p.ref_index, check_range=self.sync_allowed()).to(p.x.dtype)
        if reference_code is None:
            reference_code = self.E(p.x_ref, p.d_st)
        grad = matching_gradient(r0, reference_code, lambda r: self.M(r, p.d_st))
        return self.memory.step(r0, grad).to(p.x.dtype)

    def synthesis_codes(self, p: Pairing, r: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """The training codes: ``source`` = E(X_s, att_diff^{t→s}); with the reference mode ``reference`` =
        E(X_r, att_diff^{s→t}) and S_ref = ``ref``; with the label mode ``r`` (:meth:`random_code` unless given)
        and S_rand = ``rand``; ``int`` = S_int when interpolating."""
        pairs = {"source": (p.x, -p.d_st)}
        if "reference" in self.modes:
            pairs["reference"] = (p.x_ref, p.d_st)
        codes = self.encode_named(pairs)
        if "reference" in self.modes:
            codes["ref"] = codes["reference"] + codes["source"]
        if "label" in self.modes:
            codes["r"] = self.random_code(p, codes.get("reference")) if r is None else r
            codes["rand"] = self.M(codes["r"], p.d_st) + codes["source"]
        if self.interpolation:
            alpha = torch.rand(p.x.shape[0], 1, 1, 1, device=p.x.device, dtype=p.x.dtype)
            codes["int"] = alpha * codes["rand"] + (1 - alpha) * codes["ref"]
        return codes

    # ----------------------------------------------------------------------------------------- iteration
    def _references(self, batch: dict) -> Pairing:
        """X_s, Y_s, X_r, Y_t, att_diff and the reference's row (``index`` permuted, or ``ref_index``)."""
        x, y_s = batch["image"], batch["attrs"].to(batch["image"].dtype)
        if self.hparams.references == "batch":
            x_ref, y_t, ref_index = batch["ref"], batch["target_attrs"].to(x.dtype), batch.get("ref_index")
        else:
            perm = draw_references(x.shape[0], x.device)
            index = batch.get("index")
            x_ref, y_t, ref_index = x[perm], y_s[perm], None if index is None else index[perm]
        return Pairing(x, y_s, x_ref, y_t, attribute_difference(y_s, y_t).to(x.dtype), ref_index)

    def train_iteration(self, batch: dict) -> dict[str, torch.Tensor]:
        hp = self.hparams
        p = self._references(batch)
        syntheses = self.syntheses
        n_fakes = len(syntheses)

        # The D step's syntheses are made before it, without gradients and eagerly: the label path's memory step
        # differentiates through M (torch.autograd.grad), which stays out of the compiled step. The step is taken but
        # not stored (as the authors' D runs); with the memory on, the G step reuses its code — E, M and r_M do not
        # change during the D step, so it is the very code the G step would compute (fresh noise is drawn anew).
        with torch.no_grad():
            codes = self.synthesis_codes(p)
            fakes = torch.cat(self.generate_many(p.x, [codes[k] for k in syntheses]))
        r = codes["r"] if self.memory is not None and "r" in codes else None

        def discriminator_step():
            real = self.D(p.x)
            parts = {
                "adv": discriminator_adv_loss(real.src, self.D.critic(fakes), "wgan"),  # mean over the syntheses
                "cls": attribute_classification_loss(real.cls, p.y_s),  # C on real images
            }
            return hp.lambda_adv * parts["adv"] + hp.lambda_cls_real * parts["cls"], parts

        logs = self.optimize("D", discriminator_step, self.wgan_penalty(self.D.critic, lambda: (p.x.repeat(n_fakes, 1, 1, 1), fakes)))
        if self.iteration % hp.n_critic:
            return logs
        logs.update(self.optimize("G", lambda: self.generator_loss(p, syntheses, r)))
        if self._memory_write is not None:  # the code's tower_assign, run with the G step
            self.memory.write(*self._memory_write)
            self._memory_write = None
        return logs

    def generator_loss(self, p: Pairing, syntheses: list[str],
                       r: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The G step's objective (module docstring), term by term, and its named parts. ``r``: the label path's
        random code when already taken (else :meth:`random_code`). Leaves the stepped memory codes in
        ``_memory_write`` for :meth:`train_iteration` to store."""
        hp = self.hparams
        x, zero = p.x, torch.zeros_like(p.d_st)
        codes = self.synthesis_codes(p, r)
        labelled, referenced = "label" in self.modes, "reference" in self.modes
        if self.memory is not None:
            self._memory_write = (p.ref_index, codes["r"].detach())

        # every image of the step in one batched pass of G: the syntheses, L_rec's, and L_ms's second code
        requests = {k: codes[k] for k in syntheses}
        if hp.lambda_rec > 0:  # att_diff = 0 through each path
            rec_image = p.x_ref if hp.rec_reference == "reference" else x
            rec = self.encode_named({"source": (x, zero), **({"reference": (rec_image, zero)} if referenced else {})})
            if labelled:
                requests["rec_rand"] = self.M(codes["r"], zero) + rec["source"]
            if referenced:
                requests["rec_ref"] = rec["reference"] + rec["source"]
        ms = labelled and hp.lambda_ms > 0
        if ms:
            r1 = self.noise(x.shape[0], x)
            requests["ms"] = self.M(r1, p.d_st) + codes["source"]
        images = self.generate_named(x, requests)

        out = self.D(torch.cat([images[k] for k in syntheses]))
        parts = {
            "adv": generator_adv_loss(out.src, "wgan"),
            "cls": attribute_classification_loss(out.cls, p.y_t.repeat(len(syntheses), 1)),
        }
        total = hp.lambda_adv * parts["adv"] + hp.lambda_cls * parts["cls"]
        recs = [images[k] for k in ("rec_rand", "rec_ref") if k in images]
        if recs:
            parts["rec"] = torch.stack([F.l1_loss(r, x) for r in recs]).mean()
            total = total + hp.lambda_rec * parts["rec"]

        # E on the generated images: the latent cycles (no gradient to G) and attribute keeping (Eq. 10)
        cyc_keys = [k for k in ("rand", "ref") if k in images] if hp.lambda_cyc > 0 else []
        att_ak = attribute_keeping(p.y_s, p.y_t).to(x.dtype)
        ak_key = "rand" if labelled else "ref"
        pairs = {f"cyc_{k}": (images[k].detach(), p.d_st) for k in cyc_keys}
        if hp.lambda_ak > 0:
            pairs.update(ak_fake=(images[ak_key], att_ak), ak_source=(x, att_ak))
        enc = self.encode_named(pairs)
        cycles = [F.l1_loss(codes[k], enc[f"cyc_{k}"] + codes["source"]) for k in cyc_keys]
        if cycles:
            parts["cyc"] = torch.stack(cycles).mean()
        if hp.lambda_ak > 0:
            parts["ak"] = F.l1_loss(enc["ak_fake"], enc["ak_source"])
        total = total + self._latent_loss(parts, cycles)

        if "rand" in codes and "ref" in codes and hp.lambda_sty > 0:
            parts["sty"] = F.l1_loss(codes["rand"], codes["ref"])
            total = total + hp.lambda_sty * parts["sty"]
        if ms:
            other = images["ms"].detach() if hp.ms_stop_gradient else images["ms"]
            parts["ms"] = mode_seeking_loss(r1, codes["r"], other, images["rand"], hp.ms_eps)
            total = total + hp.lambda_ms * parts["ms"]
        return total, parts

    def _latent_loss(self, parts: dict[str, torch.Tensor], cycles: list[torch.Tensor]) -> torch.Tensor | float:
        """The weighted latent terms: ``authors`` λcyc_ak·mean(cycles + [L_ak]) (logged as ``latent``), or
        ``paper`` λcyc·mean(cycles) + λak·L_ak."""
        hp = self.hparams
        terms = cycles + ([parts["ak"]] if "ak" in parts else [])
        if not terms:
            return 0.0
        if hp.loss_weighting == "authors":
            parts["latent"] = torch.stack(terms).mean()
            return hp.lambda_cyc_ak * parts["latent"]
        return hp.lambda_cyc * parts.get("cyc", 0.0) + hp.lambda_ak * parts.get("ak", 0.0)

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
