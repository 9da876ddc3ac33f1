"""The bridge's per-image random-code memory r_M (train_arch9.py): the update on hand-computed numbers, the
gradient it follows, when it is read and written inside training, its checkpoint round trip, the switches."""

from __future__ import annotations

import pytest
import torch

from lightning_modules.bridge_memory import CodeMemory, gather_rows, matching_gradient, memory_step
from suite.errors import ConfigError, DatasetError
from suite.evaluation import load_checkpoint_run
from suite.training import train
from tests.helpers.batches import attr_batch
from tests.lightning_modules.test_bridge import RUN_TINY, make
from tests.trainer_stub import attach_trainer_stub as attach_trainer


def test_memory_step_on_hand_computed_numbers():
    r0 = torch.tensor([[0.1, -0.2, 0.0, 0.5], [0.3, 2.0, -0.4, 0.0]])
    g = torch.tensor([[0.01, 0.02, -0.02, 0.0], [0.0, 0.0, 0.0, 0.0]])
    # row 0: rms = √((1e-4 + 4e-4 + 4e-4 + 0)/4) = 0.015, gain 0.9/0.015 + 5 = 65, step 65·g = [0.65, 1.3, −1.3, 0]
    up = memory_step(r0, g)
    assert torch.allclose(up[0], torch.tensor([0.75, 1.0, -1.0, 0.5]), atol=1e-6)  # 1.1 and −1.3 clipped to ±1
    down = memory_step(r0, g, direction="descent")
    assert torch.allclose(down[0], torch.tensor([-0.55, -1.0, 1.0, 0.5]), atol=1e-6)
    # a zero gradient leaves the row where it was (clipped), not the authors' 0/0 NaN
    assert torch.equal(up[1], torch.tensor([0.3, 1.0, -0.4, 0.0]))
    assert torch.allclose(memory_step(r0, g, scale=0.0, offset=1.0, clip=10.0), r0 + g)


def test_matching_gradient_is_the_mse_gradient_and_leaves_parameters_alone():
    torch.manual_seed(0)
    lin = torch.nn.Linear(4, 6, bias=False)
    r0, target = torch.randn(3, 4), torch.randn(3, 6)
    grad = matching_gradient(r0, target, lin)
    expected = 2 / (3 * 6) * (r0 @ lin.weight.T - target) @ lin.weight  # ∂ mean((rWᵀ − t)²) / ∂r
    assert torch.allclose(grad, expected, atol=1e-6) and lin.weight.grad is None


def test_memory_reads_rows_writes_them_and_refuses_rows_it_lacks():
    torch.manual_seed(0)
    mem = CodeMemory(5, 3)
    before = mem.codes.clone()
    assert torch.equal(mem.read(torch.tensor([4, 1])), before[[4, 1]])
    mem.write(torch.tensor([1, 3]), torch.ones(2, 3))
    assert torch.equal(mem.codes[[1, 3]], torch.ones(2, 3)) and torch.equal(mem.codes[[0, 2, 4]], before[[0, 2, 4]])
    assert gather_rows(torch.tensor([1]), torch.ones(1, 3))[0].tolist() == [1]  # one process: unchanged
    with pytest.raises(DatasetError, match="code_memory.size"):
        mem.read(torch.tensor([5]))
    with pytest.raises(ConfigError, match="direction"):
        CodeMemory(5, 3, direction="sideways")
    assert "codes" in mem.state_dict()


def test_the_g_step_writes_the_stepped_reference_codes_and_d_steps_do_not():
    m = make("method.references=batch")
    attach_trainer(m)
    batch = attr_batch(4)
    p = m._references(batch)
    with torch.no_grad():
        expected = m.random_code(p)  # what the G step must store at the references' rows
    before = m.memory.codes.clone()
    assert not torch.allclose(expected, before[batch["ref_index"]])
    m.iteration = 1  # a D-only iteration: r is stepped for the fakes but not stored
    m.train_iteration(batch)
    assert torch.equal(m.memory.codes, before)
    m.iteration = 0  # a G iteration (n_critic 5)
    m.train_iteration(batch)
    rows = batch["ref_index"]
    assert torch.allclose(m.memory.codes[rows], expected, atol=1e-4)
    assert m.memory.codes[rows].abs().max() <= 1.0
    others = torch.ones(len(before), dtype=torch.bool)
    others[rows] = False
    assert torch.equal(m.memory.codes[others], before[others])


