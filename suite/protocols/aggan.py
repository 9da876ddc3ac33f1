"""AGGAN's three tables (Tang, Xu, Sebe, Yan, "Attention-Guided Generative Adversarial Networks for Unsupervised
Image-to-Image Translation", IJCNN 2019, arXiv:1903.12296) as evaluation protocols.

- ``aggan_table1`` (Table I): PSNR and MSE of each model's translation against the same subject's real
  target-expression image, per dataset (AR Face, Bu3dfe); a row per model (AGGAN, CycleGAN, StarGAN here).
- ``aggan_table2`` (Table II): the ablation rows Full, −AD, −AD−AG, −AD−PL, −AD−AL, −AD−PL−AL (AR Face), each
  checkpoint's row read from its stored config.
- ``aggan_table3`` (Table III): models needed for m = 8 domains (RaFD) and parameters per model, counted on the
  nets built from ``conf/method`` at ``scale=paper``; needs no checkpoint.

The published figures below are copied from the paper's tables; they are shown beside ours, never mixed in.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path

from suite.errors import ConfigError
from suite.protocols.base import Column, EvalSettings, OurRows, PaperTable, Protocol, parse_rows
from suite.protocols.paired import CheckpointFacts, checkpoint_facts, paired_scores
from suite.protocols.params import build_for_counting, millions, parameter_counts

PAPER = "Tang et al., Attention-Guided GANs for Unsupervised Image-to-Image Translation (IJCNN 2019, arXiv:1903.12296)"
AMT = "a human real-vs-fake study on Amazon Mechanical Turk (§IV-A), on every dataset, which no code reproduces"
# the paper's dataset column groups (data.name of a checkpoint → header); other datasets get columns of their own
DATASETS = {"arface": "AR Face", "bu3dfe": "Bu3dfe"}
OTHER_DATASETS = {"synthfaces": "synthfaces (true counterfactual)", "rafd": "RaFD", "celeba": "CelebA"}
# our methods → Table I's rows
MODEL_ROWS = {"aggan": "AGGAN", "cyclegan": "CycleGAN", "stargan": "StarGAN"}


def _columns(datasets: dict[str, str]) -> tuple[Column, ...]:
    return tuple(c for key, header in datasets.items()
                 for c in (Column(f"{key}/psnr", f"{header} PSNR"), Column(f"{key}/mse", f"{header} MSE", ".1f")))


def _published(text: str, datasets: Sequence[str]) -> dict[str, dict[str, float]]:
    """Rows as printed, ``name | psnr | mse | psnr | mse …`` in ``datasets`` order → ``{row: {column key: value}}``."""
    keys = [f"{d}/{m}" for d in datasets for m in ("psnr", "mse")]
    return {name: dict(zip(keys, map(float, values), strict=True))
            for name, *values in parse_rows(text)}


TABLE1 = PaperTable(
    source=f"{PAPER}, Table I",
    row_header="Model",
    columns=_columns(DATASETS),
    rows=_published("""
        CycleGAN      | 14.8142 | 2538.4  | 21.1369 | 602.1
        DualGAN       | 14.7458 | 2545.7  | 21.0617 | 595.1
        DiscoGAN      | 13.1547 | 3321.9  | 15.4010 | 2018.7
        ComboGAN      | 14.7465 | 2550.6  | 20.7377 | 664.4
        DistanceGAN   | 11.4983 | 4918.5  | 13.9514 | 3426.6
        Dist. + Cycle | 3.8632  | 27516.2 | 10.8042 | 6066.7
        Self Dist.    | 3.8674  | 26775.4 | 6.6458  | 14184.2
        StarGAN       | 13.5757 | 3360.2  | 20.8275 | 634.4
        ContrastGAN   | 14.8495 | 2511.1  | 21.1205 | 607.8
        Pix2pix       | 14.6118 | 2601.3  | 21.2864 | 580.6
        Enc.-Decoder  | 12.6660 | 3755.4  | 16.5609 | 1576.7
        BicycleGAN    | 14.7914 | 2541.8  | 19.1703 | 1045.4
        AGGAN         | 14.9187 | 2508.6  | 21.3247 | 574.5
    """, list(DATASETS)),  # Table I: AR Face PSNR, MSE; Bu3dfe PSNR, MSE (AMT columns left out)
    not_computed={
        "AMT": AMT + "; left out.",
        "CelebA PSNR/MSE": "CelebA has no paired images (no subject photographed with both expressions), so the "
                           "paper reports only AMT there and a CelebA checkpoint gets no PSNR/MSE.",
        "Other rows": "DualGAN, DiscoGAN, ComboGAN, DistanceGAN, Dist. + Cycle, Self Dist., ContrastGAN, Pix2pix, "
                      "Enc.-Decoder and BicycleGAN are not methods of this suite.",
    },
)

ABLATIONS = {  # Table II's rows ↔ the components a checkpoint switched off (README "Ablations (AGGAN, Table II)")
    "Full": frozenset(),
    "Full − AD": frozenset({"AD"}),
    "Full − AD − AG": frozenset({"AD", "AG"}),
    "Full − AD − PL": frozenset({"AD", "PL"}),
    "Full − AD − AL": frozenset({"AD", "AL"}),
    "Full − AD − PL − AL": frozenset({"AD", "PL", "AL"}),
}
TABLE2 = PaperTable(
    source=f"{PAPER}, Table II (on AR Face)",
    row_header="Component",
    columns=_columns({"arface": DATASETS["arface"]}),
    rows=_published("""
        Full                | 14.9187 | 2508.6
        Full − AD           | 14.6352 | 2569.2
        Full − AD − AG      | 14.4646 | 2636.7
        Full − AD − PL      | 14.5128 | 2619.8
        Full − AD − AL      | 14.6129 | 2652.6
        Full − AD − PL − AL | 14.3287 | 2787.3
    """, ["arface"]),
    not_computed={"AMT": AMT + "; left out."},
)

M_DOMAINS = 8  # Table III: RaFD's 8 expressions
IMAGE_SIZE = 256  # §IV-A: "images are rescaled to 256 × 256 × 3" for all datasets and baselines
TABLE3 = PaperTable(
    source=f"{PAPER}, Table III (RaFD, m = 8)",
    row_header="Method",
    columns=(Column("models", "# of Models"), Column("params", "# of Parameters")),
    rows={name: {"models": models, "params": params} for name, models, params in parse_rows("""
        Pix2pix         | m(m-1)   | 57.2M × 56
        Encoder-Decoder | m(m-1)   | 41.9M × 56
        BicycleGAN      | m(m-1)   | 64.3M × 56
        CycleGAN        | m(m-1)/2 | 52.6M × 28
        DualGAN         | m(m-1)/2 | 178.7M × 28
        DiscoGAN        | m(m-1)/2 | 16.6M × 28
        DistanceGAN     | m(m-1)/2 | 52.6M × 28
        Dist. + Cycle   | m(m-1)/2 | 52.6M × 28
        Self Dist.      | m(m-1)/2 | 52.6M × 28
        ComboGAN        | m        | 14.4M × 8
        StarGAN         | 1        | 53.2M × 1
        ContrastGAN     | 1        | 52.6M × 1
        AGGAN(Ours)     | 1        | 52.6M × 1
    """)},
    not_computed={"Other rows": "only CycleGAN, StarGAN and AGGAN are methods of this suite."},
)
# Table III rows we build: row → (method, view, the models m domains need as the paper prints it, image size).
# StarGAN at its own 128 px [inferred]: its D's last kernel grows with the image, and the published 53.2M is
# StarGAN's G (8.4M) + D (44.8M) at 128 px; at 256 px it would be 53.4M.
COUNTED = {
    "CycleGAN": ("cyclegan", "two_domain", "m(m-1)/2", IMAGE_SIZE),
    "StarGAN": ("stargan", "multi_domain", "1", 128),
    "AGGAN(Ours)": ("aggan", "multi_domain", "1", IMAGE_SIZE),
    "AGGAN two-domain (ours only)": ("aggan", "two_domain", "m(m-1)/2", IMAGE_SIZE),
}


def paired_rows(paths: Sequence[Path], settings: EvalSettings, protocol: str, methods: Sequence[str],
                row_of: Callable[[CheckpointFacts], str]) -> OurRows:
    """PSNR/MSE of every checkpoint against its test split's ``gt``, in row ``row_of(facts)``, under the columns
    of its dataset (a dataset the paper did not use gets columns of its own)."""
    facts = [checkpoint_facts(p, protocol, methods) for p in paths]  # every checkpoint checked before any work
    ours, baseline = OurRows(), {}
    for f in facts:
        f = dataclasses.replace(f, dataset=dataset_key(f.dataset))
        scores = paired_scores(f.path, settings)
        if scores is None:
            ours.notes.append(f"{f.path} ({f.method} on {f.dataset}): the {settings.split} split has no paired target "
                              "image (gt), so no PSNR/MSE" + (" — CelebA has no pairs." if f.dataset == "celeba" else "."))
            continue
        if f.dataset not in DATASETS:
            for column in _columns({f.dataset: OTHER_DATASETS.get(f.dataset, f.dataset)}):
                ours.add_column(column)
        row = row_of(f)
        ours.add(row, f"{f.dataset}/psnr", scores.psnr)
        ours.add(row, f"{f.dataset}/mse", scores.mse)
        baseline.setdefault(f.dataset, (scores.psnr_input, scores.mse_input, scores.num_images))
    for dataset, (p, m, n) in baseline.items():
        ours.notes.append(f"{dataset}: doing nothing (the input image against the target) scores PSNR {p:.4f} dB, "
                          f"MSE {m:.1f} ({n} test images).")
    if "synthfaces" in baseline:
        ours.notes.append("synthfaces: the target is the rendered true counterfactual (the same face, the target "
                          "expression), not a second photograph of the subject.")
    ours.notes.append("PSNR/MSE per image on 8-bit levels (0..255), averaged over the split (suite.protocols.paired)."
                      if settings.eight_bit else "PSNR/MSE per image on float images (MSE in 0..255 units), averaged.")
    return ours


def dataset_key(name: str) -> str:
    """A data module's name as the tables key it: lower case without separators ("AR_Face" → "arface")."""
    return "".join(ch for ch in name.lower() if ch.isalnum())


