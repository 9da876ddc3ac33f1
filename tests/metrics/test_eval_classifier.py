import json
import math

import pytest
import torch

from metrics.eval_classifier import (
    DEFAULT_EPOCHS,
    Recipe,
    build_classifier,
    cache_key,
    classifier_accuracy,
    default_cache_dir,
    evaluate_real_accuracy,
    get_or_train_eval_classifier,
    train_eval_classifier,
)
from metrics.eval_classifier import evaluator as ec_evaluator
from metrics.eval_classifier import fit as ec_fit
from suite.errors import ConfigError, DatasetError

SIZE = 32


def blobs(n: int, seed: int) -> dict[str, torch.Tensor]:
    """A Gaussian blob on a noisy background: left half → domain 0, right half → domain 1.

    attrs: [blob in the left half, a second blob in the right half] for the multilabel task.
    """
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(SIZE).float(), torch.arange(SIZE).float(), indexing="ij")
    domain = torch.randint(0, 2, (n,), generator=g)
    cx = torch.where(domain == 0, torch.rand(n, generator=g) * 10 + 3, torch.rand(n, generator=g) * 10 + 19)
    cy = torch.rand(n, generator=g) * 26 + 3
    extra = torch.rand(n, generator=g) < 0.5  # a second blob, always right half
    ex, ey = torch.rand(n, generator=g) * 10 + 19, torch.rand(n, generator=g) * 26 + 3

    def blob(x, y):
        return torch.exp(-((xx - x.view(-1, 1, 1)) ** 2 + (yy - y.view(-1, 1, 1)) ** 2) / 8.0)

    img = blob(cx, cy) + extra.view(-1, 1, 1) * blob(ex, ey)
    img = img.unsqueeze(1).expand(n, 3, SIZE, SIZE) * 1.6 - 0.8
    img = (img + 0.1 * torch.randn(n, 3, SIZE, SIZE, generator=g)).clamp(-1, 1)
    attrs = torch.stack([(domain == 0), (domain == 1) | extra], dim=1).float()
    return {"image": img, "domain": domain, "attrs": attrs}


class Loader:
    """A minimal shuffling loader yielding dict batches, like the datamodules'."""

    def __init__(self, data: dict[str, torch.Tensor], batch_size: int = 64, shuffle: bool = True) -> None:
        self.data, self.batch_size, self.shuffle = data, batch_size, shuffle

    def __len__(self) -> int:
        return math.ceil(len(self.data["image"]) / self.batch_size)

    def __iter__(self):
        n = len(self.data["image"])
        order = torch.randperm(n) if self.shuffle else torch.arange(n)
        for i in range(0, n, self.batch_size):
            idx = order[i : i + self.batch_size]
            yield {k: v[idx] for k, v in self.data.items()}


@pytest.fixture(scope="module")
def train_data():
    return blobs(256, seed=0)


@pytest.fixture(scope="module")
def test_data():
    return blobs(256, seed=1)


INFO = {"name": "blobs", "image_size": SIZE, "domain_names": ["left", "right"], "batch_size": 64}


@pytest.mark.parametrize("arch", ["small", "resnet18"])
def test_build_classifier_output_shape(arch):
    model = build_classifier(arch, 3, SIZE).eval()
    assert model(torch.zeros(2, 3, SIZE, SIZE)).shape == (2, 3)


def test_unknown_arch_is_a_config_error():
    with pytest.raises(ConfigError):
        build_classifier("vgg", 2, SIZE)


def test_small_classifier_learns_an_easy_task(train_data, test_data):
    model = train_eval_classifier(Loader(train_data, batch_size=32), 2, "domain", "small", epochs=4)
    assert not model.training
    real = evaluate_real_accuracy(model, Loader(test_data, shuffle=False), "domain")
    assert real["accuracy"] > 0.9
    assert real["n"] == 256
    correct = classifier_accuracy(model, test_data["image"][:16], test_data["domain"][:16], "domain")
    assert correct.shape == (16,) and set(correct.unique().tolist()) <= {0.0, 1.0}
    # asking for the wrong domain must almost never count as success
    wrong = classifier_accuracy(model, test_data["image"], 1 - test_data["domain"], "domain")
    assert wrong.mean() < 0.1


def test_multilabel_classifier_gives_per_attribute_correctness(train_data, test_data):
    model = train_eval_classifier(Loader(train_data, batch_size=32), 2, "multilabel", "small", epochs=4)
    correct = classifier_accuracy(model, test_data["image"], test_data["attrs"], "multilabel")
    assert correct.shape == (256, 2)
    assert correct.mean() > 0.85
    real = evaluate_real_accuracy(model, Loader(test_data), "multilabel", attr_names=["left", "right"])
    assert set(real) == {"accuracy", "accuracy/left", "accuracy/right", "n"}


