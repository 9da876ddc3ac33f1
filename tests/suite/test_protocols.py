"""Papers' tables as evaluation protocols (suite/protocols): AGGAN Tables I–III written with the published figures
beside ours, PSNR/MSE on a hand-computed pair, Table II's rows read from configs, Table III's counts from the nets."""

from __future__ import annotations

import json
import math
import re
import warnings
from pathlib import Path

import pytest
import torch

import evaluate
from metrics.image_quality import to_8bit
from suite.comparison import row_label
from suite.errors import CheckpointError, ConfigError
from suite.protocols import PROTOCOLS, EvalSettings, get_protocol
from suite.protocols.aggan import TABLE1, dataset_key, table2_row, table3_rows
from suite.protocols.paired import CheckpointFacts, pair_scores, paired_scores
from suite.training import build_method, train
from tests.conftest import compose_config
from tests.datamodules.fixtures import TINY_RUN, write_bu3dfe
from tests.methods import RUN_OVERRIDES
from tests.suite.test_comparison import offline_wandb


def one_sentence(message: str) -> bool:
    return message.endswith(".") and ". " not in message and "\n" not in message


def row_of(table: str, name: str) -> list[str]:
    """The cells of the markdown row ``name`` (first cell excluded)."""
    [line] = [line for line in table.splitlines() if line.startswith(f"| {name} |")]
    return [c.strip() for c in line.strip("|").split("|")][1:]


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """Tiny checkpoints on the embedded faces after one iteration: AGGAN, AGGAN −AD, CycleGAN."""
    root = tmp_path_factory.mktemp("protocols")
    mp = pytest.MonkeyPatch()
    mp.setenv("FACETRANS_CACHE", str(root / "cache"))
    base = ["logger=none", "trainer=cpu", "trainer.enable_progress_bar=false", "scale=synth", "trainer.max_steps=1"]
    runs = {"aggan": ("aggan", []), "aggan_ad": ("aggan", ["method.attention_discriminator=false"]),
            "cyclegan": ("cyclegan", [])}
    out = {}
    for key, (method, extra) in runs.items():
        cfg = compose_config([*base, f"run_dir={root / key}", *RUN_OVERRIDES[method], *extra])
        out[key] = train(cfg)["checkpoint"]
    yield out
    mp.undo()


def protocol_cfg(name: str, out_dir: Path, paths=(), *extra: str):
    ckpts = [f"ckpt_paths=[{','.join(str(p) for p in paths)}]"] if paths else []
    return compose_config([f"protocol={name}", *ckpts, f"out_dir={out_dir}", "batch_size=4", *extra],
                          config_name="evaluate")


def test_psnr_and_mse_on_a_hand_computed_pair():
    # 8-bit levels as torchvision's save_image writes them: floor(255·(x·0.5 + 0.5) + 0.5)
    assert to_8bit(torch.tensor([-1.0, 0.0, 1.0, 2 * 10.4 / 255 - 1, 2 * 10.6 / 255 - 1])).tolist() == [0, 128, 255, 10, 11]
    pred = torch.tensor([0.0, 1.0, 1.0, 1.0]).view(1, 1, 2, 2)  # levels 128, 255, 255, 255
    target = torch.tensor([-1.0, 1.0, 1.0, 1.0]).view(1, 1, 2, 2)  # levels 0, 255, 255, 255
    scores = pair_scores(pred, target)
    assert scores["mse"].item() == pytest.approx(128**2 / 4)
    assert scores["psnr"].item() == pytest.approx(10 * math.log10(255**2 / (128**2 / 4)), rel=1e-6)
    floats = pair_scores(pred, target, eight_bit=False)  # float images: MSE (1/4 in [-1,1]) in 0..255 units
    assert floats["mse"].item() == pytest.approx(0.25 * 127.5**2)
    assert floats["psnr"].item() == pytest.approx(10 * math.log10(4 / 0.25), rel=1e-6)


def test_table2_rows_come_from_the_stored_config():
    def facts(**switches):
        config = {"method": {"name": "aggan", "attention_generator": True, "attention_discriminator": True,
                             "pixel_loss": True, "tv_loss": True, "curriculum": True, **switches}}
        return CheckpointFacts(Path("x.ckpt"), "aggan", row_label(config), "arface", config)

    assert table2_row(facts()) == "Full"
    assert table2_row(facts(attention_discriminator=False)) == "Full − AD"
    assert table2_row(facts(attention_discriminator=False, attention_generator=False)) == "Full − AD − AG"
    assert table2_row(facts(attention_discriminator=False, pixel_loss=False)) == "Full − AD − PL"
    assert table2_row(facts(attention_discriminator=False, tv_loss=False)) == "Full − AD − AL"
    assert table2_row(facts(attention_discriminator=False, pixel_loss=False, tv_loss=False)) == "Full − AD − PL − AL"
    # not a row of the paper: kept under its own label
    assert table2_row(facts(pixel_loss=False)) == "aggan −PL"
    assert table2_row(facts(curriculum=False)) == "aggan −curriculum"


