"""Ablation Study I of Oldfield et al. (Sec. IV-B1, Eq. 10): codes for dimensionality reduction, without synthesis.

Only attribute encoders E_m and their complementary classifiers C_m (shallow, fully connected:
``nets.disent.ShallowFCEncoder`` / ``ShallowFCClassifier``) for the modelled attributes (the paper: expression and
illumination on MultiPIE), no E_0, decoder or critic, trained on Eq. 10,
``L = L_cls^z + λdis·L_dis`` (Eq. 3 + Eq. 4, Eq. 4 over the A codes only), against the same network with λdis = 0
(``method.disentanglement_loss=false``). Its expression codes are Fig. 4's t-SNE and Table III's Hopkins
statistics (``protocol=disent_table3``). Preset: ``experiment=disent_ablation1_multipie`` /
``disent_ablation1_synth``.

What trains C_m is not stated (the authors' ``Disentangle.py`` is not released) [inferred]: by default, as in the
full model, the classifiers learn from real images (``classifiers_learn_from: images``: L_C on C_m(X)) and are
frozen while the encoders minimise Eq. 10 through them; ``codes``: C_m's dense head learns Eq. 3 on the
(detached) codes instead, the encoders still minimise Eq. 10 through the frozen head.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F

from lightning_modules.disent import DisentangledAttributes
from suite.errors import ConfigError

SOURCES = ("images", "codes")


class AblationIEncodings(DisentangledAttributes):
    """Eq. 10's network: encoders + classifiers only. Args as :class:`DisentangledAttributes` (``decoder`` and
    ``discriminator`` are ignored; only ``lambda_cls``, ``lambda_dis``, ``lambda_real_cls``,
    ``disentanglement_loss`` and ``classifier_warmup`` act), plus ``classifiers_learn_from``: images | codes."""

    ema_targets = ["encoders"]
    models_rest = False

    def __init__(self, *args: Any, classifiers_learn_from: str = "images", **kwargs: Any) -> None:
        if classifiers_learn_from not in SOURCES:
            raise ConfigError(f"method.classifiers_learn_from must be one of {', '.join(SOURCES)}, got {classifiers_learn_from!r}.")
        super().__init__(*args, **kwargs)
        self.classifiers_learn_from = classifiers_learn_from

    def build_synthesis(self, decoder: dict, discriminator: dict) -> None:
        self.decoder = None
        self.D = None

    def optimizer_groups(self) -> dict[str, Any]:
        return {"G": list(self.encoders.parameters()), "C": list(self.classifiers.parameters())}

    def train_iteration(self, batch: dict) -> dict[str, torch.Tensor]:
        hp = self.hparams
        x = batch["image"]
        labels = self.labels_of(batch, check_range=self.sync_allowed())
        logs = self.classifier_step(x, labels) if self.classifiers_learn_from == "images" else self.head_step(x, labels)
        if self.iteration < hp.classifier_warmup:
            return logs

        def closure():
            codes = self.encode(x)
            parts = {"cls": self.classification_on_codes(codes, labels)}  # Eq. 3
            total = hp.lambda_cls * parts["cls"]
            if self.use_dis:
                parts["dis"] = self.disentanglement(codes)  # Eq. 4 (no z_0)
                total = total + hp.lambda_dis * parts["dis"]
            return total, parts

        logs.update(self.optimize("G", closure))
        return logs

    def head_step(self, x: torch.Tensor, labels: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """C update on the codes (``classifiers_learn_from: codes``): ``mean_m CE(y_m, C_m(z_m))``, z detached."""
        with torch.no_grad():
            codes = self.encode(x)

        def closure():
            loss = torch.stack([F.cross_entropy(self.code_logits(a, codes[a]), labels[a]) for a in self.attributes]).mean()
            return self.hparams.lambda_real_cls * loss, {"cls": loss}

        return self.optimize("C", closure)

    def _no_synthesis(self) -> ConfigError:
        return ConfigError("method=disent's Ablation I (Eq. 10) learns codes only and has no decoder; translate with "
                           "the full model, or evaluate it with protocol=disent_table3.")

    def translate(self, images: torch.Tensor, target: Any, swap: Any = None, **kwargs: Any) -> dict[str, torch.Tensor]:
        raise self._no_synthesis()

    def sample_target(self, batch: dict) -> Any:
        raise self._no_synthesis()
