"""Fit the machine (``suite.memory``): the peak-memory probe, the one-sentence stop for a configuration too large
for the memory there is, and the loaders' default worker count."""

from __future__ import annotations

import logging
import warnings

import pytest
import torch

import suite.memory as memory
from datamodules.base import default_num_workers
from suite.errors import ConfigError
from suite.training import build_datamodule, build_method, train
from tests.suite.test_callbacks import TINY

MiB = 2**20


def test_tensor_bytes_counts_the_peak_of_live_storages():
    with memory.TensorBytes() as meter:
        a = torch.ones(1000)  # 4000 bytes
        b = torch.ones(500)  # 2000 bytes: 6000 live
        del a
        c = torch.ones(250)  # a freed: 3000 live
        view = b[:10]  # a view: no new storage
    assert meter.peak == 6000 and meter.current == 3000 and view.numel() == 10 and c.numel() == 250


def test_tensor_bytes_sees_autograd_and_the_optimizer():
    net = torch.nn.Linear(100, 100)  # 10,100 parameters
    opt = torch.optim.Adam(net.parameters())
    with memory.TensorBytes() as meter:
        net(torch.ones(8, 100)).square().sum().backward()
        opt.step()
    assert meter.current >= 3 * 10_100 * 4  # gradients and the two Adam moments stay


def built(make_cfg, *overrides):
    cfg = make_cfg(*TINY, *overrides)
    dm = build_datamodule(cfg, cfg.method.view)
    return build_method(cfg, dm.info), dm


def test_line_peak_reads_each_segment_at_the_batch_size():
    # segments (fixed, per image): (100, 1) — gradients and Adam's moments; (10, 20) — activations
    two, four = [102, 50], [104, 90]
    assert memory.line_peak(two, four, (2, 4), 1) == (100, 1)  # 101 > 30
    assert memory.line_peak(two, four, (2, 4), 64) == (10, 20)  # 10 + 20·64 > 100 + 64
    assert memory.line_peak([5, 7], [11], (2, 4), 4) == (3, 2)  # segments differ: the line through the peaks


def test_estimate_grows_with_batch_size_and_image_size(make_cfg):
    small, dm_small = built(make_cfg, "data.image_size=32", "data.batch_size=2")
    estimate = memory.estimate_peak(small, dm_small, torch.device("cpu"))
    dm_small.batch_size = 64
    wider = memory.estimate_peak(small, dm_small, torch.device("cpu"))
    assert estimate.per_image > 0 and wider.peak >= estimate.peak + 62 * estimate.per_image
    assert wider.peak == wider.fixed + 64 * wider.per_image + wider.loader
    large, dm_large = built(make_cfg, "data.image_size=64", "data.batch_size=64")
    ratio = memory.estimate_peak(large, dm_large, torch.device("cpu")).per_image / wider.per_image
    assert 3.5 < ratio < 4.5  # where activations dominate, they grow with the pixels (4×)


def test_probe_leaves_module_and_random_streams_untouched(make_cfg):
    module, dm = built(make_cfg)
    before = {k: v.clone() for k, v in module.state_dict().items()}
    torch.manual_seed(3)
    memory.estimate_peak(module, dm, torch.device("cpu"))
    after_probe = torch.rand(3)
    torch.manual_seed(3)
    assert torch.equal(after_probe, torch.rand(3))
    assert all(torch.equal(before[k], v) for k, v in module.state_dict().items()) and module.iteration == 0


