import math

import pytest
import torch

from metrics.streaming import MeanAccumulator, MetricBook


def test_streaming_mean_and_std_equal_full_over_random_chunks():
    g = torch.Generator().manual_seed(0)
    values = torch.randn(1000, generator=g) * 3 + 7
    cuts = sorted(torch.randint(1, 1000, (12,), generator=g).tolist())
    acc = MeanAccumulator()
    for chunk in torch.tensor_split(values, cuts):
        acc.update(chunk)
    assert acc.n == 1000
    assert acc.mean == pytest.approx(values.double().mean().item(), rel=1e-12)
    assert acc.std == pytest.approx(values.double().std().item(), rel=1e-10)


def test_inf_is_counted_apart_from_the_mean():
    acc = MeanAccumulator()
    acc.update(torch.tensor([10.0, math.inf, 20.0]))
    acc.update(torch.tensor([math.inf, math.nan]))
    assert acc.mean == pytest.approx(15.0)
    assert (acc.n, acc.n_inf, acc.n_nan, acc.count) == (2, 2, 1, 5)


def test_all_inf_gives_inf_mean_and_nothing_gives_nan():
    acc = MeanAccumulator()
    assert math.isnan(acc.mean)
    acc.update(torch.tensor([math.inf, math.inf]))
    assert acc.mean == math.inf


def test_merge_equals_single_stream():
    a, b, full = MeanAccumulator(), MeanAccumulator(), MeanAccumulator()
    x = torch.arange(10.0)
    a.update(x[:3])
    b.update(x[3:])
    full.update(x)
    a.merge(b)
    assert (a.mean, a.n) == (pytest.approx(full.mean), full.n)
    assert a.std == pytest.approx(full.std)


def test_metric_book_flat_summary():
    book = MetricBook()
    book.update({"psnr": torch.tensor([20.0, math.inf]), "ssim": torch.tensor([0.5, 0.7])})
    book.update({"psnr": torch.tensor([30.0]), "ssim": torch.tensor([0.9])})
    s = book.summary()
    assert s["psnr"] == pytest.approx(25.0)
    assert s["psnr/n"] == 2 and s["psnr/n_inf"] == 1
    assert s["ssim"] == pytest.approx(0.7) and s["ssim/n"] == 3
    assert "ssim/n_inf" not in s
    assert all(isinstance(v, float) for v in s.values())


def test_metric_book_per_column_metrics():
    book = MetricBook()
    book.add("acc", torch.tensor([[1.0, 0.0], [1.0, 1.0]]), columns=["smile", "glasses"])
    s = book.summary(std=False)
    assert s["acc"] == pytest.approx(0.75)
    assert s["acc/smile"] == 1.0 and s["acc/glasses"] == 0.5
    assert "acc/std" not in s


def test_metric_book_rejects_wrong_column_count():
    with pytest.raises(ValueError):
        MetricBook().add("acc", torch.zeros(2, 3), columns=["a", "b"])
