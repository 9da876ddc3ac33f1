"""Disentangled, generalizable attribute representations — "Adversarial Learning of Disentangled and
Generalizable Representations of Visual Attributes" (Oldfield et al.; ../shared/specs/methods.md §2).

Paper ↔ code names: attributes m = 1..A = ``attributes`` (factor names of the data, e.g. identity, expression,
illumination), m = 0 = ``"rest"``; encoders E_m = ``encoders[name]`` (unshared, ``nets.disent.AttributeEncoder``),
decoder Dec = ``decoder``, classifiers C_m = ``classifiers[name]`` (``C_m(z)`` on an encoding =
``classifiers[name].classify_code(z)``, ``C_m(X)`` on an image = ``classifiers[name](x)``), critic D = ``D``
(StarGAN's PatchGAN). Symbols: X = ``x``, y_m = ``labels[name]``, z_m = ``codes[name]``, π_m = ``perms[name]``,
X_trn = ``x_trn``, U_m the uniform distribution over the K_m classes of attribute m.

Losses (CE = softmax cross-entropy, each averaged over the batch):
- Eq. 2 ``L_rec = |X − Dec(z_1..z_A, z_0)|₁``  (``loss/G/rec``, λrec 10)
- Eq. 3 ``L_cls^z = mean_m CE(y_m, C_m(z_m))``  (``loss/G/cls``)
- Eq. 4 ``L_dis = mean over m ∈ {1..A, 0} of mean_{m'≠m} CE(U_{m'}, C_{m'}(z_m))`` — for z_0 over every attribute
  (``loss/G/dis``; ``losses.uniform_posterior_cross_entropy``). ``disentanglement_loss=false`` is the λdis = 0
  ablation of Sec. IV-B.
- Eq. 5 ``X_trn = Dec(z_1[π_1], …, z_A[π_A], z_0)`` with a fresh random permutation π_m of the batch per attribute
  in every forward pass; z_0 is never shuffled (``shuffle_codes``).
- Eq. 6 ``L_trn = mean_m CE(y_m[π_m], C_m(X_trn))``  (``loss/G/trn``)
- Eqs. 7, 9 WGAN-GP on X_trn only: ``L_D = E[D(X_trn)] − E[D(X)] + λgp·GP`` (``loss/D/adv``, ``loss/D/gp``),
  ``L_G^adv = −E[D(X_trn)]`` (``loss/G/adv``).
- Eq. 8 ``L_G = λadv·L_G^adv + λrec·L_rec + λtrn·L_trn + λcls·L_cls^z + λdis·L_dis``; the classifiers learn from
  real images only, ``L_C = mean_m CE(y_m, C_m(X))`` (``loss/C/cls``) — in the G step they are frozen (the base's
  ``optimize`` toggles optimizers), so gradients pass through them to the encoders/decoder without moving them.

Three Adams (``G`` = encoders + decoder, ``D``, ``C``), lr 1e-4, β (0.5, 0.999), batch 16; the paper trains 50
epochs then decays linearly for 25 (``schedule.decay_start_fraction`` 2/3). One iteration: a C step, a D step,
and (every ``n_critic``-th iteration) a G step. The released code trains the classifiers from scratch jointly
(the default); the paper calls them "pre-trained", so ``classifier_warmup`` iterations of C-only training
before G and D start is an option **[inferred]**.

Uses (Secs. IV-C–E), all through ``translate`` (see its docstring): swapping any subset of codes from reference
images (label-free, intensity-preserving transfer); transfer to a label through the class's expected embedding
``E[z_m | y_m = k]`` (the mean code of the training images with that label, computed when training ends — in
the last training step, so the final checkpoint holds it — and kept in buffers, ``compute_expected_embeddings``
recomputes it); convex mixtures of codes (Eq. 11, ``mix``); linear interpolation ``(1−s)z_a + s z_b`` (Eq. 12,
``interpolate``). Sample grids and ``evaluate.py`` swap the ``transfer_attributes`` codes (default expression)
from ``batch["ref"]``. Analysis (Sec. IV-B): ``metrics.disentanglement.disentanglement_report``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from datamodules.base import UNSEEN_CLASS
from lightning_modules.base import GANModule
from lightning_modules.disent_transfer import REST, CodeTransfer
from lightning_modules.expected_embeddings import ExpectedEmbeddings, compute_expected
from lightning_modules.losses import (
    GAN_MODES,
    discriminator_adv_loss,
    generator_adv_loss,
    uniform_posterior_cross_entropy,
)
from suite.errors import CheckpointError, ConfigError, DatasetError

__all__ = ["REST", "DisentangledAttributes", "shuffle_codes"]


def shuffle_codes(
    codes: Mapping[str, torch.Tensor], attributes: Sequence[str], generator: torch.Generator | None = None
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Eq. 5: every code named in ``attributes`` is permuted along the batch by its own fresh random permutation
    π_m; every other code (z_0) is returned untouched. Returns (shuffled codes, {attribute: π_m})."""
    shuffled, perms = dict(codes), {}
    for name in attributes:
        z = codes[name]
        perm = torch.randperm(z.shape[0], generator=generator, device="cpu" if generator is not None else z.device)
        perm = perm.to(z.device)
        shuffled[name], perms[name] = z[perm], perm
    return shuffled, perms