def test_missing_labels_is_a_dataset_error(train_data):
    no_labels = {"image": train_data["image"][:8]}
    with pytest.raises(DatasetError):
        train_eval_classifier(Loader(no_labels), 2, "domain", steps=1)


def test_training_is_reproducible(train_data):
    a = train_eval_classifier(Loader(train_data), 2, steps=3, seed=3)
    b = train_eval_classifier(Loader(train_data), 2, steps=3, seed=3)
    for (ka, va), (_, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(va, vb), ka


def test_two_domain_batches_train_on_their_refs(train_data):
    # the two-domain view: `image` only from domain 0, `ref` from domain 1
    src = train_data["domain"] == 0
    n = int(min(src.sum(), (~src).sum()))
    two = {
        "image": train_data["image"][src][:n],
        "domain": torch.zeros(n, dtype=torch.long),
        "ref": train_data["image"][~src][:n],
        "ref_domain": torch.ones(n, dtype=torch.long),
    }
    with pytest.raises(DatasetError, match="only domain"):
        train_eval_classifier(Loader(two, batch_size=32), 2, epochs=1)
    model = train_eval_classifier(Loader(two, batch_size=32), 2, epochs=1, use_ref=True)
    with_refs = evaluate_real_accuracy(model, Loader(two), use_ref=True)
    assert with_refs["n"] == 2 * n


class CountingLoader(Loader):
    passes = 0

    def __iter__(self):
        self.passes += 1
        return super().__iter__()


def test_preload_reads_the_loader_once(train_data):
    small = {k: v[:64] for k, v in train_data.items()}
    once, every = CountingLoader(small, batch_size=32), CountingLoader(small, batch_size=32)
    train_eval_classifier(once, 2, epochs=3)
    train_eval_classifier(every, 2, epochs=3, preload_mb=0)
    assert (once.passes, every.passes) == (1, 3)


def test_shift_augmentation_moves_whole_pixels():
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).view(2, 3, 8, 8)
    y = ec_fit.augment(x, shift=0.25, hflip=False)
    assert y.shape == x.shape
    assert torch.isin(y, x).all()  # no interpolated values


@pytest.fixture
def counted(monkeypatch):
    """Counts trainings and train-loader constructions done by get_or_train_eval_classifier."""
    calls = {"train": 0, "loader": 0}
    real_train = ec_fit.train_eval_classifier

    def train(*args, **kwargs):
        calls["train"] += 1
        return real_train(*args, **kwargs)

    monkeypatch.setattr(ec_fit, "train_eval_classifier", train)
    data = blobs(64, seed=5)

    def loader_fn():
        calls["loader"] += 1
        return Loader(data, batch_size=32)

    return calls, loader_fn, data


def test_second_call_loads_from_cache(tmp_path, counted):
    calls, loader_fn, data = counted
    first = get_or_train_eval_classifier(INFO, loader_fn, tmp_path, steps=2, test_loader_fn=loader_fn)
    assert not first.from_cache and calls["train"] == 1
    assert first.path == tmp_path / f"evalclf-{first.key}.pt" and first.path.exists()
    sidecar = json.loads(first.path.with_suffix(".json").read_text())
    assert sidecar["settings"]["steps"] == 2 and 0.0 <= sidecar["real_accuracy"]["accuracy"] <= 1.0

    loader_calls = calls["loader"]
    second = get_or_train_eval_classifier(INFO, loader_fn, tmp_path, steps=2, test_loader_fn=loader_fn)
    assert second.from_cache
    assert calls["train"] == 1 and calls["loader"] == loader_calls  # no training, no data loading
    assert second.real_accuracy == first.real_accuracy
    x = data["image"][:8]
    with torch.no_grad():
        assert torch.allclose(first.model(x), second.model(x), atol=1e-6)
    assert list(tmp_path.glob("*.tmp")) == []  # atomic writes leave no temp files


def test_corrupt_cache_warns_and_retrains(tmp_path, counted):
    calls, loader_fn, _ = counted
    first = get_or_train_eval_classifier(INFO, loader_fn, tmp_path, steps=1)
    first.path.write_bytes(b"not a checkpoint")
    with pytest.warns(UserWarning, match="could not be loaded"):
        again = get_or_train_eval_classifier(INFO, loader_fn, tmp_path, steps=1)
    assert not again.from_cache and calls["train"] == 2
    assert get_or_train_eval_classifier(INFO, loader_fn, tmp_path, steps=1).from_cache  # repaired


