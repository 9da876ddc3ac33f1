"""protocol=disent_table3 / disent_table4 on tiny embedded-face checkpoints: the tables are written in the paper's
layout, Table III's numbers are the Hopkins statistic of each expression cluster computed by hand, Table IV
translates exactly the neutral test faces to every expression."""

from __future__ import annotations

import math

import pytest
import torch

from metrics.disentanglement import hopkins_statistic
from suite.errors import ConfigError
from suite.evaluation import load_checkpoint_run
from suite.protocols import EvalSettings, run_protocol
from suite.protocols.disent import table3, table4
from suite.training import train
from tests.lightning_modules.test_disent import RUN

FC = ("experiment=disent_ablation1_synth", "method.encoder.hidden=16", "method.encoder.code_dim=8",
      "method.classifier.hidden=16")
DATA = ("data.test_size=40", "data.num_workers=0", "trainer.max_steps=2", "checkpoint_every=2")


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    from tests.conftest import compose_config

    root = tmp_path_factory.mktemp("disent_tables")
    base = ["logger=none", "trainer=cpu", "trainer.enable_progress_bar=false", "scale=synth"]
    runs = {
        "ablation_dis": [*base, *RUN, *FC, *DATA],
        "ablation_nodis": [*base, *RUN, *FC, *DATA, "method.disentanglement_loss=false"],
        "full": [*base, *RUN, *DATA],
    }
    out = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FACETRANS_CACHE", str(root / "cache"))
        for name, overrides in runs.items():
            if name.startswith("ablation"):
                overrides = [o for o in overrides if o != "method.attributes=[identity,expression,illumination]"]
            out[name] = train(compose_config([f"run_dir={root / name}", *overrides]))["checkpoint"]
    return out


def test_table3_is_the_hopkins_statistic_of_each_expression_cluster(checkpoints, tmp_path):
    settings = EvalSettings(device="cpu", batch_size=16, options={"min_points": 3})
    ours = table3([checkpoints["ablation_dis"], checkpoints["ablation_nodis"], checkpoints["full"]], settings)
    module, dm, _ = load_checkpoint_run(checkpoints["ablation_dis"])
    dm.batch_size = 16
    dm.setup("test")
    zs, ys = [], []
    with torch.no_grad():
        for batch in dm.test_dataloader():
            zs.append(module.encode(batch["image"], inference=True)["expression"].flatten(1).double())
            ys.append(batch["factors"]["expression"])
    z, y = torch.cat(zs), torch.cat(ys)
    names = module.class_names()["expression"]
    k = int(torch.bincount(y).argmax())
    pts = z[y == k]
    by_hand = hopkins_statistic(pts, sample_size=max(1, round(0.1 * len(pts))), repeats=10, seed=k)
    assert ours.rows[names[k]]["ablation1/dis"] == [pytest.approx(by_hand)]
    assert set(ours.rows[names[k]]) == {"ablation1/dis", "ablation1/nodis", "full/dis"}
    assert [c.key for c in ours.columns] == ["full/dis"]  # the full model is a column of ours only
    assert any("Projection: none" in n for n in ours.notes)
    pca = table3([checkpoints["ablation_dis"]], EvalSettings(device="cpu", options={"min_points": 3, "projection": "pca"}))
    assert pca.rows[names[k]]["ablation1/dis"] != ours.rows[names[k]]["ablation1/dis"]  # a visible, different option
    with pytest.raises(ConfigError, match="projection must be none, pca or random"):
        table3([checkpoints["ablation_dis"]], EvalSettings(device="cpu", options={"min_points": 3, "projection": "tsne"}))
    written = run_protocol("disent_table3", [checkpoints["ablation_dis"]], tmp_path, EvalSettings(device="cpu", options={"min_points": 3}))
    text = written.read_text()
    assert "| Expression Cluster | Disentangle Loss (λdis = 1) (paper) | Disentangle Loss (λdis = 1) (ours) |" in text
    assert "| scream | — |" in text and "lost this table's numerals" in text


def test_table4_translates_the_neutral_test_faces_to_every_expression(checkpoints, tmp_path):
    settings = EvalSettings(device="cpu", batch_size=16, options={"classifier": {"epochs": 1}})
    ours = table4([checkpoints["full"]], settings)
    module, dm, _ = load_checkpoint_run(checkpoints["full"])
    dm.batch_size = 16
    dm.setup("test")
    neutral = sum(int((b["factors"]["expression"] == 0).sum()) for b in dm.test_dataloader())
    assert module.class_names()["expression"][0] == "neutral" and neutral > 0
    assert any(f"{neutral} neutral test faces" in n for n in ours.notes)
    targets = [r for r in ours.rows if r.startswith("Ours → ")]
    assert targets == [f"Ours → {e}" for e in module.class_names()["expression"]]
    accs = [ours.rows[r]["synthfaces/mean"][0] for r in targets]
    assert all(0 <= a <= 1 for a in accs)
    assert ours.rows["Ours"]["synthfaces/mean"] == [pytest.approx(sum(accs) / len(accs))]
    assert math.isfinite(ours.rows["Ours"]["synthfaces/fid"][0])
    others = table4([checkpoints["full"]], EvalSettings(device="cpu", batch_size=16,
                                                        options={"classifier": {"epochs": 1}, "targets": "others"}))
    assert "Ours → neutral" not in others.rows
    with pytest.raises(ConfigError, match="has no decoder"):
        table4([checkpoints["ablation_dis"]], settings)
    written = run_protocol("disent_table4", [checkpoints["full"]], tmp_path, settings)
    assert "| Model | MultiPIE mean (paper) | MultiPIE mean (ours) |" in written.read_text()


def test_protocols_are_registered():
    from suite.protocols import PROTOCOLS

    assert {"disent_table3", "disent_table4"} <= set(PROTOCOLS)
    assert PROTOCOLS["disent_table3"].methods == ("disent",)


def test_evaluate_cli_passes_protocol_options_and_the_classifier_settings(checkpoints, tmp_path):
    import evaluate
    from tests.conftest import compose_config

    cfg = compose_config(["protocol=disent_table3", f"ckpt_paths=[{checkpoints['ablation_dis']}]", f"out_dir={tmp_path}",
                          "device=cpu", "wandb.mode=disabled", "+protocol_options.min_points=3",
                          "+protocol_options.projection=random", "+protocol_options.projection_dims=4"],
                         config_name="evaluate")
    text = evaluate.run_protocol(cfg).read_text()
    assert "Projection: random to 4 dims" in text and "| Expression Cluster |" in text
