"""SPM's Table 1 (Wu et al., "Attribute-Driven Spontaneous Motion in Unpaired Image Translation", ICCV 2019) as an
evaluation protocol: ``python evaluate.py protocol=spm_table1 ckpt_paths=[full.ckpt,no_m.ckpt,no_r.ckpt,stargan.ckpt]``.

- FID columns S, BN, PN, AE (×1e3; Sec. 4.2.2): for a CelebA attribute x, VGGFace2 face-recognition features
  (:mod:`suite.protocols.vggface2`, from a local weights file) of every real test face with x, against the
  features of the test faces without x translated to x. A checkpoint's column is its ``data.attribute``.
- Acc. (%): the expression classifier's accuracy on RaFD translations (Sec. 4.2.2: a ResNet-18 trained on RaFD's
  train split; here the suite's evaluation classifier with ``arch=resnet18``, :data:`ACC_CLASSIFIER`), each test
  face to one other expression.
- Rows: ``method=spm`` with both modules → Ours (Full), ``method.motion=false`` → Ours (No M),
  ``method.refinement=false`` → Ours (No R); ``method=stargan`` → StarGAN. Several checkpoints of a row (seeds)
  show mean ± std. Other data (the embedded faces) gets columns of ours only.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from pathlib import Path

import torch
from omegaconf import OmegaConf

from suite.protocols.base import Column, EvalSettings, OurRows, PaperTable, Protocol, parse_rows
from suite.protocols.paired import CheckpointFacts, checkpoint_facts

PAPER = "Wu et al., Attribute-Driven Spontaneous Motion in Unpaired Image Translation (ICCV 2019)"
ATTRIBUTES = {"Smiling": "S", "Big_Nose": "BN", "Pointy_Nose": "PN", "Arched_Eyebrows": "AE"}
COLUMNS = (*(Column(k, f"{k} FID ×1e3 ↓", ".3f") for k in ATTRIBUTES.values()), Column("acc", "Acc. (%) ↑", ".2f"))
ACC_CLASSIFIER = {"arch": "resnet18", "epochs": 5, "cache_dir": None}  # Sec. 4.2.2's ResNet-18 (training [inferred])
FID_SCALE = 1e3  # Table 1 prints FID / 1000


def _published(text: str) -> dict[str, dict[str, float | str]]:
    keys = [c.key for c in COLUMNS]
    return {name: {k: float(v) for k, v in zip(keys, values, strict=True) if v != "-"} for name, *values in parse_rows(text)}


TABLE1 = PaperTable(
    source=f"{PAPER}, Table 1",
    row_header="Methods",
    columns=COLUMNS,
    rows=_published("""
        StarGAN     | 3.676 | 7.875 | 6.933 | 3.751 | 95.67
        CycleGAN    | 4.011 | 5.262 | 4.886 | 4.171 | 91.23
        Ganimorph   | 4.689 | 5.645 | 5.129 | 5.570 | 86.25
        MUNIT       | 5.189 | 5.551 | 4.761 | 5.271 | 81.43
        Ours (No M) | 3.224 | 6.051 | 5.682 | 4.667 | 88.29
        Ours (No R) | 3.022 | 6.505 | 5.894 | 3.911 | 90.96
        Ours (Full) | 2.907 | 5.137 | 4.704 | 3.678 | 97.85
        Real        | -     | -     | -     | -     | 98.75
    """),
    not_computed={
        "Other rows": "CycleGAN (a two-domain model per attribute is method=cyclegan, not scored here), Ganimorph and "
                      "MUNIT are not SPM/StarGAN checkpoints; Real's 98.75 % is the classifier on real RaFD test faces "
                      "(ours: the note under the table).",
    },
)
ROWS = {frozenset(): "Ours (Full)", frozenset({"motion"}): "Ours (No M)", frozenset({"refinement"}): "Ours (No R)"}


def table1_row(f: CheckpointFacts) -> str:
    """The row of a checkpoint: StarGAN, or SPM's Full / No M / No R by its switches; anything else its label."""
    if f.method == "stargan":
        return "StarGAN" if not (f.removed or f.added) else f.label
    return ROWS.get(f.removed, f.label) if not f.added else f.label


def _reals_config(config: dict) -> dict:
    """The run's config with the two-domain direction reversed: its test ``image``s are then every real test image
    of the target domain, once each."""
    cfg = OmegaConf.create(config)
    if "direction" in cfg.data:
        cfg.data.direction = "b2a" if cfg.data.direction == "a2b" else "a2b"
    return OmegaConf.to_container(cfg, resolve=False)