def test_lost_sidecar_is_rebuilt_without_retraining(tmp_path, counted):
    calls, loader_fn, _ = counted
    first = get_or_train_eval_classifier(INFO, loader_fn, tmp_path, steps=1)
    first.path.with_suffix(".json").unlink()
    again = get_or_train_eval_classifier(INFO, loader_fn, tmp_path, steps=1, test_loader_fn=loader_fn)
    assert again.from_cache and calls["train"] == 1
    assert again.real_accuracy is not None
    assert json.loads(first.path.with_suffix(".json").read_text())["real_accuracy"]["n"] == 64


def test_changed_domain_names_train_a_new_classifier(tmp_path, counted):
    calls, loader_fn, _ = counted
    other = {**INFO, "domain_names": ["west", "east"]}
    a = get_or_train_eval_classifier(INFO, loader_fn, tmp_path, steps=1)
    b = get_or_train_eval_classifier(other, loader_fn, tmp_path, steps=1)
    assert a.key != b.key and calls["train"] == 2
    assert len(list(tmp_path.glob("evalclf-*.pt"))) == 2


def test_cache_key_is_stable_and_ignores_unrelated_fields():
    key = cache_key(INFO, settings={"steps": 1})
    assert key == cache_key(dict(INFO), settings={"steps": 1})
    assert key == cache_key(
        {**INFO, "batch_size": 8, "domain_names": ("left", "right")}, settings={"steps": 1}
    )
    assert key != cache_key({**INFO, "image_size": 64}, settings={"steps": 1})
    assert key != cache_key(INFO, split="val", settings={"steps": 1})
    assert key != cache_key(INFO, arch="resnet18", settings={"steps": 1})
    assert key != cache_key(INFO, settings={"steps": 2})


def test_cache_key_of_the_default_recipe_is_pinned():
    """Users keep fitted classifiers in ~/.cache/facetrans and the README's figures were measured with them: the
    key of a given data/recipe must never change silently (bump CACHE_FORMAT when it must)."""
    recipe = Recipe(use_ref=False)
    assert recipe.epochs == DEFAULT_EPOCHS and Recipe(steps=3).epochs is None
    assert recipe.settings() == {"epochs": 10, "steps": None, "lr": 3e-3, "weight_decay": 1e-4, "shift": 0.0,
                                 "hflip": False, "seed": 0, "use_ref": False, "warmup_steps": 100}
    assert cache_key(INFO, settings=recipe.settings()) == "0e656823b0581fd5"


def test_recipe_and_keyword_settings_fit_the_same_classifier(train_data):
    loader = Loader(train_data)
    a = train_eval_classifier(loader, 2, recipe=Recipe(steps=2, seed=4, lr=1e-3))
    b = train_eval_classifier(loader, 2, steps=2, seed=4, lr=1e-3)
    assert all(torch.equal(a.state_dict()[k], v) for k, v in b.state_dict().items())
    with pytest.raises(TypeError):
        train_eval_classifier(loader, 2, stepz=2)


def test_default_cache_dir_follows_env(monkeypatch, tmp_path):
    monkeypatch.setenv("FACETRANS_CACHE", str(tmp_path))
    assert default_cache_dir() == tmp_path
    monkeypatch.delenv("FACETRANS_CACHE")
    assert default_cache_dir().parts[-2:] == (".cache", "facetrans")


def test_info_without_labels_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError):
        get_or_train_eval_classifier({"name": "x", "image_size": SIZE}, lambda: [], tmp_path)


def test_learning_rate_warms_up_linearly_then_decays_by_cosine():
    factor = ec_fit.warmup_cosine(10, total=110)
    assert [factor(s) for s in (0, 4, 9)] == pytest.approx([0.1, 0.5, 1.0])
    assert factor(60) == pytest.approx(0.5)  # half-way through the 100 decay steps: (1 + cos π/2) / 2
    assert factor(110) == pytest.approx(0.0, abs=1e-12)
    short = ec_fit.warmup_cosine(100, total=50)  # warm-up capped at a fifth of the run: 10 steps
    assert short(9) == pytest.approx(1.0)


def test_a_classifier_at_chance_on_real_images_is_reported(test_data):
    blank = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * SIZE * SIZE, 2))
    torch.nn.init.zeros_(blank[1].weight)
    torch.nn.init.zeros_(blank[1].bias)  # constant logits: always "left", i.e. chance on balanced labels
    with pytest.warns(UserWarning, match="accuracy_target says little"):
        ec_evaluator.real_accuracy(blank, lambda: Loader(test_data, shuffle=False), "domain", INFO, use_ref=False)
