"""Training speed of every method: ``python -m suite.bench`` (also ``make bench-train``).

For each method it measures, after ``--warmup`` iterations:

- **lightning**: seconds per iteration and images/s through the real path, ``suite.training.train(cfg)`` (Hydra
  config → datamodule → module → ``Trainer.fit``), timed between consecutive ``on_train_batch_end`` calls, so
  data loading, Lightning's loop, logging and the method's own bookkeeping are all inside;
- **floor**: the same module's ``train_iteration`` (every forward/backward pass and optimizer step of one
  iteration) called in a plain loop over batches already in memory, from ``on_train_start`` of a bare
  ``pl.Trainer`` (which only sets up the device, optimizers and precision plugin: no Lightning loop, loader,
  logging or other callbacks inside the timed loop);
- **overhead** = lightning / floor (goal ≤ 1.05), and the same with the data loader's time per batch taken out
  of the lightning figure (``overhead_ex_data``), since on a CPU with ``num_workers=0`` loading is serial;
- **overhead within iteration** (CPU): each Lightning iteration's interval ÷ the time of its own ``train_iteration``
  call, median over the measured iterations, and ``lightning_outside_ms``, their difference. Both come from one
  run, so unlike the ratio of two runs they do not move with the machine's speed drifting between runs;
- **loader**: the train data loader alone (images/s);
- **peak memory**: CPU peak RSS of the process during the Lightning run (``resource.getrusage``, reset per
  method through ``/proc/self/clear_refs`` where Linux allows it) and, with CUDA, ``max_memory_allocated``;
- **FLOPs/MFU** (CUDA, or ``--flops``): ``torch.utils.flop_counter.FlopCounterMode`` over one ``train_iteration``
  → FLOP per iteration; with a device peak (table below or ``--peak-tflops``) → MFU = achieved / peak.

Default setting: synth scale, 32 px, batch 8 (the CPU recipes). ``--paper``: ``scale=paper`` with each method's
published resolution and batch size (on the embedded data, so no dataset is needed). Results go to
``bench_results/train.json`` and ``train.md``. Timings on a shared machine are noisy: compare runs taken on the
same, otherwise idle, device.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import platform
import resource
import sys
import tempfile
import time
import warnings
from pathlib import Path
from statistics import median
from typing import Any, ClassVar

import pytorch_lightning as pl
import torch

REPO = Path(__file__).resolve().parents[1]
CONF_DIR = REPO / "conf"
METHODS = ("aggan", "cyclegan", "spm", "stargan", "sat", "disent", "bridge")
SYNTH_SETTING = {"image_size": 32, "batch_size": 8}
# Published resolution and batch size per method (conf/experiment/*_celeba*.yaml, *_rafd.yaml, specs/methods.md).
PAPER_SETTING: dict[str, dict[str, int]] = {
    "aggan": {"image_size": 256, "batch_size": 1},
    "cyclegan": {"image_size": 256, "batch_size": 1},
    "spm": {"image_size": 128, "batch_size": 16},
    "stargan": {"image_size": 128, "batch_size": 16},
    "sat": {"image_size": 256, "batch_size": 1},
    "disent": {"image_size": 128, "batch_size": 16},
    "bridge": {"image_size": 128, "batch_size": 48},
}
# Overrides that only remove a dependency on downloaded files (they change no FLOP or timing that matters).
PAPER_EXTRA: dict[str, list[str]] = {"sat": ["method.pretrained=false"]}
# Dense bf16 tensor-core peaks in TFLOP/s (vendor data sheets, no sparsity); matched by substring of the
# device name, first match wins (so "H100 PCIe" is listed before "H100").
PEAK_BF16_TFLOPS: list[tuple[str, float]] = [
    ("GB200", 2500.0),
    ("B200", 2250.0),
    ("H200", 989.0),
    ("H100 PCIe", 756.0),
    ("H100", 989.0),
    ("GH200", 989.0),
    ("H800", 989.0),
    ("L40S", 362.0),
    ("L40", 181.0),
    ("A100", 312.0),
    ("A800", 312.0),
    ("A10G", 70.0),
    ("A10", 125.0),
    ("L4", 121.0),
    ("RTX 6000 Ada", 364.0),
    ("A6000", 155.0),
    ("4090", 165.0),
    ("3090", 71.0),
    ("V100", 125.0),  # no bf16: fp16 tensor-core peak
    ("T4", 65.0),  # no bf16: fp16 tensor-core peak
]


def peak_tflops(device_name: str) -> float | None:
    for key, value in PEAK_BF16_TFLOPS:
        if key.lower() in device_name.lower():
            return value
    return None


# ---------------------------------------------------------------------------------------------- configs
def compose(method: str, *, paper: bool, run_dir: Path, iterations: int, precision: str, extra: list[str] = ()) -> Any:
    """The train config of ``method`` at the bench setting (CPU/GPU by availability, no logger)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from suite.config import register_resolvers

    register_resolvers()

    setting = PAPER_SETTING[method] if paper else SYNTH_SETTING
    overrides = [
        f"method={method}",
        "data=synthfaces",
        f"scale={'paper' if paper else 'synth'}",
        f"data.image_size={setting['image_size']}",
        f"data.batch_size={setting['batch_size']}",
        "data.train_size=4000",
        "data.val_size=16",
        f"trainer={'gpu' if torch.cuda.is_available() else 'cpu'}",
        f"trainer.precision={precision}",
        f"trainer.max_steps={iterations}",
        "trainer.enable_progress_bar=false",
        "trainer.log_every_n_steps=50",
        "logger=none",
        f"run_dir={run_dir}",
        f"checkpoint_every={10**9}",
        "method.sample_every=0",
        "method.num_samples=0",
        *(PAPER_EXTRA.get(method, []) if paper else []),
        *extra,
    ]
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return hydra_compose(config_name="train", overrides=overrides)


