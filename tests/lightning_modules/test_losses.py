import math

import pytest
import torch

from lightning_modules import losses


def test_lsgan_discriminator_is_halved_mse():
    real, fake = torch.tensor([1.0, 0.5]), torch.tensor([0.0, 0.5])
    # ½·[mean((real−1)²) + mean(fake²)] = ½·[(0 + 0.25)/2 + (0 + 0.25)/2] = 0.125
    assert losses.discriminator_adv_loss(real, fake, "lsgan").item() == pytest.approx(0.125)


def test_lsgan_generator():
    assert losses.generator_adv_loss(torch.tensor([0.0, 1.0]), "lsgan").item() == pytest.approx(0.5)


def test_vanilla_losses_at_zero_logits():
    z = torch.zeros(4)
    assert losses.discriminator_adv_loss(z, z, "vanilla").item() == pytest.approx(2 * math.log(2))
    assert losses.generator_adv_loss(z, "vanilla").item() == pytest.approx(math.log(2))


def test_wgan_and_hinge():
    real, fake = torch.tensor([2.0, 4.0]), torch.tensor([1.0, -1.0])
    assert losses.discriminator_adv_loss(real, fake, "wgan").item() == pytest.approx(0.0 - 3.0)
    assert losses.generator_adv_loss(fake, "wgan").item() == pytest.approx(0.0)
    # hinge: mean(relu(1−[2,4])) + mean(relu(1+[1,−1])) = 0 + (2+0)/2
    assert losses.discriminator_adv_loss(real, fake, "hinge").item() == pytest.approx(1.0)


def test_unknown_mode_rejected():
    with pytest.raises(ValueError, match="lsgan"):
        losses.generator_adv_loss(torch.zeros(1), "bogus")


def test_cycle_and_pixel_are_mean_l1():
    a, b = torch.zeros(1, 3, 2, 2), torch.full((1, 3, 2, 2), 0.5)
    assert losses.cycle_loss(a, b).item() == pytest.approx(0.5)
    assert losses.pixel_loss(a, b).item() == pytest.approx(0.5)


def test_total_variation_hand_case():
    m = torch.tensor([[[[0.0, 1.0], [1.0, 1.0]]]])
    # vertical |1−0| + |1−1| = 1; horizontal |1−0| + |1−1| = 1 → 2 (summed over pixels, Eq. 6)
    assert losses.total_variation(m).item() == pytest.approx(2.0)
    assert losses.total_variation(torch.ones(3, 1, 8, 8)).item() == 0.0


def test_total_variation_authors_form_is_three_channels_summed_over_the_batch():
    m = torch.tensor([[[[0.0, 1.0], [1.0, 1.0]]], [[[0.0, 0.0], [0.0, 1.0]]]])  # per image: 2 and 2 → mean 2
    assert losses.total_variation(m, "paper").item() == pytest.approx(2.0)
    # the released code repeats M to 3 channels and sums over the batch: 3 · (2 + 2)
    assert losses.total_variation(m, "authors").item() == pytest.approx(12.0)
    with pytest.raises(ValueError, match="TV form"):
        losses.total_variation(m, "mean")


def test_flow_smoothness_hand_case():
    flow = torch.zeros(1, 2, 2, 2)
    flow[0, 0] = torch.tensor([[0.0, 2.0], [0.0, 2.0]])  # u jumps by 2 px left→right, constant top→bottom
    # dx: |2−0| on both rows of u, 0 for v → mean over 2·2·1 = 4 entries = 1.0; dy: all 0
    assert losses.flow_smoothness(flow).item() == pytest.approx(1.0)
    assert losses.flow_smoothness(torch.full((2, 2, 5, 5), 3.0)).item() == 0.0  # a uniform shift costs nothing


def test_domain_classification_is_cross_entropy():
    logits = torch.tensor([[0.0, 0.0]])
    assert losses.domain_classification_loss(logits, torch.tensor([1])).item() == pytest.approx(math.log(2))


def test_gradient_penalty_of_linear_critic():
    # critic(x) = sum(w·x) has gradient w everywhere: penalty = (‖w‖ − 1)²
    w = torch.full((1, 1, 2, 2), 1.0)  # ‖w‖ = 2
    gp = losses.gradient_penalty(lambda t: (t * w).flatten(1).sum(1), torch.rand(3, 1, 2, 2), torch.rand(3, 1, 2, 2))
    assert gp.item() == pytest.approx(1.0, abs=1e-5)
