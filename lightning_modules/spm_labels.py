"""Labels of SPM and StarGAN: how a target is encoded for G, Dc and Dw, how Dc's classification is scored, and how
training targets are drawn.

Classification forms (``method.classification``):

- ``sigmoid`` — one logit, binary cross-entropy (``auto`` for ``two_domain``): the authors' SPM configs have
  ``c_dim: 1`` for a CelebA attribute (``mikirui/ADSPM`` ``configs/model256_celeba_smile.yaml``), so the label is
  one number (1 = has the attribute) tiled on G's input, and Dc/Dw emit one logit, scored as StarGAN's CelebA
  ``classification_loss`` (``F.binary_cross_entropy_with_logits``, summed over outputs, averaged over the batch).
- ``softmax`` — one logit per domain, softmax cross-entropy, one-hot labels (``auto`` for ``multi_domain``: RaFD;
  also the two-domain form this suite had before issue #21).
- ``multilabel`` — one logit per attribute, BCE summed over attributes and averaged over the batch, multi-hot
  labels (``auto`` for ``multi_attribute``: StarGAN's own CelebA model over Black/Blond/Brown hair, Male, Young).

Target sampling (``method.target_sampling``):

- ``other`` — the datamodule's target: another domain (domain views; in ``two_domain`` the first half of the batch
  comes from ``image`` and the second from ``ref``, each to the other domain), or ``target_attrs`` (a random other
  image's attributes) in ``multi_attribute``.
- ``permutation`` — StarGAN's ``Solver.train``: ``label_trg = label_org[randperm(B)]``, the batch's own labels
  shuffled; a target equals its source as often as two random batch images share a label, and multi-hot vectors
  keep the data's exclusivity (one hair colour).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from suite.errors import ConfigError

CLASSIFICATIONS = ("auto", "sigmoid", "softmax", "multilabel")
TARGET_SAMPLINGS = ("other", "permutation")
AUTO = {"two_domain": "sigmoid", "multi_domain": "softmax", "multi_attribute": "multilabel"}
VIEWS_OF = {"sigmoid": ("two_domain",), "softmax": ("two_domain", "multi_domain"), "multilabel": ("multi_attribute",)}


def resolve_classification(choice: str, view: str) -> str:
    """The classification form for ``view``: ``auto`` resolved; ConfigError when the form does not fit the view."""
    if choice not in CLASSIFICATIONS:
        raise ConfigError(f"method.classification must be one of {', '.join(CLASSIFICATIONS)}, got {choice!r}.")
    form = AUTO[view] if choice == "auto" else choice
    if view not in VIEWS_OF[form]:
        raise ConfigError(f"method.classification={form} does not fit the {view} view; use "
                          f"{' or '.join(k for k, v in VIEWS_OF.items() if view in v)} (or auto).")
    return form


def check_target_sampling(choice: str) -> str:
    if choice not in TARGET_SAMPLINGS:
        raise ConfigError(f"method.target_sampling must be one of {', '.join(TARGET_SAMPLINGS)}, got {choice!r}.")
    return choice


class LabelCodec:
    """Encodes targets and scores classification logits for one form (module docstring).

    ``num_classes``: domains (sigmoid: must be 2) or attributes. ``dim``: the label length G reads and the number
    of logits Dc and Dw emit.
    """

    def __init__(self, form: str, num_classes: int) -> None:
        if form == "sigmoid" and num_classes != 2:
            raise ConfigError(f"method.classification=sigmoid is for two domains, got {num_classes}.")
        self.form, self.num_classes = form, int(num_classes)
        self.dim = 1 if form == "sigmoid" else self.num_classes

    def encode(self, target: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """B domain indices (sigmoid/softmax) or B×A 0/1 vectors (multilabel) → B×dim float labels."""
        if self.form == "multilabel":
            if target.dim() != 2 or target.shape[1] != self.dim:
                raise ValueError(f"a multilabel target is B×{self.dim}, got {tuple(target.shape)}")
            return target.to(dtype)
        target = target.long().view(-1)
        if self.form == "sigmoid":
            return target.to(dtype)[:, None]
        return F.one_hot(target, self.num_classes).to(dtype)

    def loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Dc/Dw classification loss of B×dim ``logits`` against indices (or vectors): SPM Eqs. 2–4."""
        if self.form == "softmax":
            return F.cross_entropy(logits, target.long())
        labels = self.encode(target, logits.dtype)
        return F.binary_cross_entropy_with_logits(logits, labels, reduction="sum") / logits.shape[0]

    def predict(self, logits: torch.Tensor) -> torch.Tensor:
        """Dc's decision: domain indices (sigmoid/softmax) or 0/1 vectors (multilabel)."""
        if self.form == "softmax":
            return logits.argmax(1)
        hard = (logits > 0).long()
        return hard[:, 0] if self.form == "sigmoid" else hard


def permuted(labels: torch.Tensor) -> torch.Tensor:
    """StarGAN's targets: the batch's labels in a random order (``torch.randperm`` on the global RNG of the labels'
    device — drawn there, not copied there, so a CUDA iteration does not wait for a host-to-device copy; a resumed
    run draws the same ones: the RNG states are checkpointed)."""
    order = torch.randperm(labels.shape[0], device=labels.device)
    return labels[order]
