"""Fit the machine, or say so: estimate a run's peak memory before training and stop (or warn) with one sentence
naming the knobs when it exceeds what the device has — instead of the kernel's OOM killer ending the run in
silence.

The estimate (:func:`estimate_peak`) is a probe, not a model of each method: two real ``train_iteration`` calls
on copies of the module, with one and with two images of the configured size (so every network, loss and
optimizer the method has takes part), the bytes of every tensor storage they create tracked op by op
(:class:`TensorBytes`) and their peak taken per optimizer update. Per update, the difference of the two is what
an image adds (activations kept for backward), the rest does not grow with the batch (gradients, Adam's two
moments); the peak at ``data.batch_size`` is the largest of these lines read there (:func:`line_peak`)
[inferred: an update's peak grows linearly with the batch], and the loader's prefetched batches are added. Tensor bytes are exact about
tensors and blind to allocator overhead and cuDNN workspaces.

On the CPU at a true precision (``32-true`` …), for images of 128 px a side or more, the two iterations run on the
meta device (:func:`shapes_suffice`): every op makes its outputs with their shapes and dtypes but computes
nothing, so the storages and their sizes are the ones a real iteration makes (within 2 %, tests/suite/
test_memory.py) at a small share of its time — real iterations at 256 px on a 2-core CPU take minutes. A method the
meta device cannot run (an op without a meta kernel, a value read from a tensor: SAT's) gets real iterations
instead, as do small images (faster for real), GPU runs (fast there, and they see the device's own kernels) and
mixed precision (autocast does not act on meta tensors). The
training's random streams are restored afterwards, so a probed run trains exactly as an unprobed one. Not seen by
a first iteration: image pools filling up over later iterations, and allocator overhead.

Available memory: ``MemAvailable`` of ``/proc/meminfo`` (and the cgroup limit, when one is set) on the CPU,
``torch.cuda.mem_get_info`` on a GPU.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from torch.utils.data import DataLoader

from suite.callbacks.rng import collect_rng_states, restore_rng_states
from suite.errors import ConfigError

log = logging.getLogger(__name__)
GiB = 1024**3
CHECKS = ("warn", "stop", "off")


@dataclass
class Estimate:
    """A run's estimated peak memory on ``device`` (bytes) and how it was reached."""

    device: str
    batch_size: int
    per_image: int  # what one more image adds to an iteration's peak (activations kept for backward …)
    fixed: int  # what does not grow with the batch (gradients, Adam's moments …)
    loader: int  # prefetched batches
    available: int | None
    probe: str = "iterations"  # shapes (meta device: no arithmetic) | iterations (real ones on the device)

    @property
    def peak(self) -> int:
        return self.fixed + self.per_image * self.batch_size + self.loader

    @property
    def fits(self) -> bool:
        return self.available is None or self.peak <= self.available


def _read_int(path: str) -> int | None:
    try:
        text = Path(path).read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def available_bytes(device: torch.device) -> int | None:
    """Memory the run can still take on ``device`` (None when it cannot be told)."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    available = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                available = int(line.split()[1]) * 1024
    except OSError:
        pass
    limit, used = _read_int("/sys/fs/cgroup/memory.max"), _read_int("/sys/fs/cgroup/memory.current")
    if limit is not None and used is not None:
        available = min(available, limit - used) if available is not None else limit - used
    return available


class TensorBytes(TorchDispatchMode):
    """Live and peak bytes of the tensor storages created while this mode is active (every op, autograd's
    backward and the optimizer's steps included; storages that existed before are not counted). Exact about
    tensors, blind to allocator overhead. A storage's Python object lives as long as the storage (PyTorch keeps
    it), so a weak reference to it says when the memory is freed."""

    def __init__(self) -> None:
        super().__init__()
        self.live: dict[int, weakref.ref] = {}
        self.current = 0
        self.peak = 0
        self.segments: list[int] = [0]  # the peak of each segment (``mark`` starts the next one)

    def mark(self) -> None:
        """Start a new segment (the probe marks each optimizer update)."""
        self.segments.append(self.current)

    def _freed(self, key: int, nbytes: int) -> None:
        self.live.pop(key, None)
        self.current -= nbytes

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for tensor in tree_flatten(out)[0]:
            if isinstance(tensor, torch.Tensor):
                storage = tensor.untyped_storage()
                key = id(storage)
                if key not in self.live:
                    nbytes = storage.nbytes()
                    self.live[key] = weakref.ref(storage, lambda _ref, k=key, n=nbytes: self._freed(k, n))
                    self.current += nbytes
        self.peak = max(self.peak, self.current)
        self.segments[-1] = max(self.segments[-1], self.current)
        return out


def optimizer_state_bytes(module: torch.nn.Module) -> int:
    """Gradients and Adam's two moments: three copies of every trainable parameter."""
    return 3 * sum(p.numel() * p.element_size() for p in module.parameters() if p.requires_grad)


