"""The CPU recipes that train under bf16 autocast in channels_last (``bridge_synth``, ``disent_synth``): their
networks really compute in bf16 and channels_last through ``train.py``'s path, the weights stay float32, and
``trainer.precision=32-true`` turns it off."""
from __future__ import annotations

import pytest
import torch

from nets.bridge import BridgeGenerator
from nets.disent import AttributeDecoder
from suite.training import train
from tests.lightning_modules.test_bridge import TINY as BRIDGE_TINY
from tests.lightning_modules.test_disent import TINY as DISENT_TINY

SMALL_DATA = ["data.batch_size=2", "data.train_size=8", "data.val_size=2", "data.test_size=4",
              "method.sample_every=0", "method.num_samples=0", "trainer.max_steps=2",
              "memory_check=off"]  # the memory probe's forwards run outside the fast paths (not channels_last)
RECIPES = {  # experiment → (a network whose output is checked, tiny widths)
    "bridge_synth": (BridgeGenerator, [*BRIDGE_TINY, "method.n_critic=1"]),
    "disent_synth": (AttributeDecoder, [*DISENT_TINY, "method.expected_embeddings.max_images=4"]),
}


def spy_outputs(monkeypatch, cls: type[torch.nn.Module]) -> list[tuple[torch.dtype, bool]]:
    """Record (dtype, channels_last) of every output of a network of class ``cls``."""
    original, seen = cls.forward, []

    def forward(self, *args, **kwargs):
        out = original(self, *args, **kwargs)
        seen.append((out.dtype, out.is_contiguous(memory_format=torch.channels_last)))
        return out

    monkeypatch.setattr(cls, "forward", forward)
    return seen


@pytest.mark.parametrize("experiment", sorted(RECIPES))
def test_recipe_trains_in_bf16_and_channels_last_with_float32_weights(make_cfg, monkeypatch, tmp_path, experiment):
    net, tiny = RECIPES[experiment]
    seen = spy_outputs(monkeypatch, net)
    result = train(make_cfg(f"experiment={experiment}", *tiny, *SMALL_DATA, run_dir=tmp_path / "bf16"))
    assert result["iteration"] == 2
    assert seen and all(dtype == torch.bfloat16 and cl for dtype, cl in seen), seen
    assert all(p.dtype == torch.float32 for p in result["module"].parameters())

    seen.clear()
    train(make_cfg(f"experiment={experiment}", *tiny, *SMALL_DATA, "trainer.precision=32-true",
                   "speed.channels_last=false", run_dir=tmp_path / "fp32"))
    assert seen and all(dtype == torch.float32 and not cl for dtype, cl in seen), seen