def test_the_label_path_uses_the_memory_code_in_synthesis_and_reconstruction():
    m = make("method.references=batch", "method.interpolation=false")
    p = m._references(attr_batch(2))
    with torch.no_grad():
        codes = m.synthesis_codes(p)
        r = m.random_code(p)
        assert torch.allclose(codes["r"], r, atol=1e-5)
        assert torch.allclose(codes["rand"], m.M(r, p.d_st) + codes["source"], atol=1e-5)


def test_fresh_noise_switch_needs_no_rows_and_stores_no_memory():
    m = make("method.random_code=fresh")
    assert m.memory is None and not any("memory" in k for k in m.state_dict())
    attach_trainer(m)
    batch = {k: v for k, v in attr_batch().items() if k not in ("index", "ref_index")}
    m.train_iteration(batch)
    assert make("method.modes=[reference]").memory is None  # no label path, no random code


def test_memory_without_rows_in_the_batch_is_one_sentence():
    m = make()
    attach_trainer(m)
    batch = {k: v for k, v in attr_batch().items() if k not in ("index", "ref_index")}
    with pytest.raises(DatasetError, match="random_code=fresh"):
        m.train_iteration(batch)


def test_memory_size_follows_the_training_split_or_the_config():
    assert make().memory.codes.shape == (16, 16)  # ATTR_INFO's 16 training images × d
    assert make("method.code_memory.size=40").memory.codes.shape == (40, 16)


def test_memory_round_trips_through_a_checkpoint(make_cfg, tmp_path):
    run = train(make_cfg("method=bridge", *RUN_TINY, "trainer.max_steps=6", run_dir=tmp_path / "r"))
    trained = run["module"].memory.codes.clone()
    # the same seed with a zero step (scale 0, offset 0, no clipping) keeps r_M at its initial values
    still = train(make_cfg("method=bridge", *RUN_TINY, "trainer.max_steps=6", "method.code_memory.scale=0",
                           "method.code_memory.offset=0", "method.code_memory.clip=100", run_dir=tmp_path / "s"))
    initial = still["module"].memory.codes
    changed = (trained != initial).any(1)
    assert trained.shape == (8, 16) and 1 <= int(changed.sum()) <= 4  # two G steps of 2 references
    assert trained[changed].abs().max() <= 1.0
    module, _, ckpt = load_checkpoint_run(run["checkpoint"])
    assert torch.equal(ckpt["state_dict"]["memory.codes"], trained)
    assert torch.equal(module.memory.codes, trained)


def _two_rank_write(rank: int, init: str, out: str) -> None:
    """One rank of a gloo pair: rank r writes rows {r, r+2} (rank 1 a third row 4), then saves its table."""
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=2)
    torch.manual_seed(0)  # both ranks start from the same table, as DDP's seeded construction does
    mem = CodeMemory(6, 2)
    rows = [rank, rank + 2] + ([4] if rank == 1 else [])
    mem.write(torch.tensor(rows), torch.full((len(rows), 2), float(rank + 1)))
    torch.save(mem.codes, f"{out}/rank{rank}.pt")
    dist.destroy_process_group()


def test_memory_writes_reach_every_rank_under_ddp(tmp_path):
    """Each rank writes only its own batch's rows (uneven counts); afterwards both ranks hold the same table."""
    import torch.multiprocessing as mp

    mp.spawn(_two_rank_write, args=(f"file://{tmp_path / 'rendezvous'}", str(tmp_path)), nprocs=2)
    a, b = torch.load(tmp_path / "rank0.pt"), torch.load(tmp_path / "rank1.pt")
    torch.manual_seed(0)
    initial = CodeMemory(6, 2).codes
    assert torch.equal(a, b)
    assert a[[0, 2]].eq(1).all() and a[[1, 3, 4]].eq(2).all() and torch.equal(a[5], initial[5])