def frechet_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """FID of feature rows ``a`` (n1×d) and ``b`` (n2×d), in float64: ``‖μa − μb‖² + tr Σa + tr Σb − 2·tr √(Σa Σb)``.
    With A, B the centred rows over √(n − 1), Σa = AᵀA and the non-zero eigenvalues of Σa Σb are the squared
    singular values of A·Bᵀ, so ``tr √(Σa Σb)`` is the nuclear norm of A·Bᵀ: exact, and an n1×n2 SVD instead of a
    d×d matrix square root (d = 2048 here, a few hundred test images)."""
    a, b = a.double(), b.double()
    A = (a - a.mean(0)) / math.sqrt(max(len(a) - 1, 1))
    B = (b - b.mean(0)) / math.sqrt(max(len(b) - 1, 1))
    cross = torch.linalg.svdvals(A @ B.T).sum()
    return float((a.mean(0) - b.mean(0)).pow(2).sum() + A.pow(2).sum() + B.pow(2).sum() - 2 * cross)


def fid_score(path: Path, settings: EvalSettings, features) -> tuple[float, int, int]:
    """(FID, reals, fakes) of one checkpoint on face-recognition ``features``: two-domain runs compare the real
    target-domain test images with the translated source-domain ones; multi-domain runs every real test image with
    every translation."""
    from suite.evaluation import load_checkpoint_run, resolve_device
    from suite.training import build_datamodule

    dev = resolve_device(settings.device)
    module, dm, ckpt = load_checkpoint_run(path, dev)
    features = features.to(dev)
    found: dict[str, list[torch.Tensor]] = {"real": [], "fake": []}
    loaders = [(dm, "fake")]
    if module.view == "two_domain":
        cfg = OmegaConf.create(_reals_config(ckpt["suite"]["config"]))
        loaders.append((build_datamodule(cfg, cfg.method.view), "real"))
    for datamodule, role in loaders:
        datamodule.batch_size = settings.batch_size
        datamodule.setup("test")
        seen = 0
        for batch in datamodule.test_dataloader():
            if settings.max_images is not None and seen >= settings.max_images:
                break
            x = batch["image"].to(dev)
            if role == "fake":
                target = module.sample_target(batch)
                target = target.to(dev) if torch.is_tensor(target) else target
                found["fake"].append(features(module.translate(x, target)["image"].float().clamp(-1, 1)).cpu())
            if role == "real" or len(loaders) == 1:
                found["real"].append(features(x).cpu())
            seen += x.shape[0]
    real, fake = torch.cat(found["real"]), torch.cat(found["fake"])
    return frechet_distance(real, fake), len(real), len(fake)


def accuracy(path: Path, settings: EvalSettings) -> float:
    """Acc. (%): the evaluation classifier (:data:`ACC_CLASSIFIER`) on each test translation's target."""
    from suite.evaluation import TargetLabels, load_checkpoint_run, resolve_device, target_classifier

    dev = resolve_device(settings.device)
    module, dm, _ = load_checkpoint_run(path, dev)
    dm.batch_size = settings.batch_size
    dm.setup("fit")
    dm.setup("test")
    labels = TargetLabels.for_run(dm.info, module)
    clf = target_classifier(labels, dm, dict(ACC_CLASSIFIER), dev)
    hits, seen = 0.0, 0
    for batch in dm.test_dataloader():
        if settings.max_images is not None and seen >= settings.max_images:
            break
        batch = {k: (v.to(dev) if torch.is_tensor(v) else v) for k, v in batch.items()}
        fake = module.translate(batch["image"], module.sample_target(batch))["image"].float().clamp(-1, 1)
        hits += float(clf.accuracy(fake, labels.target(batch)).float().sum())
        seen += fake.shape[0]
    return 100.0 * hits / max(seen, 1)


def table1(paths: Sequence[Path], settings: EvalSettings) -> OurRows:
    from suite.protocols.vggface2 import FaceFeatures

    facts = [checkpoint_facts(p, "spm_table1", ("spm", "stargan")) for p in paths]  # all checked before any work
    features = FaceFeatures()  # the weights file is checked before any work too
    ours = OurRows()
    digest = hashlib.sha256(features.path.read_bytes()).hexdigest()[:12]
    for f in facts:
        row, data = table1_row(f), f.config.get("data") or {}
        view = (f.config.get("method") or {}).get("view")
        attribute = data.get("attribute")
        if f.dataset == "celeba" and view == "two_domain" and attribute in ATTRIBUTES:
            key = ATTRIBUTES[attribute]
        elif f.dataset == "rafd":
            ours.add(row, "acc", accuracy(f.path, settings))
            continue
        else:
            key = f"{f.dataset}/fid"
            ours.add_column(Column(key, f"{f.dataset} FID ×1e3 (VGGFace2 features)", ".4f"))
        score, n_real, n_fake = fid_score(f.path, settings, features)
        ours.add(row, key, score / FID_SCALE)
        ours.notes.append(f"{f.path}: {row}, {f.dataset} ({attribute or view}), FID of {n_fake} translations against "
                          f"{n_real} real images.")
    ours.notes.append(f"Features: VGGFace2 ResNet-50 from {features.path} (sha256 {digest}…), 2048-d pooled, 224 px "
                      "BGR minus the mean; FID divided by 1000 as Table 1 prints it.")
    return ours


PROTOCOLS = (
    Protocol("spm_table1", "Quantitative comparison in terms of distribution discrepancy and classification accuracy",
             TABLE1, table1, methods=("spm", "stargan")),
)