def test_dataset_names_map_to_the_papers_columns():
    assert [dataset_key(n) for n in ("arface", "ar_face", "AR-Face", "bu3dfe", "synthfaces")] == [
        "arface", "arface", "arface", "bu3dfe", "synthfaces"]


def test_unknown_protocol_is_one_sentence_naming_the_valid_ones(tmp_path):
    with pytest.raises(ConfigError) as err:
        evaluate.run_protocol(protocol_cfg("aggan_table9", tmp_path))
    assert one_sentence(str(err.value)) and all(name in str(err.value) for name in PROTOCOLS)
    assert get_protocol("aggan_table1").needs_checkpoints and not get_protocol("aggan_table3").needs_checkpoints
    with pytest.raises(ConfigError) as err:  # a table of checkpoints without any
        evaluate.run_protocol(protocol_cfg("aggan_table1", tmp_path))
    assert one_sentence(str(err.value)) and "ckpt_paths" in str(err.value)


def test_table1_and_table2_from_checkpoints(checkpoints, tmp_path):
    a, ad, cyc = checkpoints["aggan"], checkpoints["aggan_ad"], checkpoints["cyclegan"]
    table = evaluate.run_protocol(protocol_cfg("aggan_table1", tmp_path, [a, ad, cyc])).read_text()
    assert table == (tmp_path / "aggan_table1.md").read_text()
    header = [c.strip() for c in table.splitlines()[4].strip("|").split("|")]
    assert header[:5] == ["Model", "AR Face PSNR (paper)", "AR Face PSNR (ours)", "AR Face MSE (paper)",
                          "AR Face MSE (ours)"]
    assert "synthfaces (true counterfactual) PSNR (ours)" in header
    psnr_col = header.index("synthfaces (true counterfactual) PSNR (ours)") - 1
    # every paper row in order, published figures from the data, ours where we have a checkpoint
    assert [line.split("|")[1].strip() for line in table.splitlines()[6:6 + len(TABLE1.rows)]] == list(TABLE1.rows)
    assert row_of(table, "AGGAN")[:4] == ["14.9187", "—", "2508.6", "—"]
    assert row_of(table, "DualGAN")[psnr_col] == "—"
    scores = paired_scores(a, EvalSettings(batch_size=4))
    assert row_of(table, "AGGAN")[psnr_col] == f"{scores.psnr:.4f}"
    assert row_of(table, "AGGAN")[psnr_col + 1] == f"{scores.mse:.1f}"
    assert scores.psnr >= 10 * math.log10(255**2 / scores.mse) - 1e-6  # mean of per-image PSNRs ≥ PSNR of mean MSE
    assert row_of(table, "CycleGAN")[psnr_col] != "—" and row_of(table, "aggan −AD")[psnr_col] != "—"
    assert "AMT" in table and "human" in table and "CelebA has no paired images" in table
    assert "doing nothing" in table

    table2 = evaluate.run_protocol(protocol_cfg("aggan_table2", tmp_path, [a, ad])).read_text()
    assert row_of(table2, "Full")[:2] == ["14.9187", "—"] and row_of(table2, "Full − AD")[0] == "14.6352"
    assert row_of(table2, "Full")[4] == f"{scores.psnr:.4f}" and row_of(table2, "Full − AD")[4] != "—"
    assert row_of(table2, "Full − AD − AG")[4] == "—"
    one = evaluate.run_protocol(protocol_cfg("aggan_table2", tmp_path / "one", (), f"ckpt_path={ad}")).read_text()
    assert row_of(one, "Full − AD")[4] == row_of(table2, "Full − AD")[4] and row_of(one, "Full")[1] == "—"
    with pytest.raises(CheckpointError) as err:  # Table II is AGGAN's ablation: a CycleGAN checkpoint has no row
        evaluate.run_protocol(protocol_cfg("aggan_table2", tmp_path, [a, cyc]))
    assert one_sentence(str(err.value)) and "method=cyclegan" in str(err.value)


