"""The label/reference bridge's three tables (Huang et al., "Bridging the Gap between Label- and Reference-based
Synthesis in Multi-attribute Image-to-Image Translation", ICCV 2021; supplement Sec. D) as evaluation protocols.

- ``bridge_table1`` (Table 1): per-attribute accuracy on CelebA's 14 attributes, label- and reference-based.
  As the authors' ``test_arch9.py``: each attribute is flipped **alone** in the source's labels, then the
  conflict rules of their loader (:func:`resolve_conflicts`: one hair colour at a time; Bangs vs Bald /
  Receding_Hairline) fix the others; att_diff × the module's ``test_diff_scale`` (1.5); label-based codes are
  fresh N(0, I). Reference-based: sources **without** the attribute, references **with** it (the code's
  ``filter_pos``), the target the source's labels with that attribute added (+ conflict rules); the code is
  E(X_r, att_diff) + E(X_s, −att_diff). Accuracy: the suite's multi-label evaluation classifier agrees that the
  output has the attribute's target value. References: the split's first ``POOL`` images with the attribute,
  taken in turn [inferred].
- ``bridge_table2`` (Table 2): FID per attribute and mode, the fakes of Table 1's single flips against the test
  split's real images [inferred: the supplement names no real set].
- ``bridge_table3`` (Table 3): AFHQ FID per domain pair (src2trg), label-based (10 fresh codes per source) and
  reference-based (10 references per source from the split's first ``POOL`` images of the target domain), against the
  **train** images of the target domain (StarGAN v2 ``metrics/eval.py``).

FID features: Inception (torch-fidelity's FID weights) when the weights file is in the local torch cache,
otherwise the suite's evaluation-classifier features; each table says which (the latter are not comparable with
the published figures). Published numbers below are copied from the supplement and never mixed with ours.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch

from suite.errors import ConfigError, WeightsMissingError
from suite.protocols.base import Column, EvalSettings, OurRows, PaperTable, Protocol, parse_rows
from suite.protocols.paired import checkpoint_facts

PAPER = ("Huang et al., Bridging the Gap between Label- and Reference-based Synthesis in Multi-attribute "
         "Image-to-Image Translation (ICCV 2021), supplement")
ATTRIBUTES = ("Young", "Mouth_Slightly_Open", "Smiling", "Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair",
              "Receding_Hairline", "Bangs", "Male", "No_Beard", "Mustache", "Goatee", "Sideburns")
PAIRS = ("dog2cat", "wild2cat", "cat2dog", "wild2dog", "cat2wild", "dog2wild")
MODES = {"label": "Label-based", "reference": "Reference-based"}
OUTPUTS_PER_SOURCE = 10  # StarGAN v2's eval: 10 outputs per test source (latent or reference)
POOL = 32  # references kept per attribute (Table 1) or target domain (Table 3), the split's first ones [inferred]
HAIR_COLOURS = ("Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair")
EXCLUSIVE = (HAIR_COLOURS, ("Straight_Hair", "Wavy_Hair"))
CLASSIFIER = {"arch": "small", "epochs": 5}  # conf/evaluate.yaml's defaults (EvalSettings carries no classifier)


def _attr_columns(fmt: str) -> tuple[Column, ...]:
    return tuple(Column(a, a.replace("_", " "), fmt) for a in ATTRIBUTES)


def _published(text: str, keys: Sequence[str]) -> dict[str, dict[str, float]]:
    return {name: dict(zip(keys, map(float, values), strict=True)) for name, *values in parse_rows(text)}


OTHER_ROWS = "the other methods' rows are published figures only; they are not methods of this suite."
# Tables 1 and 2 as printed, one line per method: its 14 accuracies (%, Table 1) || its 14 FIDs (Table 2)
CELEBA = parse_rows("""
    StarGAN                | 85.1 | 92.0 | 90.1 | 86.7 | 81.8 | 85.8 | 52.8 | 84.5 | 94.8 | 82.7 | 66.8 | 28.5 | 21.6 | 20.5 || 19.48 | 16.64 | 17.59 | 22.21 | 27.59 | 19.79 | 47.81 | 21.52 | 26.01 | 22.76 | 24.36  | 35.05  | 25.31  | 37.29
    STGAN                  | 82.5 | 96.2 | 95.4 | 97.6 | 91.5 | 85.0 | 86.4 | 84.4 | 96.9 | 96.5 | 70.4 | 35.6 | 44.8 | 65.9 || 9.32  | 3.00  | 9.52  | 17.77 | 29.53 | 12.51 | 50.48 | 9.20  | 17.73 | 31.88 | 9.53   | 5.53   | 6.42   | 13.16
    SMIT                   | 32.0 | 50.1 | 48.3 | 41.2 | 38.2 | 28.9 | 7.3  | 12.3 | 45.9 | 51.6 | 13.9 | 5.4  | 4.8  | 4.3  || 11.31 | 9.98  | 10.64 | 13.45 | 17.71 | 11.58 | 16.84 | 11.15 | 12.38 | 16.09 | 10.00  | 9.31   | 9.59   | 9.92
    Ours (Label-based)     | 86.9 | 95.5 | 92.2 | 94.1 | 90.7 | 82.1 | 73.5 | 88.0 | 94.0 | 91.8 | 86.8 | 71.6 | 80.1 | 89.3 || 8.72  | 6.54  | 6.13  | 15.11 | 21.08 | 9.85  | 29.29 | 11.59 | 10.99 | 14.70 | 13.16  | 14.52  | 14.19  | 23.90
    ELEGANT                | 18.3 | 41.2 | 39.6 | 52.6 | 36.8 | 46.9 | 11.4 | 23.0 | 57.7 | 19.0 | 13.5 | 3.9  | 5.2  | 3.7  || 6.37  | 7.17  | 10.12 | 9.52  | 17.42 | 8.97  | 50.69 | 23.26 | 13.89 | 30.61 | 102.08 | 218.20 | 228.18 | 237.90
    HomoGAN                | 26.7 | 82.4 | 63.3 | 48.3 | 36.0 | 21.9 | 3.6  | 11.2 | 43.7 | 43.7 | 25.3 | 4.0  | 4.8  | 5.3  || 16.47 | 13.70 | 13.72 | 18.62 | 19.60 | 17.02 | 17.05 | 14.83 | 14.63 | 20.11 | 19.23  | 19.47  | 19.96  | 20.36
    Ours (Reference-based) | 71.6 | 81.6 | 61.6 | 77.9 | 78.7 | 51.2 | 48.2 | 32.3 | 84.8 | 79.4 | 51.2 | 5.4  | 17.2 | 15.3 || 9.63  | 3.98  | 4.23  | 9.53  | 26.36 | 7.56  | 30.30 | 7.60  | 8.61  | 11.27 | 10.74  | 5.70   | 11.06  | 12.88
