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
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from lightning_modules.base import GANModule
from lightning_modules.expected_embeddings import ExpectedEmbeddings, compute_expected, label_indices
from lightning_modules.losses import (
    GAN_MODES,
    discriminator_adv_loss,
    generator_adv_loss,
    gradient_penalty,
    uniform_posterior_cross_entropy,
)
from suite.errors import ConfigError, DatasetError

REST = "rest"  # the name of z_0 / E_0, the code of everything the modelled attributes do not explain


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


class DisentangledAttributes(GANModule):
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
        self.code_names = [*self.attributes, REST]
        sizes = self.data_info["factor_sizes"]
        self.num_classes = {a: int(sizes[a]) for a in self.attributes}
        self.transfer_attributes = self._check_transfer(transfer_attributes)
        self.image_size = int(self.require_info("image_size", "the image size"))
        self.use_dis = bool(disentanglement_loss) and lambda_dis > 0

        self.encoders = nn.ModuleDict({name: self.build_named_net("encoder", encoder) for name in self.code_names})
        self.code_shape = self._probe_code_shape()
        n_up = round(math.log2(self.image_size / self.code_shape[1]))
        self.decoder = self.build_named_net("decoder", decoder, code_channels=self.code_shape[0],
                                   num_codes=len(self.code_names), n_upsampling=n_up)
        self.classifiers = nn.ModuleDict({
            a: self.build_named_net("classifier", classifier, num_classes=self.num_classes[a], image_size=self.image_size,
                           code_shape=list(self.code_shape))
            for a in self.attributes
        })
        self.D = self.build_named_net("discriminator", discriminator, image_size=self.image_size, num_classes=0)
        exp_cfg = dict(expected_embeddings or {})
        exp_names = exp_cfg.get("attributes") or self.attributes
        bad = [a for a in exp_names if a not in self.attributes]
        if bad:
            raise ConfigError(f"method.expected_embeddings.attributes {bad} are not modelled attributes ({', '.join(self.attributes)}).")
        self.expected_max_images = exp_cfg.get("max_images")
        self.expected = ExpectedEmbeddings({a: self.num_classes[a] for a in exp_names}, self.code_shape)
        self.build_ema(["encoders", "decoder"])

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

    def labels_of(self, batch: dict) -> dict[str, torch.Tensor]:
        """y_m of every modelled attribute from ``batch["factors"]`` (one sentence when the data lacks one)."""
        factors = batch.get("factors")
        missing = [a for a in self.attributes if not isinstance(factors, Mapping) or a not in factors]
        if missing:
            have = ", ".join(factors) if isinstance(factors, Mapping) else "none"
            raise DatasetError(
                f"method={self.method_name} trains on the labels of {', '.join(self.attributes)}; the batches of "
                f"data={self.data_info.get('name', '?')} lack {', '.join(missing)} (factors: {have})."
            )
        return {a: factors[a].long() for a in self.attributes}

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
        labels = self.labels_of(batch)
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

        def closure():
            fake = x_trn
            if fake is None:
                with torch.no_grad():
                    fake = self.shuffled_synthesis(x)[2]
            parts = {"adv": discriminator_adv_loss(self.critic(x), self.critic(fake), hp.gan_mode)}
            total = parts["adv"]
            if hp.gan_mode == "wgan" and hp.lambda_gp > 0:
                parts["gp"] = gradient_penalty(self.critic, x, fake)
                total = total + hp.lambda_gp * parts["gp"]
            return total, parts

        return self.optimize("D", closure)

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
        """Training is over: store E[z|y] (in the last training step, so the final checkpoint holds it)."""
        if int(self.expected.iteration) != self.iteration:
            self._store_expected_embeddings()

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

    def expected_embedding(self, attribute: str, labels: Any) -> torch.Tensor:
        """The expected embeddings of classes ``labels`` (int, name, or a sequence/tensor of them) of ``attribute``,
        N×C×s×s — the label-like target of Sec. IV-C."""
        if attribute not in self.expected.names:
            raise ConfigError(
                f"there is no expected embedding of '{attribute}'; label targets exist for "
                f"{', '.join(self.expected.names)} (method.expected_embeddings.attributes)."
            )
        if not self.expected.ready:
            raise ConfigError(
                "the expected embeddings are not computed yet (they are computed when training ends); call "
                "module.compute_expected_embeddings(train_loader) or use a final checkpoint."
            )
        idx = label_indices(labels, self.data_info.get("factor_values", {}).get(attribute, []), attribute, self.device)
        k = self.num_classes[attribute]
        if bool(((idx < 0) | (idx >= k)).any()):
            raise ValueError(f"labels of '{attribute}' must lie in 0..{k - 1}, got {idx.tolist()}")
        return self.expected.mean(attribute)[idx]

    def extra_evaluation(self, loader: Any, out_dir: Any, *, max_images: int | None = None,
                         classifier: Any = None) -> dict[str, float]:
        """The disentanglement analysis of Sec. IV-B (``metrics.disentanglement``) on up to 1000 images."""
        from metrics.disentanglement import disentanglement_report

        return disentanglement_report(self, loader, out_dir, max_images=max_images or 1000)

    # ------------------------------------------------------------------------------------------ translation
    def sample_target(self, batch: dict) -> Any:
        """Sample grids and evaluation swap the ``transfer_attributes`` codes from the batch's reference images."""
        if batch.get("ref") is None:
            raise DatasetError(f"method={self.method_name} translates towards reference images; the batch has no 'ref'.")
        return batch["ref"]

    @torch.no_grad()
    def translate(self, images: torch.Tensor, target: Any, swap: str | Sequence[str] | None = None, **kwargs: Any) -> dict[str, torch.Tensor]:
        """Decode the codes of ``images`` (B×3×H×W in [−1, 1]) with some codes replaced. ``target``:

        - reference images (B×3×H×W, or 1×3×H×W for all): the codes named by ``swap`` (default
          ``transfer_attributes``) come from them — label-free, intensity-preserving transfer (Sec. IV-D);
        - labels (int, class name, or B / 1 of them): those codes become the classes' expected embeddings (IV-C);
        - a dict ``{code name: spec}`` for any subset of codes (attributes and ``rest``), each spec being reference
          images, labels, or a convex mixture ``[(w_1, spec_1), (w_2, spec_2), …]`` (w ≥ 0, Σw = 1) of them
          (Eq. 11; ``[(1−s, a), (s, b)]`` is the interpolation of Eq. 12).

        Returns ``{"image": B×3×H×W}``. Replacing every code of an image by its own gives its reconstruction."""
        codes = self.encode(images, inference=True)
        if isinstance(target, Mapping):
            specs = dict(target)
        else:
            names = self.transfer_attributes if swap is None else ([swap] if isinstance(swap, str) else list(swap))
            specs = {name: target for name in names}
        for name, spec in specs.items():
            if name not in self.code_names:
                raise ValueError(f"no code named '{name}'; the codes are {', '.join(self.code_names)}")
            codes[name] = self._fit_batch(self._code_from(name, spec), images.shape[0], name)
        return {"image": self.decode(codes, inference=True)}

    def _code_from(self, name: str, spec: Any) -> torch.Tensor:
        if isinstance(spec, list | tuple) and spec and all(isinstance(s, list | tuple) and len(s) == 2 for s in spec):
            weights = torch.tensor([float(w) for w, _ in spec])
            if bool((weights < 0).any()) or abs(float(weights.sum()) - 1.0) > 1e-4:
                raise ValueError(f"mixture weights of '{name}' must be >= 0 and sum to 1 (a convex combination), got {weights.tolist()}")
            parts = [self._code_from(name, s) for _, s in spec]
            n = max(p.shape[0] for p in parts)
            return sum(float(w) * self._fit_batch(p, n, name) for w, p in zip(weights, parts))
        if torch.is_tensor(spec) and spec.dim() == 4:
            return self.inference_net("encoders")[name](spec.to(self.device))
        if name == REST:
            raise ValueError(f"'{REST}' (z_0) has no labels; give reference images for it")
        return self.expected_embedding(name, spec)

    @staticmethod
    def _fit_batch(code: torch.Tensor, batch: int, name: str) -> torch.Tensor:
        if code.shape[0] == batch:
            return code
        if code.shape[0] == 1:
            return code.expand(batch, *code.shape[1:])
        raise ValueError(f"the target of '{name}' gives {code.shape[0]} codes for {batch} images; give {batch} or 1")

    @torch.no_grad()
    def mix(self, images: torch.Tensor, attribute: str, sources: Sequence[Any], weights: Sequence[float]) -> torch.Tensor:
        """Eq. 11: decode ``images`` with ``z_attribute = Σ_k w_k z_attribute(source_k)`` (sources: reference images or
        labels; weights convex). Returns B×3×H×W."""
        return self.translate(images, {attribute: list(zip(weights, sources))})["image"]

    @torch.no_grad()
    def interpolate(self, images: torch.Tensor, attribute: str | Sequence[str], start: Any, end: Any, steps: int = 8) -> torch.Tensor:
        """Eq. 12: decode ``images`` with ``z = (1−s)·z(start) + s·z(end)`` for s = 0 … 1 in ``steps`` steps for each
        named code (start/end: reference images or labels). Returns B×steps×3×H×W (a row per image)."""
        names = [attribute] if isinstance(attribute, str) else list(attribute)
        codes = self.encode(images, inference=True)
        b = images.shape[0]
        ends = {n: (self._fit_batch(self._code_from(n, start), b, n), self._fit_batch(self._code_from(n, end), b, n)) for n in names}
        frames = []
        for s in torch.linspace(0, 1, steps).tolist():
            for n, (za, zb) in ends.items():
                codes[n] = (1 - s) * za + s * zb
            frames.append(self.decode(codes, inference=True))
        return torch.stack(frames, dim=1)
