"""The uses of disentangled attribute codes (Oldfield et al., Secs. IV-C–E), mixed into
:class:`lightning_modules.disent.DisentangledAttributes`: swapping codes from reference images (label-free,
intensity-preserving transfer), label targets through the class's expected embedding ``E[z_m | y_m = k]``,
convex mixtures (Eq. 11) and interpolation (Eq. 12). The host supplies ``encode``, ``decode``,
``inference_net``, ``expected``, ``code_names``, ``transfer_attributes``, ``num_classes`` and ``data_info``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from lightning_modules.expected_embeddings import label_indices
from suite.errors import ConfigError, DatasetError

REST = "rest"  # the name of z_0 / E_0, the code of everything the modelled attributes do not explain


class CodeTransfer:
    """``translate``, ``expected_embedding``, ``mix``, ``interpolate`` on a host with attribute codes."""

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