""")


def _celeba_table(part: int, caption: str, fmt: str, note: tuple[str, str]) -> PaperTable:
    """Table 1 (``part`` 0) or Table 2 (``part`` 1) of :data:`CELEBA`, with a ``(column, why)`` not-computed note."""
    rows = {}
    for name, *cells in CELEBA:
        values = [c for c in cells if c][part * len(ATTRIBUTES):(part + 1) * len(ATTRIBUTES)]
        rows[name] = dict(zip(ATTRIBUTES, map(float, values), strict=True))
    return PaperTable(source=f"{PAPER}, Table {part + 1} ({caption})", row_header="Method",
                      columns=_attr_columns(fmt), rows=rows, not_computed={"Other rows": OTHER_ROWS, note[0]: note[1]})


TABLE1 = _celeba_table(0, "accuracy, %, of each attribute on CelebA", ".1f", (
    "Classifier", "the paper's attribute classifier is not released; ours is the suite's multi-label evaluation "
                  "classifier (metrics.eval_classifier), so accuracies are ours, not theirs."))
TABLE2 = _celeba_table(1, "FID of each attribute on CelebA", ".2f", (
    "Real set", "the supplement does not say which real images each FID uses; ours: the evaluated split."))
TABLE3 = PaperTable(
    source=f"{PAPER}, Table 3 (FID of each conversion on AFHQ)",
    row_header="Method",
    columns=tuple(Column(p, p, ".2f") for p in PAIRS),
    rows=_published("""
        StarGAN-V2 (latent-guided)    | 15.89 | 14.17 | 43.33 | 43.21 | 34.45 | 35.38
        Ours (Label-based)            | 15.03 | 15.23 | 50.45 | 42.85 | 14.84 | 16.80
        StarGAN-V2 (reference-guided) | 14.82 | 15.31 | 44.85 | 49.21 | 37.59 | 38.12
        Ours (Reference-based)        | 17.99 | 19.63 | 47.60 | 42.88 | 16.14 | 15.82
    """, PAIRS),
    not_computed={"StarGAN-V2 rows": "published figures only. The supplement prints both rows as 'StarGAN-V2'; "
                                     "latent-/reference-guided is our reading of their order."},
)


# ------------------------------------------------------------------------------------------------ targets
def resolve_conflicts(target: torch.Tensor, attr: str, names: Sequence[str]) -> torch.Tensor:
    """The authors' ``check_attribute_conflict`` on rows where ``attr`` is now on: Bald/Receding_Hairline switch
    Bangs off, Bangs switches Bald and Receding_Hairline off, a hair colour (or Straight/Wavy) the others off.
    Names not in ``names`` are ignored. Returns a new tensor."""
    target, names = target.clone(), list(names)
    on = target[:, names.index(attr)] == 1
    if attr in ("Bald", "Receding_Hairline"):
        off = ["Bangs"]
    elif attr == "Bangs":
        off = ["Bald", "Receding_Hairline"]
    else:
        off = next(([n for n in group if n != attr] for group in EXCLUSIVE if attr in group), [])
    for n in off:
        if n in names:
            target[on, names.index(n)] = 0
    return target


def single_flip(source: torch.Tensor, attr: str, names: Sequence[str]) -> torch.Tensor:
    """The source labels with ``attr`` flipped alone, then :func:`resolve_conflicts` (``test_arch9.py``)."""
    target = source.clone()
    i = list(names).index(attr)
    target[:, i] = 1 - target[:, i]
    return resolve_conflicts(target, attr, names)


# ------------------------------------------------------------------------------------------------ FID
class Moments:
    """Running sums of features (float64) for a Fréchet distance."""

    def __init__(self) -> None:
        self.n, self.sum, self.outer = 0, None, None

    def add(self, features: torch.Tensor) -> None:
        f = features.detach().double().cpu()
        self.n += f.shape[0]
        self.sum = f.sum(0) if self.sum is None else self.sum + f.sum(0)
        self.outer = f.T @ f if self.outer is None else self.outer + f.T @ f

    def mean_cov(self) -> tuple[torch.Tensor, torch.Tensor]:
        mu = self.sum / self.n
        return mu, (self.outer - self.n * torch.outer(mu, mu)) / (self.n - 1)


def frechet(a: Moments, b: Moments) -> float:
    """‖μa − μb‖² + Tr(Σa + Σb − 2(ΣaΣb)^½) (Heusel et al.); NaN with fewer than 2 samples on a side."""
    if a.n < 2 or b.n < 2:
        return float("nan")
    (mu1, s1), (mu2, s2) = a.mean_cov(), b.mean_cov()
    root = torch.linalg.eigvals(s1 @ s2).sqrt().real.sum()
    return float((mu1 - mu2).square().sum() + s1.trace() + s2.trace() - 2 * root)


def feature_extractor(classifier: Any) -> tuple[torch.nn.Module, str]:
    """Inception when its weights are cached locally, else the evaluation classifier's features; and a note."""
    from metrics.fid import ClassifierFeatures, inception_extractor, inception_weights_path

    try:
        inception_weights_path()
        return inception_extractor(), "FID on Inception features (torch-fidelity's FID weights)."
    except WeightsMissingError:
        return (ClassifierFeatures(classifier.model),
                "FID on the suite's evaluation-classifier features (no Inception weights file in the torch cache): "
                "comparable between our rows only, not with the published figures.")


