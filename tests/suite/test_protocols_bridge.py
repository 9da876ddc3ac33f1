"""The bridge's Tables 1–3 as protocols (suite/protocols/bridge.py): the authors' single flips and conflict rules
on hand-made labels, the Fréchet distance on known moments, the published figures, and the three tables written
from tiny checkpoints on the embedded faces and an AFHQ stand-in."""

from __future__ import annotations

import re

import pytest
import torch

import evaluate
from suite.errors import ConfigError
from suite.protocols import PROTOCOLS
from suite.protocols.bridge import (
    ATTRIBUTES,
    TABLE1,
    TABLE2,
    TABLE3,
    Moments,
    domain_pairs,
    frechet,
    resolve_conflicts,
    single_flip,
)
from suite.training import train
from tests.conftest import compose_config
from tests.datamodules.fixtures import write_afhq
from tests.methods import BRIDGE_NETS
from tests.suite.test_protocols import protocol_cfg, row_of

NAMES = ["Bald", "Bangs", "Black_Hair", "Blond_Hair", "Brown_Hair", "Receding_Hairline", "Smiling"]


def test_single_flips_follow_the_authors_conflict_rules():
    y = torch.tensor([[0, 1, 1, 0, 0, 0, 1], [1, 0, 0, 1, 0, 1, 0]], dtype=torch.float32)
    # Blond on: the other hair colours off; Blond off (row 1): nothing else moves
    assert single_flip(y, "Blond_Hair", NAMES).tolist() == [[0, 1, 0, 1, 0, 0, 1], [1, 0, 0, 0, 0, 1, 0]]
    # Bangs on: Bald and Receding_Hairline off; Bangs off: unchanged otherwise
    assert single_flip(y, "Bangs", NAMES).tolist() == [[0, 0, 1, 0, 0, 0, 1], [0, 1, 0, 1, 0, 0, 0]]
    # Bald on: Bangs off
    assert single_flip(y, "Bald", NAMES).tolist() == [[1, 0, 1, 0, 0, 0, 1], [0, 0, 0, 1, 0, 1, 0]]
    assert single_flip(y, "Smiling", NAMES)[:, 6].tolist() == [0, 1]  # no rule: only the flip
    assert torch.equal(resolve_conflicts(y, "Smiling", NAMES), y)


def test_frechet_distance_on_known_moments():
    torch.manual_seed(0)
    x = torch.randn(400, 3)
    a, b, c = Moments(), Moments(), Moments()
    a.add(x[:200])
    a.add(x[200:])  # streamed in two parts
    b.add(x)
    c.add(x + torch.tensor([1.0, 2.0, 0.0]))  # same covariance, mean moved by v: FID = ‖v‖² = 5
    assert frechet(a, b) == pytest.approx(0.0, abs=1e-6)
    assert frechet(a, c) == pytest.approx(5.0, abs=1e-5)
    assert torch.isnan(torch.tensor(frechet(a, Moments())))


def test_published_tables_as_printed():
    assert [c.key for c in TABLE1.columns] == list(ATTRIBUTES) and len(ATTRIBUTES) == 14
    assert TABLE1.rows["Ours (Label-based)"]["Sideburns"] == 89.3 and TABLE1.rows["STGAN"]["Black_Hair"] == 97.6
    assert TABLE2.rows["Ours (Reference-based)"]["Mouth_Slightly_Open"] == 3.98 and len(TABLE2.rows) == 7
    assert TABLE3.rows["Ours (Label-based)"]["cat2wild"] == 14.84 and len(TABLE3.rows) == 4
    assert {"bridge_table1", "bridge_table2", "bridge_table3"} <= set(PROTOCOLS)
    assert [k for k, _, _ in domain_pairs(["cat", "dog", "wild"])] == [
        "dog2cat", "wild2cat", "cat2dog", "wild2dog", "cat2wild", "dog2wild"]  # Table 3's column order


BASE = ["logger=none", "trainer=cpu", "trainer.enable_progress_bar=false", "scale=synth", "trainer.max_steps=1",
        "method=bridge", *BRIDGE_NETS, "data.image_size=32", "data.batch_size=2", "data.num_workers=0"]


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("bridge_protocols")
    mp = pytest.MonkeyPatch()
    mp.setenv("FACETRANS_CACHE", str(root / "cache"))
    faces = ["data=synthfaces", "data.train_size=8", "data.test_size=8", "data.val_size=2",
             "data.attributes=[Smiling,Eyeglasses,Bangs,Blond_Hair]"]
    afhq = ["data=afhq", f"data.root={write_afhq(root / 'afhq_data', size=32)}"]
    out = {key: train(compose_config([*BASE, *extra, f"run_dir={root / key}"]))["checkpoint"]
           for key, extra in (("faces", faces), ("afhq", afhq))}
    yield out
    mp.undo()


def test_tables_1_and_2_from_a_checkpoint(checkpoints, tmp_path):
    table1 = evaluate.run_protocol(protocol_cfg("bridge_table1", tmp_path, [checkpoints["faces"]])).read_text()
    header = [c.strip() for c in table1.splitlines()[4].strip("|").split("|")]
    assert header[:3] == ["Method", "Young (paper)", "Young (ours)"] and "Eyeglasses (ours)" in header
    smiling = header.index("Smiling (ours)") - 1
    label, ref = row_of(table1, "Ours (Label-based)"), row_of(table1, "Ours (Reference-based)")
    pairs = dict(re.findall(r"(\w+) (\d+)[,.]", table1.split("reference-based pairs")[1].split("\n")[0]))
    assert set(pairs) == {"Smiling", "Eyeglasses", "Bangs", "Blond_Hair"}
    for attr, n in pairs.items():
        col = header.index(f"{attr.replace('_', ' ')} (ours)") - 1
        assert 0 <= float(label[col]) <= 100  # every test image, each attribute flipped alone
        assert (ref[col] == "—") == (n == "0")  # reference pairs need sources without and references with it
        assert ref[col] == "—" or 0 <= float(ref[col]) <= 100
    assert label[header.index("Young (ours)") - 1] == "—"  # not an attribute of this checkpoint
    assert row_of(table1, "Ours (Label-based)")[smiling - 1] == "92.2"  # the published figure beside ours
    table2 = evaluate.run_protocol(protocol_cfg("bridge_table2", tmp_path, [checkpoints["faces"]])).read_text()
    assert row_of(table2, "Ours (Label-based)")[smiling] != "—" and "FID on" in table2
    assert [c == "—" for c in row_of(table2, "Ours (Reference-based)")] == [c == "—" for c in ref]


def test_table3_per_domain_pair_on_afhq(checkpoints, tmp_path):
    table = evaluate.run_protocol(protocol_cfg("bridge_table3", tmp_path, [checkpoints["afhq"]])).read_text()
    header = [c.strip() for c in table.splitlines()[4].strip("|").split("|")]
    assert header[1:3] == ["dog2cat (paper)", "dog2cat (ours)"]
    for mode in ("Label-based", "Reference-based"):
        row = row_of(table, f"Ours ({mode})")
        assert all(row[i] != "—" for i in range(1, 12, 2))
    assert row_of(table, "Ours (Label-based)")[0] == "15.03" and "train images of the target domain" in table
    with pytest.raises(ConfigError, match="one-hot"):
        evaluate.run_protocol(protocol_cfg("bridge_table3", tmp_path / "faces", [checkpoints["faces"]]))