# --------------------------------------------------------------------------------------------- helpers
def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _reset_peak_memory() -> None:
    with contextlib.suppress(OSError):  # Linux: "5" resets the peak RSS (VmHWM) that getrusage reports
        Path("/proc/self/clear_refs").write_text("5")
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()


def peak_memory() -> dict[str, float]:
    """Peak resident memory of this process (and the GPU's max allocated), MiB."""
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
    out = {"peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20}
    if torch.cuda.is_available():
        out["gpu_max_allocated_mib"] = torch.cuda.max_memory_allocated() / 2**20
    return out


def _to(batch: Any, device: torch.device, channels_last: bool) -> Any:
    """``batch`` on ``device`` as Lightning moves it (nested dicts too: disent's ``factors``), image tensors in
    channels_last when asked (the module's own ``on_after_batch_transfer`` conversion)."""
    from pytorch_lightning.utilities import move_data_to_device

    from suite.speed import to_channels_last

    batch = move_data_to_device(batch, device)
    return to_channels_last(batch) if channels_last else batch


# ------------------------------------------------------------------------------------------- measuring
def bench_loader(datamodule: Any, batches: int, warmup: int) -> dict[str, float]:
    loader = datamodule.train_dataloader()
    it = iter(loader)
    n_images = 0
    for _ in range(warmup):
        next(it)
    t0 = time.perf_counter()
    for _ in range(batches):
        n_images += next(it)["image"].shape[0]
    dt = time.perf_counter() - t0
    return {"loader_images_per_s": n_images / dt, "loader_s_per_batch": dt / batches}


class IterationStamps(pl.Callback):
    """The time at every ``on_train_batch_end`` (after the run's configured callbacks); the device is
    synchronised only at the stamps that bound the warm-up and the measured iterations."""

    def __init__(self, warmup: int, iters: int) -> None:
        self.stamps: list[float] = []
        self.inside: list[float] = []  # CPU only: each call of the module's train_iteration, start to return
        self.started: float | None = None  # on_train_start: the warm-up (and any compilation) runs from here
        self._sync_at = (0, warmup - 1, warmup, warmup + iters - 1, warmup + iters)

    def on_train_start(self, trainer, pl_module) -> None:
        self.started = time.perf_counter()
        if pl_module.device.type == "cpu":  # on a GPU the call returns before its kernels finish: not timed
            self._time_train_iteration(pl_module)

    def _time_train_iteration(self, module: Any) -> None:
        """Times ``train_iteration`` inside the Lightning path: within one iteration, its interval minus this time is
        what Lightning, the loader and the callbacks add, free of the machine's drift between runs."""
        inner, inside = module.train_iteration, self.inside

        def timed(batch: dict) -> dict:
            t0 = time.perf_counter()
            out = inner(batch)
            inside.append(time.perf_counter() - t0)
            return out

        module.train_iteration = timed

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if len(self.stamps) in self._sync_at:
            _sync()
        self.stamps.append(time.perf_counter())


def bench_lightning(cfg: Any, warmup: int, iters: int) -> dict[str, float]:
    """``train(cfg)`` (fast paths from ``cfg.speed``, the configured callbacks) with a timing callback added."""
    from suite.training import train

    timer = IterationStamps(warmup, iters)
    _reset_peak_memory()
    result = train(cfg, callbacks=[timer])
    stamps = timer.stamps
    mem = peak_memory()
    if result.get("stop_signal") is not None:  # e.g. `timeout` ran out: the run saved and stopped early
        raise KeyboardInterrupt(f"the benchmark was interrupted by signal {result['stop_signal']}")
    assert len(stamps) > warmup + iters, f"trained {len(stamps)} iterations, expected {warmup + iters + 1}"
    # stamps[warmup-1] closes the last warm-up iteration; the next `iters` intervals are measured.
    dt = stamps[warmup - 1 + iters] - stamps[warmup - 1]
    n = iters
    batch = int(cfg.data.batch_size)
    # the warm-up iterations' time, torch.compile's compilation included (reported apart from the measured rate)
    warm = stamps[warmup - 1] - timer.started if timer.started is not None else None
    # per-iteration times (true on CPU; on CUDA only the bounds are synchronised, so they are not used there)
    each = [b - a for a, b in zip(stamps[warmup - 1 : warmup - 1 + iters], stamps[warmup : warmup + iters])]
    out = {"lightning_s_per_iter": dt / n, "lightning_images_per_s": batch * n / dt, "warmup_s": warm, **mem,
           "_iteration_s": each, "_result": result}
    if timer.inside:  # iteration i's interval (batch end i-1 → batch end i) holds train_iteration call i
        out["_inside_s"] = timer.inside[warmup : warmup + iters]
    return out


class PlainLoop(pl.Callback):
    """Runs ``measure(module)`` at ``on_train_start`` — the trainer has placed the module on its device and set
    up its optimizers and precision plugin, so ``train_iteration`` runs as in training — then stops the fit
    before its first batch. ``result`` holds what ``measure`` returned."""

    def __init__(self, measure: Any) -> None:
        self.measure = measure
        self.result: Any = None

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.result = self.measure(pl_module)
        trainer.should_stop = True


def bench_floor(cfg: Any, datamodule: Any, warmup: int, iters: int, flops: bool) -> dict[str, Any]:
    """The same module's ``train_iteration`` in a plain loop: no Trainer loop, loader, logging or callbacks."""
    from suite.speed import apply_fast_paths, resolve_compile
    from suite.training import build_method

    pl.seed_everything(int(cfg.seed), workers=True, verbose=False)
    module = build_method(cfg, datamodule.info)
    module.max_iterations = int(cfg.trainer.max_steps)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    channels_last = bool(cfg.speed.channels_last)  # the same fast paths as the Lightning path (set in compose)
    what = resolve_compile(cfg.speed.compile, device.type)
    apply_fast_paths(module, channels_last=channels_last, compile_generators=what == "nets")
    if what == "steps":
        module.compile_steps = {"mode": cfg.speed.compile_mode} if cfg.speed.get("compile_mode") else {}
    loader = datamodule.train_dataloader()
    it = iter(loader)
    batches = [_to(next(it), device, channels_last) for _ in range(min(warmup + iters, 8))]
    precision = str(cfg.trainer.precision)
    autocast = (
        torch.autocast(device.type, dtype=torch.bfloat16 if "bf16" in precision else torch.float16)
        if "mixed" in precision
        else contextlib.nullcontext()
    )

    def measure(module: Any) -> dict[str, Any]:
        def step(i: int) -> None:
            with autocast:
                module.train_iteration(batches[i % len(batches)])
            module.iteration += 1  # schedules read the counter; the Lightning path advances it in training_step

        for i in range(warmup):
            step(i)
        _sync()
        t0 = time.perf_counter()
        stamps = [t0]
        for i in range(iters):
            step(warmup + i)
            stamps.append(time.perf_counter())  # per-iteration times: true on CPU (no device to wait for)
        _sync()
        dt = time.perf_counter() - t0
        out: dict[str, Any] = {"floor_s_per_iter": dt / iters, "floor_images_per_s": int(cfg.data.batch_size) * iters / dt,
                               "_iteration_s": [b - a for a, b in zip(stamps, stamps[1:])]}
        if flops:
            # Methods with n_critic > 1 (StarGAN, SPM) do different work per iteration: average one full cycle.
            cycle = max(int(module.hparams.get("n_critic", 1) or 1), 1)
            start = module.iteration - module.iteration % cycle
            counts = []
            for i in range(cycle):
                module.iteration = start + i
                counts.append(count_flops(module, batches[i % len(batches)], autocast))
            out["flop_per_iter"] = sum(counts) / cycle
        return out

    loop = PlainLoop(measure)
    trainer = pl.Trainer(accelerator=device.type if device.type == "cpu" else "gpu", devices=1, logger=False,
                         callbacks=[loop], enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, num_sanity_val_steps=0, limit_val_batches=0, max_epochs=1)
    trainer.fit(module, train_dataloaders=batches)
    return loop.result


class _GlobalOnly:
    parents: ClassVar[set[str]] = {"Global"}

    def __enter__(self) -> _GlobalOnly:
        return self

    def __exit__(self, *exc: Any) -> None:
        return None


def count_flops(module: Any, batch: dict, autocast: Any = None) -> float:
    """FLOP of one ``train_iteration`` (forward, backward and optimizer math as counted by FlopCounterMode:
    matmuls and convolutions, 2 FLOP per multiply-add)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    # Global total only: the per-module tracker's backward hooks break autograd.grad (WGAN-GP, R1 penalties).
    counter.mod_tracker = _GlobalOnly()
    with counter, (autocast or contextlib.nullcontext()):
        module.train_iteration(batch)
    return float(counter.get_total_flops())


def bench_method(method: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    from suite.training import build_datamodule

    # One iteration more than measured: the last one may do end-of-training work inside training_step (disent
    # stores its expected embeddings there), which is not per-iteration cost.
    iterations = args.warmup + args.iters + 1
    speed = [f"speed.channels_last={str(args.channels_last).lower()}", f"speed.compile={args.compile or 'false'}",
             f"speed.matmul_precision={args.matmul_precision}"]
    if args.compile_mode:
        speed.append(f"speed.compile_mode={args.compile_mode}")
    batch = [f"data.batch_size={args.batch_size}"] if args.batch_size else []
    cfg = compose(method, paper=args.paper, run_dir=workdir / method, iterations=iterations, precision=args.precision,
                  extra=[*speed, *batch, *args.override])
    row: dict[str, Any] = {
        "method": method,
        "scale": "paper" if args.paper else "synth",
        "image_size": int(cfg.data.image_size),
        "batch_size": int(cfg.data.batch_size),
        "precision": args.precision,
        "channels_last": args.channels_last,
        "compile": args.compile,
        "compile_mode": args.compile_mode,
        "matmul_precision": args.matmul_precision,
    }
    datamodule = build_datamodule(cfg, cfg.method.view)
    datamodule.setup("fit")
    want_flops = args.flops or torch.cuda.is_available()

    def lightning_run() -> dict[str, Any]:
        gc.collect()  # the previous run's trainer and module (reference cycles) before this one allocates
        out = bench_lightning(cfg, args.warmup, args.iters)
        out.pop("_result")
        return out

    def floor_run() -> dict[str, Any]:
        gc.collect()  # likewise before the plain loop
        return bench_floor(cfg, datamodule, args.warmup, args.iters, want_flops and not pairs)

    def strip(part: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in part.items() if not k.startswith("_")}

    if args.skip_floor:
        row.update(strip(lightning_run()))
        row.update(bench_loader(datamodule, args.iters, min(args.warmup, 1)))
        if want_flops:  # MFU without timing the plain loop: one eager iteration under the FLOP counter
            eager = cfg.copy()
            eager.speed.compile = False
            floor = bench_floor(eager, datamodule, 1, 1, True)
            row["flop_per_iter"] = floor["flop_per_iter"]
    else:
        # --repeats pairs of (Lightning path, plain loop), the order flipped every pair so neither side always runs
        # first; the overhead is the median of the pairs' ratios (one pair's ratio moves ±10 % on a shared VM).
        pairs = []
        for k in range(args.repeats):
            first_lightning = k % 2 == 0
            light = lightning_run() if first_lightning else None
            floor = floor_run()
            light = light or lightning_run()
            pairs.append((light, floor))
        # from the first pair: the warm-up time (compilation included), peak memory and the FLOP count; the timings
        # are the pairs' medians below
        row.update({k: v for k, v in strip(pairs[0][0]).items() if not k.startswith("lightning_")})
        row.update({k: v for k, v in strip(pairs[0][1]).items() if not k.startswith("floor_")})
        row["lightning_s_per_iter"] = median([lt["lightning_s_per_iter"] for lt, _ in pairs])
        row["lightning_images_per_s"] = row["batch_size"] / row["lightning_s_per_iter"]
        row["floor_s_per_iter"] = median([fl["floor_s_per_iter"] for _, fl in pairs])
        row["floor_images_per_s"] = row["batch_size"] / row["floor_s_per_iter"]
        row.update(bench_loader(datamodule, args.iters, min(args.warmup, 1)))
        ratios = [lt["lightning_s_per_iter"] / fl["floor_s_per_iter"] for lt, fl in pairs]
        ratios_ex = [(lt["lightning_s_per_iter"] - row["loader_s_per_batch"]) / fl["floor_s_per_iter"] for lt, fl in pairs]
        row["overhead"], row["overhead_ex_data"] = median(ratios), median(ratios_ex)
        if len(pairs) > 1:
            row["overhead_pairs"] = [round(r, 4) for r in ratios]
        if not torch.cuda.is_available():
            # The median iteration of each side (robust to the odd slow iteration of a shared VM; with n_critic > 1
            # both sides measure the same iteration indices, so the medians compare like with like).
            row["overhead_median_iteration"] = median(
                [median(lt["_iteration_s"]) / median(fl["_iteration_s"]) for lt, fl in pairs])
            # Within each Lightning iteration: its interval ÷ its own train_iteration call (no drift between runs).
            spans = [(total, own) for lt, _ in pairs for total, own in zip(lt["_iteration_s"], lt["_inside_s"])]
            row["overhead_within_iteration"] = median([total / own for total, own in spans])
            row["lightning_outside_ms"] = 1e3 * median([total - own for total, own in spans])
    if "flop_per_iter" in row:
        row["achieved_tflops"] = row["flop_per_iter"] / row["lightning_s_per_iter"] / 1e12
        if args.peak_tflops:
            row["mfu"] = row["achieved_tflops"] / args.peak_tflops
    return row


# ---------------------------------------------------------------------------------------------- output
COLUMNS = [
    ("method", "method", "{}"),
    ("size", "image_size", "{}"),
    ("batch", "batch_size", "{}"),
    ("Lightning s/iter", "lightning_s_per_iter", "{:.4g}"),
    ("Lightning img/s", "lightning_images_per_s", "{:.3g}"),
    ("warm-up s (compile incl.)", "warmup_s", "{:.1f}"),
    ("floor s/iter", "floor_s_per_iter", "{:.4g}"),
    ("overhead", "overhead", "{:.3f}"),
    ("overhead ex data", "overhead_ex_data", "{:.3f}"),
    ("overhead per pair", "overhead_pairs", "{}"),
    ("overhead, median iteration", "overhead_median_iteration", "{:.3f}"),
    ("overhead within iteration", "overhead_within_iteration", "{:.3f}"),
    ("outside train_iteration ms", "lightning_outside_ms", "{:.1f}"),
    ("loader img/s", "loader_images_per_s", "{:.0f}"),
    ("peak RSS MiB", "peak_rss_mib", "{:.0f}"),
    ("GPU max alloc MiB", "gpu_max_allocated_mib", "{:.0f}"),
    ("GFLOP/iter", "flop_per_iter", "{:.2f}"),
    ("TFLOP/s", "achieved_tflops", "{:.2f}"),
    ("MFU", "mfu", "{:.1%}"),
    ("error", "error", "{}"),
]


def table(rows: list[dict[str, Any]], columns: list[tuple[str, str, str]] = COLUMNS) -> list[str]:
    """The markdown table of benchmark rows: the ``(title, key, format)`` columns that some row has, "–" where a row
    has none (FLOP in GFLOP)."""
    cols = [c for c in columns if any(c[1] in r for r in rows)] or columns[:2]
    lines = ["| " + " | ".join(c[0] for c in cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for r in rows:
        cells = ["–" if r.get(k) is None else fmt.format(r[k] / 1e9 if k == "flop_per_iter" else r[k]) for _t, k, fmt in cols]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def markdown(results: dict[str, Any]) -> str:
    lines = [
        f"# Training benchmark ({results['setting']})",
        "",
        f"device: {results['device']}; torch {results['torch']}; threads {results['threads']}; "
        f"precision {results['precision']}; channels_last {results.get('channels_last', False)}; "
        f"compile {results.get('compile', False)}; warm-up {results['warmup']}, measured {results['iters']} iterations"
        f"{'' if results.get('repeats', 1) == 1 else ', ' + str(results['repeats']) + ' repeats (medians)'}.",
        "",
        "overhead = Lightning s/iter ÷ floor s/iter (goal ≤ 1.05); 'ex data' subtracts the loader's time per batch.",
        "Timings are noisy on a shared or loaded machine: compare only runs taken on the same idle device.",
        "",
        *table(results["rows"]),
    ]
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m suite.bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    p.add_argument("--iters", type=int, default=10, help="measured iterations (after warm-up)")
    p.add_argument("--warmup", type=int, default=3, help="iterations run before timing starts")
    p.add_argument("--paper", action="store_true", help="paper resolution and batch size (scale=paper) instead of 32 px, batch 8")
    p.add_argument("--precision", default="32-true", help="trainer.precision: 32-true | bf16-mixed | 16-mixed")
    p.add_argument("--channels-last", action="store_true", help="module and image batches in channels_last memory format")
    p.add_argument("--compile", nargs="?", const="nets", default=None, choices=("nets", "steps"),
                   help="torch.compile: nets = the generator networks (the default of a bare --compile), steps = each "
                        "optimizer step's closure (forward passes and losses)")
    p.add_argument("--compile-mode", default=None, help="speed.compile_mode: reduce-overhead (CUDA graphs) | max-autotune")
    p.add_argument("--matmul-precision", default="high", choices=("highest", "high", "medium"),
                   help="speed.matmul_precision on CUDA: highest = true fp32, high = TF32 (the default)")
    p.add_argument("--batch-size", type=int, default=None, help="batch size instead of the setting's")
    p.add_argument("--flops", action="store_true", help="count FLOP per iteration also without CUDA")
    p.add_argument("--peak-tflops", type=float, default=None, help="device peak TFLOP/s for MFU (default: table by GPU name)")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    p.add_argument("--out", type=Path, default=Path("bench_results"), help="writes <out>/train.json and train.md")
    p.add_argument("--repeats", type=int, default=1,
                   help="pairs of (Lightning path, plain loop) runs, order alternating; medians are reported")
    p.add_argument("--skip-floor", action="store_true", help="time the Lightning path only (no plain loop, no FLOP count)")
    p.add_argument("--keep-going", action="store_true", help="record a failing method's error and go on with the next")
    p.add_argument("--override", nargs="*", default=[], help="extra Hydra overrides for every method (e.g. data.num_workers=4)")
    args = p.parse_args(argv)
    if args.repeats < 1:
        p.error("--repeats must be ≥ 1")
    if args.iters < 1 or args.warmup < 1:
        p.error("--iters and --warmup must be ≥ 1 (the first iteration pays for lazy initialisation)")
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    warnings.filterwarnings("ignore")
    os.environ.setdefault("WANDB_MODE", "disabled")
    if args.threads:
        torch.set_num_threads(args.threads)
    import logging

    for name in ("pytorch_lightning", "lightning", "lightning.pytorch", "lightning_fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"
    if args.peak_tflops is None and torch.cuda.is_available():
        args.peak_tflops = peak_tflops(device)
    rows: list[dict[str, Any]] = []
    results = {
        "setting": "paper resolution and batch" if args.paper else "synth scale, 32 px, batch 8",
        "device": device,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "precision": args.precision,
        "channels_last": args.channels_last,
        "compile": args.compile,
        "warmup": args.warmup,
        "iters": args.iters,
        "repeats": args.repeats,
        "peak_tflops": args.peak_tflops,
        "note": "timings are noisy on a shared or loaded machine; compare only runs on the same idle device",
        "rows": rows,
    }
    args.out.mkdir(parents=True, exist_ok=True)

    def write() -> None:  # after every method, so a run cut short keeps the rows it finished
        (args.out / "train.json").write_text(json.dumps(results, indent=2))
        (args.out / "train.md").write_text(markdown(results))

    with tempfile.TemporaryDirectory(prefix="facetrans_bench_") as tmp:
        os.environ.setdefault("FACETRANS_CACHE", str(Path(tmp) / "cache"))
        for method in args.methods:
            try:
                row = bench_method(method, args, Path(tmp))
            except KeyboardInterrupt as exc:  # a signal (Ctrl-C, `timeout`): keep what was measured and stop
                print(f"{method:9s} stopped: {exc}; the methods before it are in {args.out}", flush=True)
                break
            except Exception as exc:  # one method's failure (e.g. a compile error) must not lose the others' rows
                if not args.keep_going:
                    raise
                rows.append({"method": method, "error": f"{type(exc).__name__}: {exc}"[:500]})
                print(f"{method:9s} FAILED: {rows[-1]['error']}", flush=True)
                write()
                continue
            finally:
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
            rows.append(row)
            write()
            floor = (
                f"floor {row['floor_s_per_iter']:.4f} s/iter  overhead {row['overhead']:.3f} (ex data {row['overhead_ex_data']:.3f})  "
                if "floor_s_per_iter" in row else ""
            )
            if "overhead_within_iteration" in row:
                floor += (f"within iteration {row['overhead_within_iteration']:.3f} "
                          f"({row['lightning_outside_ms']:.1f} ms outside train_iteration)  ")
            print(
                f"{method:9s} lightning {row['lightning_s_per_iter']:.4f} s/iter ({row['lightning_images_per_s']:.1f} img/s)  "
                f"{floor}loader {row['loader_images_per_s']:.0f} img/s  peak RSS {row['peak_rss_mib']:.0f} MiB",
                flush=True,
            )
    print(markdown(results))
    print(f"wrote {args.out / 'train.json'} and {args.out / 'train.md'}")
    return results


if __name__ == "__main__":
    main()