# ------------------------------------------------------------------------------------------------ runs
class Run:
    """A bridge checkpoint ready to translate: module, datamodule, its multi-label classifier, settings."""

    def __init__(self, path: Path, settings: EvalSettings, protocol: str) -> None:
        from metrics.eval_classifier import get_or_train_eval_classifier
        from suite.evaluation import autocast_dtype, autocast_method, load_checkpoint_run, resolve_device

        facts = checkpoint_facts(path, protocol, ("bridge",))
        self.row = "Ours" if facts.label == "bridge" else facts.label
        self.device = resolve_device(settings.device)
        self.module, self.dm, _ = load_checkpoint_run(path, self.device)
        autocast_method(self.module, self.device, autocast_dtype(settings.precision))
        self.dm.batch_size = settings.batch_size
        self.dm.setup("fit")
        self.dm.setup("test")
        self.info, self.settings = self.dm.info, settings
        self.names = list(self.info["attr_names"])
        self.classifier = get_or_train_eval_classifier(  # evaluate.yaml's classifier defaults: one cache entry
            self.info, self.dm.train_dataloader, None, task="multilabel", arch=CLASSIFIER["arch"],
            epochs=CLASSIFIER["epochs"], device=self.device, test_loader_fn=self.dm.test_dataloader)
        self.generator = torch.Generator(device=self.device).manual_seed(0)

    def batches(self, split: str | None = None) -> Iterator[dict[str, torch.Tensor]]:
        """Batches of ``split`` (default the settings' split) on the device, up to ``max_images`` images."""
        split = split or self.settings.split
        loader = {"test": self.dm.test_dataloader, "val": self.dm.val_dataloader, "train": self.dm.train_dataloader}[split]
        seen = 0
        for batch in loader():
            if self.settings.max_images is not None and seen >= self.settings.max_images:
                return
            seen += batch["image"].shape[0]
            yield {k: v.to(self.device) for k, v in batch.items() if torch.is_tensor(v)}

    def correct(self, images: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        from metrics.eval_classifier import classifier_accuracy

        return classifier_accuracy(self.classifier.model, images.float().clamp(-1, 1), target, "multilabel").cpu()

    def label(self, x: torch.Tensor, y_s: torch.Tensor, target: torch.Tensor, k: int = 1) -> torch.Tensor:
        """K×B label-based outputs (fresh codes from the run's generator)."""
        return self.module.translate(x, target, source_attrs=y_s, num_codes=k, generator=self.generator)["images"]

    def reference(self, x: torch.Tensor, y_s: torch.Tensor, ref: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Reference-based outputs with att_diff = target − source (the code's ``E(X_r, d) + E(X_s, −d)``)."""
        return self.module.translate(x, None, source_attrs=y_s, reference=ref, reference_attrs=target)["image"]


def cycled(pool: torch.Tensor, count: int, shift: int = 0) -> torch.Tensor:
    """``count`` items of ``pool`` (along dim 0) taken in turn, starting ``shift`` along."""
    return pool[(torch.arange(count, device=pool.device) + shift) % pool.shape[0]]


def reference_pools(run: Run, groups: Callable[[torch.Tensor], torch.Tensor]) -> dict[int, torch.Tensor]:
    """Up to ``POOL`` images of the evaluated split for each group g, where ``groups(attrs)`` (B×G bool) says
    which images belong to g: the references of an attribute (Table 1) or of a target domain (Table 3)."""
    pools: dict[int, list[torch.Tensor]] = {}

    def count(g: int) -> int:
        return sum(t.shape[0] for t in pools.get(g, []))

    for b in run.batches():
        member = groups(b["attrs"].float())
        for g in range(member.shape[1]):
            if count(g) < POOL and bool(member[:, g].any()):
                pools.setdefault(g, []).append(b["image"][member[:, g]][: POOL - count(g)])
        if all(count(g) >= POOL for g in range(member.shape[1])):
            break
    return {g: torch.cat(images) for g, images in pools.items()}


def single_flip_scores(run: Run, fid: bool) -> tuple[dict[str, dict[str, list[float]]], dict[str, Any]]:
    """Per mode and attribute: accuracy (fraction) and, with ``fid``, the fakes' feature moments; plus the real
    moments under ``"real"`` and the extractor's note under ``"note"``."""
    acc = {m: {a: [] for a in run.names} for m in MODES}
    moments: dict[str, Any] = {}
    extractor = None
    if fid:
        extractor, moments["note"] = feature_extractor(run.classifier)
        extractor = extractor.to(run.device).eval()
        moments["real"] = Moments()
    with torch.no_grad():
        pools = reference_pools(run, lambda attrs: attrs == 1)
        for n, b in enumerate(run.batches()):
            x, y_s = b["image"], b["attrs"].float()
            if extractor is not None:
                moments["real"].add(extractor(x.float()))
            for i, attr in enumerate(run.names):
                target = single_flip(y_s, attr, run.names)
                fakes = {"label": (run.label(x, y_s, target)[0], target)}
                absent = (y_s[:, i] == 0).nonzero().view(-1)
                if absent.numel() and i in pools:
                    ref, t_ref = cycled(pools[i], absent.numel(), n * x.shape[0]), target[absent]
                    fakes["reference"] = (run.reference(x[absent], y_s[absent], ref, t_ref), t_ref)
                for mode, (out, t) in fakes.items():
                    acc[mode][attr] += run.correct(out, t)[:, i].tolist()
                    if extractor is not None:
                        moments.setdefault(f"{mode}/{attr}", Moments()).add(extractor(out.float().clamp(-1, 1)))
    return acc, moments


def _mode_rows(paths: Sequence[Path], settings: EvalSettings, protocol: str,
               fill: Callable[[Run, OurRows, str], None]) -> OurRows:
    ours = OurRows()
    for path in paths:
        fill(Run(path, settings, protocol), ours, protocol)
    return ours


def _extra_columns(ours: OurRows, names: Sequence[str], fmt: str) -> None:
    for a in names:
        if a not in ATTRIBUTES:
            ours.add_column(Column(a, a.replace("_", " "), fmt))


def table1(paths: Sequence[Path], settings: EvalSettings) -> OurRows:
    def fill(run: Run, ours: OurRows, _p: str) -> None:
        acc, _ = single_flip_scores(run, fid=False)
        _extra_columns(ours, run.names, ".1f")
        for mode, per_attr in acc.items():
            for attr, values in per_attr.items():
                if values:
                    ours.add(f"{run.row} ({MODES[mode]})", attr, 100 * sum(values) / len(values))
        counts = ", ".join(f"{a} {len(acc['reference'][a])}" for a in run.names)
        ours.notes.append(f"{run.row}: label-based over every {settings.split} image per attribute; reference-based "
                          f"pairs (source without, reference with the attribute): {counts}.")

    ours = _mode_rows(paths, settings, "bridge_table1", fill)
    ours.notes.append("Accuracy (%) = the evaluation classifier agrees that the flipped attribute took its target value.")
    return ours


def table2(paths: Sequence[Path], settings: EvalSettings) -> OurRows:
    def fill(run: Run, ours: OurRows, _p: str) -> None:
        _, moments = single_flip_scores(run, fid=True)
        _extra_columns(ours, run.names, ".2f")
        for mode in MODES:
            for attr in run.names:
                if f"{mode}/{attr}" in moments:
                    ours.add(f"{run.row} ({MODES[mode]})", attr, frechet(moments["real"], moments[f"{mode}/{attr}"]))
        if moments["note"] not in ours.notes:
            ours.notes.append(moments["note"])

    ours = _mode_rows(paths, settings, "bridge_table2", fill)
    ours.notes.append("Fakes: Table 1's single-flip outputs of each attribute; real: the evaluated split's images.")
    return ours


def domain_pairs(names: Sequence[str]) -> list[tuple[str, int, int]]:
    """(``src2trg``, src index, trg index) for every ordered pair of one-hot domains."""
    return [(f"{s}2{t}", i, j) for j, t in enumerate(names) for i, s in enumerate(names) if i != j]


def table3(paths: Sequence[Path], settings: EvalSettings) -> OurRows:
    def fill(run: Run, ours: OurRows, protocol: str) -> None:
        extractor, note = feature_extractor(run.classifier)
        extractor = extractor.to(run.device).eval()
        pairs = domain_pairs(run.names)
        real = {j: Moments() for j in range(len(run.names))}
        fake = {(key, m): Moments() for key, _, _ in pairs for m in MODES}
        with torch.no_grad():
            for b in run.batches("train"):
                dom = _one_hot_domains(b["attrs"], protocol)
                for j in real:
                    if (dom == j).any():
                        real[j].add(extractor(b["image"][dom == j].float()))
            pools = reference_pools(run, lambda attrs: attrs == 1)
            for n, b in enumerate(run.batches()):
                x, y = b["image"], b["attrs"].float()
                dom = _one_hot_domains(y, protocol)
                for key, i, j in pairs:
                    src = (dom == i).nonzero().view(-1)
                    if not src.numel():
                        continue
                    target = torch.zeros_like(y[src])
                    target[:, j] = 1
                    for out in run.label(x[src], y[src], target, OUTPUTS_PER_SOURCE):
                        fake[(key, "label")].add(extractor(out.float().clamp(-1, 1)))
                    for k in range(OUTPUTS_PER_SOURCE if j in pools else 0):
                        refs = cycled(pools[j], src.numel(), (n * x.shape[0] + k) * src.numel())
                        out = run.reference(x[src], y[src], refs, target)
                        fake[(key, "reference")].add(extractor(out.float().clamp(-1, 1)))
        for (key, mode), moments in fake.items():
            j = next(j for k, _, j in pairs if k == key)
            ours.add(f"{run.row} ({MODES[mode]})", key, frechet(real[j], moments))
        ours.columns += [Column(k, k, ".2f") for k, _, _ in pairs if k not in PAIRS and k not in
                         {c.key for c in ours.columns}]
        if note not in ours.notes:
            ours.notes.append(note)

    ours = _mode_rows(paths, settings, "bridge_table3", fill)
    ours.notes.append(f"{OUTPUTS_PER_SOURCE} outputs per test source (fresh codes, or references among the split's "
                      f"first {POOL} images of the target domain); real: the train images of the target domain "
                      "(StarGAN v2).")
    return ours


def _one_hot_domains(attrs: torch.Tensor, protocol: str) -> torch.Tensor:
    """The domain index of one-hot label rows; ConfigError when a row is not one-hot."""
    if not bool((attrs.sum(1) == 1).all()):
        raise ConfigError(f"protocol={protocol} scores one-hot domains (AFHQ's cat/dog/wild as the bridge trains "
                          "them); this checkpoint's labels are not one-hot.")
    return attrs.argmax(1)


PROTOCOLS = (
    Protocol("bridge_table1", "Accuracy of each attribute on CelebA (single-attribute flips)", TABLE1, table1,
             methods=("bridge",)),
    Protocol("bridge_table2", "FID of each attribute on CelebA", TABLE2, table2, methods=("bridge",)),
    Protocol("bridge_table3", "FID of each conversion on AFHQ", TABLE3, table3, methods=("bridge",)),
)
