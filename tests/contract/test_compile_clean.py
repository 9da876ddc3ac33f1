"""Every method's steps compile whole (issue #25): each closure given to ``optimize`` — a step's forward passes and
losses — compiles with ``fullgraph=True`` (so ``torch._dynamo.explain`` would count 0 graph breaks), and once every
step has been seen, a further full cycle (n_critic, phases) compiles nothing new. By design outside the compiled
steps, run eagerly: gradient penalties (``optimize``'s ``penalty``: WGAN-GP differentiates twice), the image pools'
random picks, bridge's code-memory step (an ``autograd.grad`` through M) and the checks that read the host at
guard reads. The TorchDynamo front end is what is tested (``backend="eager"``: no code generation), at tiny size."""

from __future__ import annotations

import pytest
import torch
import torch._dynamo
from torch._dynamo.utils import counters

from tests.contract.test_method_contract import trained
from tests.methods import METHODS


def _run(module, name: str, iterations: range) -> None:
    batch = METHODS[name].batch()
    for it in iterations:
        module.iteration = it
        module.train_iteration(batch)


@pytest.mark.parametrize("name", list(METHODS))
def test_steps_compile_without_graph_breaks_or_recompilation(name):
    torch._dynamo.reset()
    counters.clear()
    module = trained(name)
    module.compile_steps = {"backend": "eager", "fullgraph": True}  # any graph break raises
    module.nan_check_every = 10**6  # the guard's host reads happen outside the steps anyway; keep the log quiet
    module.iterations_per_epoch = 1  # as in a run: epoch-based schedules (AGGAN's curriculum) switch at known iterations
    cycle = max(2, METHODS[name].iterations)  # every optimizer, phase and n_critic position of the tiny schedule
    _run(module, name, range(cycle))
    graphs = counters["stats"]["unique_graphs"]
    assert graphs >= 2  # the steps really went through dynamo (at least a G and a D step)
    with torch._dynamo.config.patch(error_on_recompile=True):
        _run(module, name, range(cycle, 2 * cycle + 1))
    assert counters["stats"]["unique_graphs"] == graphs
