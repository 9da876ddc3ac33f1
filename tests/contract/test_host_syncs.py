"""No host sync inside a training iteration (issue #25): between two reads of the NaN guard (every
``method.nan_check_every`` iterations) no method's ``train_iteration`` — its losses, its networks, the shared
``optimize`` and its guard — reads a tensor back to the host. On a GPU each such read (``.item()``,
``bool(t)``, ``float(t)``, ``.cpu()``, ``.tolist()``, an ``if`` on a tensor) stalls the launch queue until the
device catches up. On this CPU they cost nothing, so the test counts the calls themselves: every Tensor method
that converts to a host value is wrapped and a call made from the suite's own code (not PyTorch's, not the
tests') is recorded with its file and line."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import pytest
import torch

from tests.contract.test_method_contract import trained
from tests.methods import METHODS

REPO = str(Path(__file__).resolve().parents[2]) + "/"
OWN_CODE = tuple(REPO + d for d in ("lightning_modules/", "nets/", "suite/", "metrics/", "datamodules/"))
HOST_READS = ("item", "__bool__", "__float__", "__int__", "__index__", "tolist", "cpu", "numpy")


@pytest.fixture
def host_reads(monkeypatch) -> Counter:
    """Counter of (method, file:line) for every host read made from the suite's code while the test runs."""
    seen: Counter = Counter()
    for attr in HOST_READS:
        original = getattr(torch.Tensor, attr)

        def wrapped(self, *args, _original=original, _attr=attr, **kwargs):
            frame = sys._getframe(1)
            while frame is not None and "/torch/" in frame.f_code.co_filename:  # PyTorch's own Python calling it
                frame = frame.f_back
            if frame is not None and frame.f_code.co_filename.startswith(OWN_CODE):
                seen[(_attr, f"{frame.f_code.co_filename[len(REPO):]}:{frame.f_lineno}")] += 1
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, attr, wrapped)
    return seen


@pytest.mark.parametrize("name", list(METHODS))
def test_no_host_sync_between_guard_reads(name, host_reads):
    module = trained(name)
    module.nan_check_every = 4
    batch = METHODS[name].batch()
    steps = max(8, 2 * METHODS[name].iterations)  # every optimizer and phase of the tiny schedule, twice
    for it in range(steps):
        module.iteration = it
        host_reads.clear()
        module.train_iteration(batch)
        if it % module.nan_check_every:
            assert not host_reads, f"{name} iteration {it} reads the device on the host: {dict(host_reads)}"
    module.iteration = steps
    host_reads.clear()
    module.check_finite()  # the guard's read: the one place the record comes back (and the counter sees it)
    assert sum(host_reads.values()) >= 1


def test_guard_record_names_the_first_non_finite_quantity_and_its_iteration():
    from lightning_modules.guard import NonFiniteRecord
    from suite.errors import DivergenceError

    record = NonFiniteRecord()
    finite = [torch.tensor(1.0), torch.tensor(2.0)]
    record.observe(("G/cycle", "G/total"), finite, iteration=0)
    record.check(current_iteration=1)  # nothing recorded: no error
    record.observe(("D/adv", "D/total", "D/gradient"), [torch.tensor(1.0), torch.tensor(1.0), torch.tensor(float("inf"))], 3)
    record.observe(("G/cycle", "G/total"), [torch.tensor(float("nan")), torch.tensor(float("nan"))], 5)  # later: ignored
    with pytest.raises(DivergenceError, match=r"the gradient of D became inf at iteration 3 \(found at iteration 8"):
        record.check(current_iteration=8)
    other_rank = NonFiniteRecord()
    other_rank.observe(("G/cycle",), [torch.tensor(1.0)], 0)
    with pytest.raises(DivergenceError, match="on another DDP rank"):
        other_rank.check(current_iteration=4, reduce_any=lambda found: True)