def test_too_large_a_configuration_stops_with_one_sentence(make_cfg, monkeypatch, tmp_path):
    """A run made deliberately too large for a small memory budget (64 px, 64 images, 8 MiB available) stops
    before training, naming the knobs; ``warn`` trains anyway after saying it; ``off`` does not probe."""
    monkeypatch.setattr(memory, "available_bytes", lambda device: 8 * MiB)
    big = [*TINY, "data.image_size=64", "data.batch_size=64", "data.train_size=64", "trainer.max_steps=1"]
    with pytest.raises(ConfigError, match=r"needs about \d+ MiB .* has 8 MiB available; lower data.batch_size or "
                                          r"data.image_size .*trainer.precision=bf16-mixed, or set memory_check=warn"):
        train(make_cfg(*big, run_dir=tmp_path / "stop"))
    assert not (tmp_path / "stop" / "checkpoints").exists()

    small = [*TINY, "trainer.max_steps=1"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        monkeypatch.setattr(memory, "available_bytes", lambda device: 64 * 2**30)
        assert train(make_cfg(*small, run_dir=tmp_path / "fits"))["iteration"] == 1


def test_warn_and_off(make_cfg, monkeypatch, tmp_path, caplog):
    monkeypatch.setattr(memory, "available_bytes", lambda device: 1024)
    with warnings.catch_warnings(), caplog.at_level(logging.WARNING, logger="suite.memory"):
        warnings.simplefilter("ignore")
        assert train(make_cfg(*TINY, "trainer.max_steps=1", "memory_check=warn", run_dir=tmp_path / "w"))["iteration"] == 1
    assert any("has 0 MiB available" in r.getMessage() for r in caplog.records)

    def refuse(*args, **kwargs):
        raise AssertionError("probed with memory_check=off")

    monkeypatch.setattr(memory, "estimate_peak", refuse)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert train(make_cfg(*TINY, "trainer.max_steps=1", "memory_check=off", run_dir=tmp_path / "o"))["iteration"] == 1
    with pytest.raises(ConfigError, match="memory_check must be one of warn, stop, off"):
        train(make_cfg(*TINY, "trainer.max_steps=1", "memory_check=maybe", run_dir=tmp_path / "x"))


@pytest.mark.parametrize(("cpus", "workers"), [(1, 0), (2, 1), (3, 2), (5, 4), (64, 4)])
def test_default_workers_follow_the_cpus(monkeypatch, cpus, workers):
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(cpus)))
    assert default_num_workers() == workers


def test_real_data_configs_derive_their_workers(make_cfg):
    import inspect

    from datamodules.records import RecordsDataModule

    assert make_cfg("data=afhq").data.num_workers is None
    assert inspect.signature(RecordsDataModule.__init__).parameters["num_workers"].default is None


@pytest.mark.parametrize("name", ["aggan", "stargan"])
def test_shape_only_probe_counts_what_real_iterations_do(name):
    """The meta-device probe (no arithmetic) sees the storages real iterations make: per update, the same bytes
    within 1 % (AGGAN: identical; StarGAN: 48 bytes fewer of 0.7 MB in one update)."""
    from tests.methods import METHODS, build

    module, batch = build(name, quiet=True), METHODS[name].batch()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sizes, *meta = memory.probe_pair(module, batch, memory.META, "32-true")
        real_sizes, *real = memory.probe_pair(module, batch, torch.device("cpu"), "32-true")
    assert sizes == real_sizes and [len(m) for m in meta] == [len(r) for r in real]
    for m, r in zip(meta[0] + meta[1], real[0] + real[1]):
        assert abs(m - r) <= 0.01 * r
    assert meta != [[0] * len(meta[0]), [0] * len(meta[1])]


def test_probe_kind_follows_device_precision_and_size():
    cpu = torch.device("cpu")
    assert memory.shapes_suffice(cpu, "32-true", 256) and memory.shapes_suffice(cpu, "bf16-true", 128)
    assert not memory.shapes_suffice(cpu, "32-true", 32)  # a real iteration at 32 px costs less than a meta one
    assert not memory.shapes_suffice(cpu, "bf16-mixed", 256) and not memory.shapes_suffice(cpu, "16", 256)
    assert not memory.shapes_suffice(torch.device("cuda", 0), "32-true", 256)


def test_a_method_the_meta_device_cannot_run_gets_real_iterations(make_cfg, monkeypatch, caplog):
    """A method that reads a value from a tensor (``.item()``: impossible on meta tensors) is probed with real
    iterations, and says so."""
    module, dm = built(make_cfg)
    monkeypatch.setattr(memory, "shapes_suffice", lambda device, precision, side: True)
    original = type(module).train_iteration

    def reads_a_value(self, batch):
        assert float(batch["image"].mean()) > -2  # .item() on the meta device raises
        return original(self, batch)

    monkeypatch.setattr(type(module), "train_iteration", reads_a_value)
    with caplog.at_level(logging.INFO, logger="suite.memory"):
        estimate = memory.estimate_peak(module, dm, torch.device("cpu"))
    assert estimate.probe == "iterations" and estimate.per_image > 0
    assert any("shape-only probe cannot run this method" in r.getMessage() for r in caplog.records)
