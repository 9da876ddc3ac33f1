"""The registry of tiny method configurations: for each of the seven methods, the overrides that make it tiny and
fast, the short schedules that visit every phase and optimizer in a few iterations, the data of a real run on the
embedded faces, and the ``info``/batch a unit test builds it with. Every test that needs a small method takes it
from here (the contract suite, the per-method tests, the resume and evaluation runs under tests/suite)."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

from omegaconf import DictConfig

from suite.training import build_method
from tests.conftest import compose_config
from tests.helpers.batches import (
    ATTR_INFO,
    ATTRS,
    FACTOR_INFO,
    INFO2,
    INFO5,
    attr_batch,
    domain_batch,
    factor_batch,
)

# a real run: 32 px, few test/val images, no sample grids during training
DATA = ("data.image_size=32", "data.test_size=8", "data.val_size=4", "method.sample_every=0", "method.num_samples=2")
TWO = (*DATA, "data.batch_size=2", "data.train_size=6")  # 3 train batches per epoch
MULTI = ("data.batch_size=4", "data.train_size=12", "data.val_size=5", "data.test_size=5")  # 5 expression domains
AGGAN_NETS = ("method.generator.ngf=8", "method.generator.n_blocks=1", "method.discriminator.ndf=8")
SPM_NETS = (*AGGAN_NETS, "method.generator.n_refine_blocks=1", "method.discriminator.n_layers=3",
            "method.motion_classifier.ndf=8", "method.enhancer.ngf=4")
SAT_NETS = ("method.generator.ngf=4", "method.generator.n_blocks=1", "method.discriminator.ndf=4",
            "method.attention.decoder_channels=[8,4]")
DISENT_NETS = ("method.encoder.ngf=4", "method.decoder.n_blocks=1", "method.classifier.ndf=4",
               "method.discriminator.ndf=4", "method.discriminator.n_layers=3")
BRIDGE_NETS = ("method.generator.ngf=8", "method.generator.spade_hidden=8", "method.mapping.start_channels=8",
               "method.mapping.channels=8", "method.encoder.nef=4", "method.code_channels=8",
               "method.discriminator.ndf=8")
# translate()'s outputs by method: key → channels of a B×C×H×W output at the input's size (None: another shape)
AGGAN_OUT = {"image": 3, "mask": 1, "content": 3}
SPM_OUT = {"image": 3, "deformed": 3, "flow": 2, "mask": 1, "residual": 3}


@dataclass(frozen=True)
class TinyMethod:
    """One method at test size.

    nets: ``method=<name>`` and the smallest network widths; schedule: short schedules (n_critic, phases, λ
    induction) so that a few iterations visit every optimizer; data: a real run's data on the embedded faces;
    info/batch: what a unit test builds the method for and trains it on; outputs: translate()'s documented keys
    (key → channels of an image-shaped output, None for another shape); iterations: how many a unit test runs for
    every optimizer to step at least once.
    """

    name: str
    nets: tuple[str, ...]
    data: tuple[str, ...]
    info: dict
    batch: Callable[[], dict]
    outputs: dict[str, int | None]
    schedule: tuple[str, ...] = ()
    iterations: int = 1

    @property
    def unit(self) -> list[str]:
        """Overrides of a unit-test build: nets and schedules."""
        return [*self.nets, *self.schedule]

    @property
    def run(self) -> list[str]:
        """Overrides of a real run (``train``) on the embedded data."""
        return [*self.nets, *self.schedule, *self.data]


METHODS: dict[str, TinyMethod] = {
    "aggan": TinyMethod("aggan", ("method=aggan", *AGGAN_NETS), TWO, INFO2, domain_batch, AGGAN_OUT),
    "cyclegan": TinyMethod("cyclegan", ("method=cyclegan", *AGGAN_NETS), TWO, INFO2, domain_batch, {"image": 3}),
    "stargan": TinyMethod("stargan", ("method=stargan",), MULTI, INFO5, lambda: domain_batch(4, num_domains=5),
                          {"image": 3}, iterations=2),
    "spm": TinyMethod("spm", ("method=spm", *SPM_NETS), (*DATA, *MULTI), INFO5,
                      lambda: domain_batch(4, num_domains=5), SPM_OUT, schedule=("method.n_critic=2",), iterations=2),
    "sat": TinyMethod("sat", ("method=sat", *SAT_NETS), TWO, {**INFO2, "image_size": 16, "direction": "a2b"},
                      lambda: domain_batch(2, 16), {"image": 3, "mask": 1, "content": 3},
                      schedule=("method.phases.g0=2", "method.phases.attention=3", "method.induction.every=1",
                                "method.induction.step=0.5", "method.induction.threshold=-1"), iterations=6),
    "disent": TinyMethod("disent", ("method=disent", *DISENT_NETS),
                         ("data=synthfaces", *DATA, "data.batch_size=4", "data.train_size=12",
                          "method.expected_embeddings.max_images=8",
                          "method.attributes=[identity,expression,illumination]"),
                         FACTOR_INFO, factor_batch, {"image": 3}),
    "bridge": TinyMethod("bridge", ("method=bridge", *BRIDGE_NETS),
                         ("data=synthfaces", *TWO, f"data.attributes=[{','.join(ATTRS)}]"),
                         ATTR_INFO, attr_batch, {"image": 3, "images": None, "code": None}),
}
RUN_OVERRIDES: dict[str, list[str]] = {name: m.run for name, m in METHODS.items()}


def method_config(name: str, *overrides: str, schedule: bool = True) -> DictConfig:
    """The train config of the tiny ``name`` for a unit test (no logger, 10 iterations planned), plus ``overrides``
    (without the registry's short schedules when ``schedule`` is false)."""
    spec = METHODS[name]
    return compose_config(["run_dir=/tmp/unused", "logger=none", "scale=synth", "trainer.max_steps=10",
                           *(spec.unit if schedule else spec.nets), *overrides])


def build(name: str, *overrides: str, info: dict | None = None, quiet: bool = False, schedule: bool = True):
    """The tiny ``name`` built for its registry ``info`` (or ``info``), without data or trainer.

    quiet: hide construction warnings (SAT warns that its VGG is random when ``pretrained=false``)."""
    cfg = method_config(name, *overrides, schedule=schedule)
    with warnings.catch_warnings():
        if quiet:
            warnings.simplefilter("ignore")
        return build_method(cfg, info or METHODS[name].info)
