import torch

from lightning_modules.pool import ImagePool
from lightning_modules.schedules import linear_decay_factor, step_schedule


def test_pool_fills_then_swaps_and_checkpoints():
    pool = ImagePool(3, seed=1)
    first = pool.query(torch.arange(3.0).view(3, 1, 1, 1))
    assert torch.equal(first, torch.arange(3.0).view(3, 1, 1, 1))  # below capacity: returns the new images
    state = pool.state_dict()
    clone = ImagePool(0)
    clone.load_state_dict(state)
    new = torch.full((8, 1, 1, 1), 9.0)
    a, b = pool.query(new), clone.query(new)
    assert torch.equal(a, b)  # same stored images and rng → same draws
    assert (a != 9).any() and (a == 9).any()  # some old images come back, some new pass through


def test_pool_size_zero_is_identity():
    x = torch.rand(4, 3, 2, 2)
    assert torch.equal(ImagePool(0).query(x), x)


def test_linear_decay():
    assert linear_decay_factor(0, 100, 0.5) == 1.0
    assert linear_decay_factor(49, 100, 0.5) == 1.0
    assert linear_decay_factor(75, 100, 0.5) == 0.5
    assert linear_decay_factor(100, 100, 0.5) == 0.0


def test_curriculum_step():
    assert step_schedule(4, 100, 0.05, 0.01, 0.5) == 0.01
    assert step_schedule(5, 100, 0.05, 0.01, 0.5) == 0.5