def table1_row(f: CheckpointFacts) -> str:
    """Table I's row of a checkpoint: the model's name; an ablated or variant run keeps its own label."""
    return MODEL_ROWS[f.method] if f.label == f.method else f.label


def table2_row(f: CheckpointFacts) -> str:
    """Table II's row: the set of components switched off (AD, AG, PL, AL); other combinations, or runs with
    other switches changed (e.g. −curriculum), keep their own label as a row of ours only."""
    rows = {removed: row for row, removed in ABLATIONS.items()}
    if f.added or not f.removed <= {"AD", "AG", "PL", "AL"}:
        return f.label
    return rows.get(f.removed, f.label)


def table1(paths: Sequence[Path], settings: EvalSettings) -> OurRows:
    return paired_rows(paths, settings, "aggan_table1", tuple(MODEL_ROWS), table1_row)


def table2(paths: Sequence[Path], settings: EvalSettings) -> OurRows:
    return paired_rows(paths, settings, "aggan_table2", ("aggan",), table2_row)


def table3_rows(m: int = M_DOMAINS, image_size: int | None = None, overrides: Sequence[str] = (),
                scale: str = "paper") -> tuple[OurRows, dict[str, dict[str, int]]]:
    """Our Table III: per row, the models needed for ``m`` domains and the parameters of one model (all of its
    generators and discriminators), at each row's image size (``image_size``: one size for all); also returns the
    raw counts ``{row: {net: parameters, total: …}}``."""
    ours, raw = OurRows(columns=[Column("nets", "networks of one model")]), {}
    for row, (method, view, formula, size) in COUNTED.items():
        size = image_size or size
        models = {"m(m-1)/2": m * (m - 1) // 2, "1": 1}[formula]
        counts = parameter_counts(build_for_counting(method, view, m if view == "multi_domain" else 2, size,
                                                     overrides, scale))
        raw[row] = counts
        ours.rows[row] = {
            "models": formula if formula == str(models) else f"{formula} = {models}",
            "params": f"{millions(counts['total'])} × {models}",
            "nets": f"{size} px: " + ", ".join(f"{name} {millions(n)}" for name, n in counts.items() if name != "total"),
        }
    ours.notes += [
        f"Ours: nets built from conf/method/<method>.yaml at scale={scale} for m = {m} domains (no checkpoint); a "
        "model's parameters are all of its generators' and discriminators'.",
        "AGGAN(Ours) is the multi-domain form (method.view=multi_domain), the paper's one model for RaFD; the "
        "two-domain AGGAN needs m(m-1)/2 models, like CycleGAN.",
        "The paper does not say which networks its counts include (CycleGAN's 52.6M equals AGGAN's); StarGAN's "
        "53.2M is its G + D at 128 px.",
    ]
    return ours, raw


def table3(paths: Sequence[Path], settings: EvalSettings) -> OurRows:
    if paths:
        raise ConfigError("protocol=aggan_table3 counts the parameters of nets built from conf/method and takes no "
                          "checkpoint; drop ckpt_path/ckpt_paths.")
    return table3_rows()[0]


PROTOCOLS = (
    Protocol("aggan_table1", "Quantitative comparison with different models (PSNR and MSE; MSE: lower is better)",
             TABLE1, table1, methods=tuple(MODEL_ROWS)),
    Protocol("aggan_table2", "Ablation study of AGGAN", TABLE2, table2, methods=("aggan",)),
    Protocol("aggan_table3", "Comparison of the overall model capacity on RaFD (m = 8)", TABLE3, table3),
)