def test_bu3dfe_fills_the_papers_bu3dfe_columns(make_cfg, tmp_path):
    """Paired real data (the same subject's target expression as gt) lands in the paper's own Bu3dfe column."""
    root = write_bu3dfe(tmp_path / "BU_3DFE")
    overrides = [o for o in TINY_RUN if "fast_dev_run" not in o]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ckpt = train(make_cfg("data=bu3dfe", f"data.root={root}", *overrides, "data.test_subjects=3",
                              "trainer.max_steps=1"))["checkpoint"]
        table = evaluate.run_protocol(protocol_cfg("aggan_table1", tmp_path / "t", [ckpt])).read_text()
    bu = row_of(table, "AGGAN")[4:8]  # Bu3dfe PSNR (paper), (ours), MSE (paper), (ours)
    assert bu[0] == "21.3247" and bu[2] == "574.5" and float(bu[1]) > 0 and float(bu[3]) > 0
    assert row_of(table, "AGGAN")[1] == "—" and "bu3dfe: doing nothing" in table


def test_the_table_is_logged_to_wandb(checkpoints, tmp_path, monkeypatch):
    wandb_dir = offline_wandb(monkeypatch, tmp_path)
    table = evaluate.run_protocol(protocol_cfg("aggan_table2", tmp_path, [checkpoints["aggan"]])).read_text()
    [logged] = [json.loads(f.read_text()) for f in wandb_dir.glob(
        "wandb/offline-run-*/files/media/table/eval/aggan_table2_*.table.json")]
    assert logged["columns"][:3] == ["Component", "AR Face PSNR (paper)", "AR Face PSNR (ours)"]
    assert logged["data"][0] == ["Full", *row_of(table, "Full")]


def test_a_split_without_pairs_is_said_not_scored(checkpoints, tmp_path, monkeypatch):
    import suite.protocols.aggan as aggan

    monkeypatch.setattr(aggan, "paired_scores", lambda path, settings: None)  # as a CelebA test split: no gt
    table = evaluate.run_protocol(protocol_cfg("aggan_table1", tmp_path, [checkpoints["aggan"]])).read_text()
    assert "has no paired target image (gt), so no PSNR/MSE" in table
    assert all(cell == "—" for cell in row_of(table, "AGGAN")[1::2]) and "synthfaces" not in table.split("Notes")[0]


def test_table3_counts_are_the_built_nets(tmp_path):
    ours, raw = table3_rows(image_size=32, scale="synth")

    def built(method: str, view: str, domains: int):
        cfg = compose_config(["scale=synth", f"method={method}", f"method.view={view}"])
        info = {"name": "t", "view": view, "image_size": 32, "channels": 3, "num_domains": domains,
                "domain_names": [str(i) for i in range(domains)]}
        return build_method(cfg, info)

    def numel(*nets):
        return sum(p.numel() for net in nets for p in net.parameters())

    cyc = built("cyclegan", "two_domain", 2)
    assert raw["CycleGAN"]["total"] == numel(cyc.G_xy, cyc.G_yx, cyc.D_y, cyc.D_x)
    ag = built("aggan", "two_domain", 2)
    assert raw["AGGAN two-domain (ours only)"]["total"] == numel(ag.G_xy, ag.G_yx, ag.D_y, ag.D_x, ag.D_ya, ag.D_xa)
    md = built("aggan", "multi_domain", 8)
    assert raw["AGGAN(Ours)"]["total"] == numel(*[n for n in (md.G, md.D, getattr(md, "D_a", None)) if n is not None])
    star = built("stargan", "multi_domain", 8)
    assert raw["StarGAN"]["total"] == numel(star.G, star.D)
    assert ours.rows["CycleGAN"]["models"] == "m(m-1)/2 = 28"
    assert ours.rows["CycleGAN"]["params"] == f"{raw['CycleGAN']['total'] / 1e6:.1f}M × 28"
    with pytest.raises(ConfigError) as err:
        evaluate.run_protocol(protocol_cfg("aggan_table3", tmp_path, [tmp_path / "x.ckpt"]))
    assert one_sentence(str(err.value))


def test_table3_at_the_papers_settings_needs_no_checkpoint(tmp_path):
    table = evaluate.run_protocol(protocol_cfg("aggan_table3", tmp_path)).read_text()
    cyc = row_of(table, "CycleGAN")
    assert cyc[:2] == ["m(m-1)/2", "m(m-1)/2 = 28"] and cyc[2] == "52.6M × 28"
    assert re.fullmatch(r"\d+\.\dM × 28", cyc[3])
    assert row_of(table, "AGGAN(Ours)")[2] == "52.6M × 1" and row_of(table, "Pix2pix")[1] == "—"
    assert row_of(table, "StarGAN")[1:4] == ["1", "53.2M × 1", "53.2M × 1"]  # StarGAN's G + D at 128 px