class DisentangledAttributes(CodeTransfer, GANModule):
    """Disentangled, generalizable attribute codes. See the module docstring for the mapping to the paper.

    Args (beyond ``GANModule``'s):
        encoder, decoder, classifier, discriminator: ``_target_`` configs (``nets.disent``; D is
            ``nets.spm.StarGANDiscriminator`` without a class head). One encoder config builds all A+1 encoders.
        attributes: the modelled attributes by factor name (e.g. [identity, expression, illumination]); null =
            every factor the data labels. Class counts K_m follow from the datamodule (``info["factor_sizes"]``).
        transfer_attributes: the codes that sample grids / evaluation (and ``translate`` without ``swap``) take
            from the target; null = [expression] when modelled, else the first attribute.
        disentanglement_loss: Eq. 4 on (false = the λdis = 0 ablation of Sec. IV-B).
        lambda_rec 10, lambda_cls 1 (Eq. 3), lambda_dis 1 (Eq. 4), lambda_trn 1 (Eq. 6), lambda_adv 1, lambda_gp 10;
            lambda_real_cls 1 scales L_C (the classifiers' own loss).
        gan_mode: ``wgan`` (Eq. 9, WGAN-GP) | ``lsgan`` | ``vanilla`` | ``hinge``.
        n_critic: G is updated on every n_critic-th iteration (first included), D and C on every one [inferred: 1].
        classifier_warmup: iterations of C-only training before D and G start [inferred option; 0 = joint].
        expected_embeddings: ``{attributes: null (= all) | [names], max_images: null (= whole train split) | n}``.
    """

    supported_views = ("multi_factor",)
    nets_package = "nets.disent"

    def __init__(
        self,
        encoder: dict,
        decoder: dict,
        classifier: dict,
        discriminator: dict,
        attributes: Sequence[str] | None = None,
        transfer_attributes: Sequence[str] | None = None,
        disentanglement_loss: bool = True,
        lambda_rec: float = 10.0,
        lambda_cls: float = 1.0,
        lambda_dis: float = 1.0,
        lambda_trn: float = 1.0,
        lambda_adv: float = 1.0,
        lambda_gp: float = 10.0,
        lambda_real_cls: float = 1.0,
        gan_mode: str = "wgan",
        n_critic: int = 1,
        classifier_warmup: int = 0,
        expected_embeddings: dict | None = None,
        **common: Any,
    ) -> None:
        super().__init__(**common)
        self.save_hyperparameters()
        self._check_settings()
        self.attributes = self._check_attributes(attributes)
        self.code_names = [*self.attributes, REST] if self.models_rest else list(self.attributes)
        sizes = self.data_info["factor_sizes"]
        self.num_classes = {a: int(sizes[a]) for a in self.attributes}
        self.transfer_attributes = self._check_transfer(transfer_attributes)
        self.image_size = int(self.require_info("image_size", "the image size"))
        self.use_dis = bool(disentanglement_loss) and lambda_dis > 0

        self.encoders = nn.ModuleDict({name: self.build_named_net("encoder", encoder, image_size=self.image_size)
                                       for name in self.code_names})
        self.code_shape = self._probe_code_shape()
        self.build_synthesis(decoder, discriminator)
        self.classifiers = nn.ModuleDict({
            a: self.build_named_net("classifier", classifier, num_classes=self.num_classes[a], image_size=self.image_size,
                           code_shape=list(self.code_shape))
            for a in self.attributes
        })
        exp_cfg = dict(expected_embeddings or {})
        exp_names = exp_cfg.get("attributes") or self.attributes
        bad = [a for a in exp_names if a not in self.attributes]
        if bad:
            raise ConfigError(f"method.expected_embeddings.attributes {bad} are not modelled attributes ({', '.join(self.attributes)}).")
        self.expected_max_images = exp_cfg.get("max_images")
        self.expected = ExpectedEmbeddings({a: self.num_classes[a] for a in exp_names}, self.code_shape)
        self.build_ema(self.ema_targets)

    ema_targets = ["encoders", "decoder"]  # the generator nets an EMA copy follows
    models_rest = True  # E_0 / z_0 (Ablation I has none)

    def build_synthesis(self, decoder: dict, discriminator: dict) -> None:
        """Dec (on the A+1 codes, up-sampled back to the image size) and the critic D."""
        n_up = round(math.log2(self.image_size / self.code_shape[1]))
        self.decoder = self.build_named_net("decoder", decoder, code_channels=self.code_shape[0],
                                            num_codes=len(self.code_names), n_upsampling=n_up)
        self.D = self.build_named_net("discriminator", discriminator, image_size=self.image_size, num_classes=0)

    # ----------------------------------------------------------------------------------------- construction
    def _check_settings(self) -> None:
        hp = self.hparams
        if hp.gan_mode not in GAN_MODES:
            raise ConfigError(f"method.gan_mode must be one of {', '.join(GAN_MODES)}, got '{hp.gan_mode}'.")
        self.check_n_critic(hp.n_critic)
        if not (isinstance(hp.classifier_warmup, int) and hp.classifier_warmup >= 0):
            raise ConfigError(f"method.classifier_warmup must be an integer >= 0, got {hp.classifier_warmup!r}.")
        for key in ("lambda_rec", "lambda_cls", "lambda_dis", "lambda_trn", "lambda_adv", "lambda_gp", "lambda_real_cls"):
            if not hp[key] >= 0:
                raise ConfigError(f"method.{key} must be >= 0, got {hp[key]!r}.")

    def _check_attributes(self, attributes: Sequence[str] | None) -> list[str]:
        """The modelled attributes: factor names the data labels; one sentence when the data or the names do not fit."""
        data = self.data_info.get("name", "?")
        names = list(self.data_info.get("factor_names") or [])
        if len(names) < 2:
            count = "one" if len(names) == 1 else "none"
            which = f" ({names[0]})" if names else ""
            raise DatasetError(f"{self.method_name} needs several categorical factors; data={data} has {count}{which}.")
        if "factor_sizes" not in self.data_info:
            raise DatasetError(f"{self.method_name} needs the class count of each factor; data={data} gives no 'factor_sizes'.")
        chosen = names if attributes is None else [str(a) for a in attributes]
        unknown = [a for a in chosen if a not in names]
        if unknown:
            raise DatasetError(
                f"method.attributes names {', '.join(unknown)}, which data={data} does not label; valid factor names: {', '.join(names)}."
            )
        if not chosen:
            raise ConfigError("method.attributes must name at least one factor (or be null for all of them).")
        if len(set(chosen)) != len(chosen):
            raise ConfigError(f"method.attributes {chosen} repeats a name.")
        if REST in chosen:
            raise ConfigError(f"'{REST}' names z_0 (the code of everything else) and cannot be a modelled attribute.")
        few = [a for a in chosen if int(self.data_info["factor_sizes"].get(a, 0)) < 2]
        if few:
            raise DatasetError(f"the factors {', '.join(few)} of data={data} have fewer than 2 classes; {self.method_name} cannot classify them.")
        view = self.data_info.get("view")
        if view not in (None, "multi_factor"):
            raise DatasetError(f"{self.method_name} trains on the multi_factor view; data={data} was built with view={view}.")
        return chosen

    def _check_transfer(self, transfer: Sequence[str] | None) -> list[str]:
        if transfer is None:
            return ["expression"] if "expression" in self.attributes else [self.attributes[0]]
        transfer = [str(t) for t in ([transfer] if isinstance(transfer, str) else transfer)]
        bad = [t for t in transfer if t not in self.code_names]
        if bad or not transfer:
            raise ConfigError(f"method.transfer_attributes must name modelled codes ({', '.join(self.code_names)}), got {transfer}.")
        return transfer

    @torch.no_grad()
    def _probe_code_shape(self) -> tuple[int, int, int]:
        probe = torch.zeros(1, 3, self.image_size, self.image_size)
        self.encoders.eval()  # no running statistics are touched by the probe
        shapes = {tuple(self.encoders[n](probe).shape[1:]) for n in self.code_names}
        self.encoders.train()
        if len(shapes) != 1:
            raise ConfigError(f"the encoders produce codes of different shapes {sorted(shapes)}; they must agree.")
        shape = shapes.pop()
        ratio = self.image_size / shape[1]
        if len(shape) != 3 or shape[1] != shape[2] or ratio < 2 or 2 ** round(math.log2(ratio)) != ratio:
            raise ConfigError(
                f"the encoders map {self.image_size} px to codes of shape {shape}; the decoder needs square codes "
                "down-sampled by a power of two (method.encoder.n_downsampling >= 1)."
            )
        return shape  # type: ignore[return-value]

    # ------------------------------------------------------------------------------------------ optimizers
    def optimizer_groups(self) -> dict[str, Any]:
        return {
            "G": list(self.encoders.parameters()) + list(self.decoder.parameters()),
            "D": list(self.D.parameters()),
            "C": list(self.classifiers.parameters()),
        }

    # ----------------------------------------------------------------------------------- encode / decode
    def encode(self, images: torch.Tensor, inference: bool = False, names: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        """Eq. 1: ``{name: E_name(X)}`` for the attributes and ``rest`` (z_0), each B×C×s×s."""
        encoders = self.inference_net("encoders") if inference else self.encoders
        return {name: encoders[name](images) for name in (names or self.code_names)}

    def decode(self, codes: Mapping[str, torch.Tensor], inference: bool = False) -> torch.Tensor:
        """Eq. 1: ``Dec(z_1, …, z_A, z_0)`` → B×3×H×W in [−1, 1]."""
        decoder = self.inference_net("decoder") if inference else self.decoder
        return decoder([codes[name] for name in self.code_names])

    def code_logits(self, attribute: str, code: torch.Tensor) -> torch.Tensor:
        """``C_attribute(z)`` of an encoding (the dense head only), B×K."""
        return self.classifiers[attribute].classify_code(code)

    def critic(self, images: torch.Tensor) -> torch.Tensor:
        out = self.D(images)
        return out.src if hasattr(out, "src") else out

    def labels_of(self, batch: dict, unseen: bool = False, check_range: bool = True) -> dict[str, torch.Tensor]:
        """y_m of every modelled attribute from ``batch["factors"]`` (one sentence when the data lacks one, or holds
        a class index the classifiers do not have). ``unseen``: allow UNSEEN_CLASS (−1: a held-out subject, whose
        identity is no class of C_id) — evaluation on the test split; never in training. ``check_range``: the
        class-range test reads the labels on the host; training does it only where ``sync_allowed()``."""
        factors = batch.get("factors")
        missing = [a for a in self.attributes if not isinstance(factors, Mapping) or a not in factors]
        if missing:
            have = ", ".join(factors) if isinstance(factors, Mapping) else "none"
            raise DatasetError(
                f"method={self.method_name} trains on the labels of {', '.join(self.attributes)}; the batches of "
                f"data={self.data_info.get('name', '?')} lack {', '.join(missing)} (factors: {have})."
            )
        labels = {a: factors[a].long() for a in self.attributes}
        lowest = UNSEEN_CLASS if unseen else 0
        for a, y in labels.items() if check_range else ():
            bad = (y >= self.num_classes[a]) | (y < lowest)
            if bool(bad.any()):
                raise DatasetError(
                    f"a batch labels {a} with class {int(y[bad][0])}, but the model knows classes 0..{self.num_classes[a] - 1} "
                    f"of its training split{'' if unseen else ' (unseen subjects are for evaluation only)'}."
                )
        return labels

    # ----------------------------------------------------------------------------------------------- losses
    def classification_on_codes(self, codes: Mapping[str, torch.Tensor], labels: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Eq. 3: ``mean_m CE(y_m, C_m(z_m))``."""
        return torch.stack([F.cross_entropy(self.code_logits(a, codes[a]), labels[a]) for a in self.attributes]).mean()

    def disentanglement(self, codes: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Eq. 4: ``mean over m ∈ {1..A, 0} of mean_{m'≠m} CE(U_{m'}, C_{m'}(z_m))`` (z_0 against every attribute;
        with a single attribute z_1 has no other attribute and only z_0 contributes)."""
        per_code = []
        for name in self.code_names:
            others = [a for a in self.attributes if a != name]
            if others:
                per_code.append(torch.stack([uniform_posterior_cross_entropy(self.code_logits(a, codes[name])) for a in others]).mean())
        return torch.stack(per_code).mean()

    def classification_on_images(self, images: torch.Tensor, labels: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``mean_m CE(y_m, C_m(X))`` and the per-attribute accuracies (Eq. 6 on X_trn; L_C on real X)."""
        losses, acc = [], {}
        for a in self.attributes:
            logits = self.classifiers[a](images)
            losses.append(F.cross_entropy(logits, labels[a]))
            acc[a] = (logits.argmax(1) == labels[a]).float().mean().detach()
        return torch.stack(losses).mean(), acc

    # ------------------------------------------------------------------------------------------- iteration
    def train_iteration(self, batch: dict) -> dict[str, torch.Tensor]:
        hp = self.hparams
        x = batch["image"]
        labels = self.labels_of(batch, check_range=self.sync_allowed())
        logs = self.classifier_step(x, labels)
        if self.iteration < hp.classifier_warmup:
            return logs
        # On a G-step iteration the encoders and decoder run once, with gradients: they do not change during the
        # D step, so the D step's (detached) shuffled synthesis is the very image the G step scores.
        g_step = (self.iteration - hp.classifier_warmup) % hp.n_critic == 0
        synthesis = self.shuffled_synthesis(x) if g_step else None
        logs.update(self.critic_step(x, None if synthesis is None else synthesis[2].detach()))
        if synthesis is not None:
            logs.update(self.generator_step(x, labels, synthesis))
        return logs

    def shuffled_synthesis(self, x: torch.Tensor) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], torch.Tensor]:
        """(codes, permutations, X_trn): the encodings of ``x``, a fresh per-attribute shuffle (Eq. 5) and its
        decoding."""
        codes = self.encode(x)
        shuffled, perms = shuffle_codes(codes, self.attributes)  # Eq. 5
        return codes, perms, self.decode(shuffled)

    def classifier_step(self, x: torch.Tensor, labels: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """C update on real images only: ``L_C = mean_m CE(y_m, C_m(X))``."""
        acc: dict[str, torch.Tensor] = {}

        def closure():
            loss, accuracies = self.classification_on_images(x, labels)
            acc.update(accuracies)
            return self.hparams.lambda_real_cls * loss, {"cls": loss}

        logs = self.optimize("C", closure)
        logs.update({f"acc/C/{a}": v for a, v in acc.items()})
        return logs

    def critic_step(self, x: torch.Tensor, x_trn: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """D update, Eq. 9: ``E[D(X_trn)] − E[D(X)] + λgp·GP`` on a shuffled synthesis (``x_trn``, detached,
        or a fresh one)."""
        hp = self.hparams

        judged: dict[str, torch.Tensor] = {}

        def closure():
            fake = x_trn
            if fake is None:
                with torch.no_grad():
                    fake = self.shuffled_synthesis(x)[2]
            judged["fake"] = fake
            parts = {"adv": discriminator_adv_loss(self.critic(x), self.critic(fake), hp.gan_mode)}
            return parts["adv"], parts

        return self.optimize("D", closure, self.wgan_penalty(self.critic, lambda: (x, judged["fake"]), hp.gan_mode == "wgan"))

    def generator_step(
        self,
        x: torch.Tensor,
        labels: Mapping[str, torch.Tensor],
        synthesis: tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], torch.Tensor],
    ) -> dict[str, torch.Tensor]:
        """Encoders + decoder update, Eq. 8 (C and D frozen by the optimizer toggle), on ``synthesis`` =
        :meth:`shuffled_synthesis` of ``x`` computed with gradients."""
        hp = self.hparams
        codes, perms, x_trn = synthesis
        acc: dict[str, torch.Tensor] = {}

        def closure():
            parts = {
                "rec": F.l1_loss(self.decode(codes), x),  # Eq. 2
                "cls": self.classification_on_codes(codes, labels),  # Eq. 3
            }
            total = hp.lambda_rec * parts["rec"] + hp.lambda_cls * parts["cls"]
            if self.use_dis:
                parts["dis"] = self.disentanglement(codes)  # Eq. 4
                total = total + hp.lambda_dis * parts["dis"]
            shuffled_labels = {a: labels[a][perms[a]] for a in self.attributes}
            parts["trn"], accuracies = self.classification_on_images(x_trn, shuffled_labels)  # Eq. 6
            parts["adv"] = generator_adv_loss(self.critic(x_trn), hp.gan_mode)  # Eqs. 7, 9
            acc.update(accuracies)
            return total + hp.lambda_trn * parts["trn"] + hp.lambda_adv * parts["adv"], parts

        logs = self.optimize("G", closure)
        logs.update({f"acc/trn/{a}": v for a, v in acc.items()})
        return logs

    # --------------------------------------------------------------------------------- expected embeddings
    def on_last_iteration(self) -> None:
        """Training is over: store E[z|y] (in the last training step, so the final checkpoint holds it), then draw
        Fig. 6 on the training split (every class seen) into the run folder and log it."""
        if int(self.expected.iteration) != self.iteration:
            self._store_expected_embeddings()
            self._write_fig6()

    def _write_fig6(self) -> None:
        from metrics.disent_pmf import FIG6_FILE, class_conditional_pmfs, log_figure, save_pmf_figure

        trainer = self.trainer
        dm = getattr(trainer, "datamodule", None)
        if dm is None or not trainer.is_global_zero:
            return
        limit = 1 if getattr(trainer, "fast_dev_run", False) else (self.expected_max_images or 1000)
        pmfs, counts = class_conditional_pmfs(self, dm.train_dataloader(), max_images=limit)
        values = self.data_info.get("factor_values", {})
        path = save_pmf_figure(Path(trainer.default_root_dir) / FIG6_FILE, pmfs, counts, values,
                               f"Fig. 6: class-conditional PMFs, train split, iteration {self.iteration}")
        log_figure(path, trainer.loggers, step=self.iteration)

    def _store_expected_embeddings(self) -> None:
        trainer = self.trainer
        dm = getattr(trainer, "datamodule", None)
        loader = dm.train_dataloader() if dm is not None else trainer.train_dataloader
        if loader is None:
            return
        limit = self.expected_max_images
        if getattr(trainer, "fast_dev_run", False):
            limit = 1  # one batch
        self.compute_expected_embeddings(loader, max_images=limit)

    def compute_expected_embeddings(self, loader: Any, max_images: int | None = None) -> int:
        """``E[z_m | y_m = k]`` over the images of ``loader`` into ``expected`` (:func:`compute_expected`);
        returns the number of images used."""
        return compute_expected(self, loader, max_images)

    def extra_evaluation(self, loader: Any, out_dir: Any, *, max_images: int | None = None,
                         classifier: Any = None) -> dict[str, float]:
        """The disentanglement analysis of Sec. IV-B (``metrics.disentanglement``) on up to 1000 images, and
        Fig. 6 (``metrics.disent_pmf``) on the same split, written into ``out_dir`` and logged to an active W&B run."""
        from metrics.disent_pmf import (
            FIG6_FILE,
            class_conditional_pmfs,
            log_figure,
            pmf_summary,
            save_pmf_figure,
        )
        from metrics.disentanglement import disentanglement_report

        limit = max_images or 1000
        metrics = disentanglement_report(self, loader, out_dir, max_images=limit)
        pmfs, counts = class_conditional_pmfs(self, loader, max_images=limit)
        metrics.update(pmf_summary(pmfs, counts))
        if out_dir is not None:
            path = save_pmf_figure(Path(out_dir) / FIG6_FILE, pmfs, counts, self.data_info.get("factor_values", {}),
                                   f"Fig. 6: class-conditional PMFs, iteration {self.iteration}")
            log_figure(path)
        return metrics

    # ---------------------------------------------------------------------------------------- checkpoints
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        """The suite's entry plus ``disent_classes``: each modelled attribute's class names, in C_m's output order
        (identity: the training split's subjects)."""
        super().on_save_checkpoint(checkpoint)
        checkpoint["suite"]["disent_classes"] = self.class_names()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        super().on_load_checkpoint(checkpoint)
        saved = checkpoint["suite"].get("disent_classes")
        if saved is not None and {a: list(v) for a, v in saved.items()} != self.class_names():
            changed = [a for a in self.attributes if list(saved.get(a, [])) != self.class_names()[a]]
            raise CheckpointError(
                f"the checkpoint's classifiers know other classes of {', '.join(changed) or 'its attributes'} than this "
                "model was built with; rebuild it from the checkpoint's own data_info (suite.evaluation.load_checkpoint_run)."
            )

    def class_names(self) -> dict[str, list]:
        """Each attribute's classes in C_m's output order (``data_info['factor_values']``; indices when absent)."""
        values = self.data_info.get("factor_values", {})
        return {a: list(values.get(a) or range(self.num_classes[a])) for a in self.attributes}