def probe_batch(datamodule: Any, size: int = 1) -> dict:
    """The first ``size`` training items, collated as the training loader collates them (read in this process)."""
    return next(iter(DataLoader(datamodule.dataset("train"), batch_size=size, shuffle=False, num_workers=0)))


def _stub_trainer(module: Any, device: torch.device, precision: Any):
    """A loop-less Trainer: the optimizers of ``configure_optimizers`` (made after the module moved to ``device``)
    and the precision plugin ``manual_backward`` needs; no logger, callbacks or loop. On the meta device it is a
    CPU trainer whose module holds shapes only."""
    from pytorch_lightning import Trainer

    trainer = Trainer(accelerator="gpu" if device.type == "cuda" else "cpu", devices=1, precision=precision,
                      logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.strategy.connect(module)
    module.trainer = trainer
    module.to(device).train()
    optimizers, _schedulers = module.configure_optimizers()
    trainer.strategy.optimizers = optimizers
    return trainer


def probe_iteration(module: Any, batch: dict, device: torch.device, precision: Any = "32-true") -> list[int]:
    """The peak live tensor bytes (:class:`TensorBytes`) of each optimizer update (and what lies between them) in
    one ``train_iteration`` of a copy of ``module`` on ``batch``; the module's own parameters are not counted, its
    gradients and Adam moments are. On ``torch.device("meta")`` the copy and the batch hold shapes only: every op
    makes its outputs' storages (same sizes) without computing them."""
    from lightning_utilities.core.apply_func import apply_to_collection

    clone = copy.deepcopy(module)
    clone.nan_guard = "off"  # the probe measures memory; a NaN there is the training's to report
    meter = TensorBytes()
    update = clone.optimize

    def marked(name: str, closure: Any, penalty: Any = None) -> Any:
        meter.mark()
        try:
            return update(name, closure, penalty)
        finally:
            meter.mark()

    clone.optimize = marked
    try:
        trainer = _stub_trainer(clone, device, precision)
        batch = apply_to_collection(batch, torch.Tensor, lambda t: t.to(device))
        with meter, trainer.precision_plugin.train_step_context():
            clone.train_iteration(batch)
        return meter.segments
    finally:
        # The copy and its stub trainer refer to each other: free their tensors now rather than at the next
        # garbage collection (a full collection costs more than the probe in a large process).
        for optimizer in getattr(getattr(clone, "_trainer", None), "optimizers", None) or []:
            optimizer.state.clear()
        clone.to_empty(device="meta")
        del clone
        if device.type == "cuda":
            torch.cuda.empty_cache()  # hand the probe's cached blocks back before the real run allocates


META = torch.device("meta")


SHAPE_ONLY_SIDE = 128  # image side from which the CPU probe runs on the meta device (see shapes_suffice)


def shapes_suffice(device: torch.device, precision: Any, side: int) -> bool:
    """Whether to probe on the meta device: on the CPU, at a true precision, for images of at least
    :data:`SHAPE_ONLY_SIDE` pixels a side. A meta op costs a fixed Python overhead, a real one its arithmetic: at
    32 px real iterations are the faster (measured: AGGAN 0.95 s real, 3.4 s meta), at 256 px by far the slower
    (README: the bridge on AFHQ). Mixed precision gets real iterations (autocast does not act on meta tensors, so
    every activation would count as float32), and so does a GPU (fast there, and its own kernels are seen)."""
    mixed = "mixed" in str(precision) or str(precision) in ("16", "bf16")
    return device.type == "cpu" and not mixed and side >= SHAPE_ONLY_SIDE


def probe_pair(module: Any, batch: dict, device: torch.device, precision: Any) -> tuple[tuple[int, int], list[int], list[int]]:
    """``(sizes, small, large)``: the per-update peaks of iterations on ``sizes`` images (1 and 2, or the one image
    a one-image split has, doubled: twice the memory for twice the images)."""
    n = _batch_len(batch)
    if n == 1:
        small = probe_iteration(module, batch, device, precision)
        return (1, 2), small, [2 * x for x in small]
    return (1, n), probe_iteration(module, _first(batch, 1), device, precision), probe_iteration(module, batch, device, precision)


def line_peak(small: list[int], large: list[int], sizes: tuple[int, int], batch_size: int) -> tuple[int, int]:
    """``(fixed, per_image)`` of the segment that peaks at ``batch_size``: each segment's peaks at the two probe
    sizes give a line (what it holds whatever the batch, and per image); the run's peak at B is the largest line
    read at B (which segment peaks moves with B: at one image the gradients and Adam moments may dominate, at 64
    the activations do). Segment lists that differ in length fall back to the line through the overall peaks."""
    if len(small) != len(large):
        small, large = [max(small)], [max(large)]
    a, b = sizes
    lines = []
    for p, q in zip(small, large):
        per_image = max(q - p, 0) / (b - a)
        lines.append((max(p - per_image * a, 0.0), per_image))
    fixed, per_image = max(lines, key=lambda line: line[0] + line[1] * batch_size)
    return round(fixed), round(per_image)


PROBE_SIZES = (1, 2)  # images per probe iteration (cheap: at most two images of the run's size)


def estimate_peak(module: Any, datamodule: Any, device: torch.device, precision: Any = "32-true") -> Estimate:
    """The run's peak memory estimate (see the module docstring). Every random stream is as it was before (the
    probe's draws are undone)."""
    rng = collect_rng_states()
    try:
        batch = probe_batch(datamodule, size=PROBE_SIZES[1])
        probe = "shapes" if shapes_suffice(device, precision, min(batch["image"].shape[-2:])) else "iterations"
        if probe == "shapes":
            try:
                sizes, small, large = probe_pair(module, batch, META, precision)
            except Exception as exc:  # an op without a meta kernel, a value read from a tensor (.item()) …
                log.info("memory check: the shape-only probe cannot run this method (%s: %s); running real "
                         "iterations instead", type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "")
                probe = "iterations"
        if probe == "iterations":
            sizes, small, large = probe_pair(module, batch, device, precision)
    finally:
        restore_rng_states(rng)
    batch_size = int(datamodule.batch_size)
    fixed, per_image = line_peak(small, large, sizes, batch_size)
    image_bytes = sum(t.numel() * t.element_size() for t in _first(batch, 1).values() if torch.is_tensor(t))
    workers = int(getattr(datamodule, "num_workers", 0))
    return Estimate(device=str(device), batch_size=batch_size, per_image=per_image, fixed=fixed,
                    loader=image_bytes * batch_size * (2 * workers + 1),  # each worker prefetches two batches
                    available=available_bytes(device), probe=probe)


def _batch_len(batch: dict) -> int:
    return int(batch["image"].shape[0])


def _first(batch: dict, n: int) -> dict:
    from lightning_utilities.core.apply_func import apply_to_collection

    return apply_to_collection(batch, torch.Tensor, lambda t: t[:n])


def readable(size: int) -> str:
    """Bytes as GiB (one decimal) from 1 GiB up, else MiB."""
    return f"{size / GiB:.1f} GiB" if size >= GiB else f"{size / 2**20:.0f} MiB"


@contextlib.contextmanager
def _quiet_lightning():
    """The probe's stub Trainer without Lightning's 'GPU available …' lines (the real Trainer prints them)."""
    lightning = logging.getLogger("pytorch_lightning.utilities.rank_zero")
    level = lightning.level
    lightning.setLevel(logging.WARNING)
    try:
        yield
    finally:
        lightning.setLevel(level)


def check_memory(mode: str, module: Any, datamodule: Any, device: torch.device, precision: Any = "32-true",
                 data_name: str = "?") -> Estimate | None:
    """``memory_check``: ``off`` does nothing; ``warn`` logs one sentence when the estimate exceeds the device's
    available memory; ``stop`` raises it as a ConfigError (before any training)."""
    if mode not in CHECKS:
        raise ConfigError(f"memory_check must be one of {', '.join(CHECKS)}, got {mode!r}.")
    if mode == "off":
        return None
    log.info("memory check: probing training iterations on 1 and on 2 images (memory_check=off skips this)")
    try:
        with _quiet_lightning():
            estimate = estimate_peak(module, datamodule, device, precision)
    except torch.cuda.OutOfMemoryError:
        sentence = (f"one training iteration on a single image of data={data_name} does not fit in the GPU's free "
                    "memory; lower data.image_size or use trainer.precision=bf16-mixed.")
        if mode == "stop":
            raise ConfigError(sentence) from None
        log.warning(sentence)
        return None
    except (RuntimeError, ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
        log.warning("memory estimate skipped: the one-image probe failed (%s: %s)", type(exc).__name__, exc)
        return None
    if estimate.fits:
        log.info("memory check: about %s at the peak, %s available (probe: %s)", readable(estimate.peak),
                 readable(estimate.available) if estimate.available is not None else "?", estimate.probe)
        return estimate
    where = "GPU" if device.type == "cuda" else "machine"
    sentence = (
        f"this run needs about {readable(estimate.peak)} at its peak (training iterations on one and two images "
        f"probed and scaled to data.batch_size={estimate.batch_size}) but the {where} has {readable(estimate.available)} "
        f"available; lower data.batch_size or data.image_size (data={data_name}), or use trainer.precision=bf16-mixed"
        + (", or set memory_check=warn to try anyway." if mode == "stop" else ".")
    )
    if mode == "stop":
        raise ConfigError(sentence)
    log.warning(sentence)
    return estimate
