"""Loading speed of the datamodules: ``python -m datamodules.bench`` (the real datasets' loaders) and
``python -m datamodules.bench --embedded [--loader]`` (the embedded data's rendering; both run by ``make bench``).

Each datamodule reads a generated fixture in its official layout at the real image size (CelebA 178×218 JPEG,
CelebA-HQ 1024² JPEG, Multi-PIE 640×480 PNG, BU-3DFE 512² BMP, AFHQ 512² JPEG, folders 256² JPEG — smooth
random pictures, with grain where the files are large, written by :mod:`datamodules.fake_layouts` into a
temporary folder), and ``afhq-real`` reads
the 43 real AFHQ photographs in ``../shared/realdata/afhq`` (``--afhq DIR`` elsewhere). ``…+cache`` reads
through ``data.cache_dir``, image by image without the loader: ``decode`` (no cache), ``fill`` (decode and
store), ``read`` (from the cache) over every train image. Views: the
default of each (two_domain; Multi-PIE multi_factor; BU-3DFE multi_domain with paired ground truth).

It reports items per second through the train loader (one item = the source image, its reference and, for
BU-3DFE, its ground truth: 2 or 3 files decoded, cropped and resized), after one warm-up batch. Numbers depend
on the CPU and the disk; use ``--workers`` to see the loader processes' effect (the datamodules default to 4).

``--embedded`` prints the rendering throughput of synthfaces and shapes per resolution in this process (images
per wall-clock second and per CPU second); with ``--loader`` also the synthfaces train loader's items per second
in the first epoch and in a cached one, per view.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
REAL_AFHQ = REPO.parent / "shared" / "realdata" / "afhq"
GRAIN = 6.0  # grey levels of noise in the large fixtures, so their files weigh and decode like photographs
NAMES = ("celeba", "celeba_hq", "celeba_hq+cache", "multipie", "multipie+cache", "bu3dfe", "afhq", "folder", "afhq-real")


def _builders(tmp: Path, afhq_dir: Path, cache_format: str = "npy") -> dict[str, Callable[[dict], Any]]:
    """name → a function of the loader settings returning the datamodule (writing its fixture first)."""
    from datamodules import fake_layouts as fx
    from datamodules.afhq import AFHQDataModule
    from datamodules.bu3dfe import BU3DFEDataModule
    from datamodules.celeba import CelebADataModule
    from datamodules.celeba_hq import CelebAHQDataModule
    from datamodules.folder import FolderDataModule
    from datamodules.multipie import MultiPIEDataModule

    def celeba(kw):
        fx.write_celeba(tmp / "celeba", n=96)
        return CelebADataModule(root=str(tmp / "celeba"), test_size=16, **kw)

    def celeba_hq(kw, cache=None):
        if not (tmp / "hq").is_dir():
            fx.write_celeba_hq(tmp / "hq", n=48, size=1024, noise=GRAIN)
        return CelebAHQDataModule(root=str(tmp / "hq"), test_size=8, cache_dir=cache, cache_format=cache_format, **kw)

    def multipie(kw, cache=None):
        if not (tmp / "multipie").is_dir():
            fx.write_multipie(tmp / "multipie", subjects=tuple(range(1, 13)), cameras=("05_1",), size=(640, 480), noise=GRAIN)
        return MultiPIEDataModule(root=str(tmp / "multipie"), cache_dir=cache, cache_format=cache_format, **kw)

    def bu3dfe(kw):
        fx.write_bu3dfe(tmp / "bu3dfe", subjects=fx.BU3DFE_SUBJECTS[:2] + fx.BU3DFE_SUBJECTS[6:8], size=512)
        return BU3DFEDataModule(view="multi_domain", protocol="disent", root=str(tmp / "bu3dfe"), test_subjects=1, **kw)

    def afhq(kw):
        return AFHQDataModule(root=str(fx.write_afhq(tmp / "afhq", train=24, test=2, size=512, noise=GRAIN)), **kw)

    def folder(kw):
        return FolderDataModule(root=str(fx.write_cyclegan(tmp / "folder", train=48, test=2, size=256)), **kw)

    def afhq_real(kw):
        if not (afhq_dir / "train").is_dir():
            raise SystemExit(f"the real AFHQ photographs are not at {afhq_dir} (pass --afhq DIR)")
        return AFHQDataModule(view="multi_domain", root=str(afhq_dir), **kw)

    return {
        "celeba": celeba,
        "celeba_hq": celeba_hq,
        "celeba_hq+cache": lambda kw: celeba_hq(kw, cache=str(tmp / "cache")),
        "multipie": multipie,
        "multipie+cache": lambda kw: multipie(kw, cache=str(tmp / "cache")),
        "bu3dfe": bu3dfe,
        "afhq": afhq,
        "folder": folder,
        "afhq-real": afhq_real,
    }


def _measure(dm, batches: int) -> tuple[int, float]:
    """(items, seconds) for ``batches`` train batches after one warm-up batch (epochs repeat as needed)."""
    loader = dm.train_dataloader()
    items, start, seen = 0, None, 0
    while seen <= batches:
        for batch in loader:
            if start is None:
                start = time.perf_counter()
            else:
                items += batch["image"].shape[0]
            seen += 1
            if seen > batches:
                break
    return items, time.perf_counter() - start


def _cache_passes(dm) -> list[tuple[str, int, float]]:
    """Per image, without the loader: ``decode`` (no cache), ``fill`` (decode and store), ``read`` (from the
    cache) over every train image."""
    paths = sorted({r.path for r in dm.dataset("train").records})
    out = []
    for label, fn in (("decode", dm.preprocess.base), ("fill", dm.preprocess), ("read", dm.preprocess)):
        start = time.perf_counter()
        for path in paths:
            fn(path)
        out.append((label, len(paths), time.perf_counter() - start))
    return out


def run(names: Sequence[str] = NAMES, *, batches: int = 8, batch_size: int = 16, workers: int = 0,
        image_size: int = 128, afhq_dir: Path | str = REAL_AFHQ, cache_format: str = "npy") -> list[dict[str, Any]]:
    """Benchmark the named datamodules; one row per measurement: data, pass, images, seconds, images_per_s."""
    rows = []
    kw = {"image_size": image_size, "batch_size": batch_size, "num_workers": workers}
    with tempfile.TemporaryDirectory(prefix="facetrans-bench-") as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        builders = _builders(Path(tmp), Path(afhq_dir), cache_format)
        for name in names:
            if name not in builders:
                raise SystemExit(f"unknown datamodule {name!r}; choose from {', '.join(NAMES)}")
            dm = builders[name](dict(kw))
            passes = _cache_passes(dm) if name.endswith("+cache") else [("", *_measure(dm, batches))]
            for label, items, seconds in passes:
                rows.append({"data": name, "pass": label, "images": items, "seconds": seconds,
                             "images_per_s": items / seconds if seconds > 0 else float("inf")})
            dm.teardown()
    return rows


def render_rates(sizes: Sequence[int] = (32, 64, 128, 256), seconds: float = 2.0,
                 data: str = "synthfaces") -> dict[int, tuple[float, float]]:
    """Rendering throughput per resolution in this process, batches of 64: (images per wall-clock second,
    images per CPU second of this process — the figure that holds on a busy machine)."""
    from datamodules import shapes_render, synthfaces_render

    if data == "synthfaces":
        records, render = [synthfaces_render.sample_record(0, i) for i in range(256)], synthfaces_render.render_batch
    else:
        records, render = [shapes_render.sample_shape(0, i) for i in range(256)], shapes_render.render_shapes
    out = {}
    for size in sizes:
        render(records[:8], size)  # warm up: grids, noise bank
        done, k = 0, 0
        start, cpu = time.perf_counter(), time.process_time()
        while time.perf_counter() - start < seconds or done == 0:
            render([records[(k * 64 + j) % len(records)] for j in range(64)], size)
            done += 64
            k += 1
        out[int(size)] = (done / (time.perf_counter() - start), done / max(time.process_time() - cpu, 1e-9))
    return out


def loader_rates(view: str, size: int, batch_size: int = 16, n: int = 1024) -> tuple[float, float]:
    """Items per second of the synthfaces train loader: (first epoch, an epoch from the render cache)."""
    from datamodules.synthetic import SynthFacesDataModule

    dm = SynthFacesDataModule(view=view, image_size=size, train_size=n, batch_size=batch_size)
    dm.setup("fit")
    rates = []
    for _ in range(2):
        start = time.perf_counter()
        for _batch in dm.train_dataloader():
            pass
        rates.append(n / (time.perf_counter() - start))
    return rates[0], rates[1]


def embedded(data: str, sizes: Sequence[int], seconds: float, loader: bool) -> None:
    """Print the embedded data's rendering (and, with ``loader``, train loader) throughput."""
    import torch

    torch.set_num_threads(1)
    for name in ("synthfaces", "shapes") if data == "both" else (data,):
        for size, (wall, cpu) in render_rates(sizes, seconds, name).items():
            print(f"{name:10s} {size:4d} px  {wall:8.0f} images/s  ({cpu:.0f} per CPU second)")
    if loader:
        for view in ("two_domain", "multi_domain", "multi_attribute", "multi_factor"):
            first, cached = loader_rates(view, 64)
            print(f"loader {view:15s} 64 px  first epoch {first:7.0f} items/s  cached {cached:7.0f} items/s")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", nargs="+", default=list(NAMES), choices=NAMES)
    parser.add_argument("--batches", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--afhq", default=str(REAL_AFHQ), help="the real AFHQ photographs (v1 layout)")
    parser.add_argument("--cache-format", default="npy", choices=("png", "npy"))
    parser.add_argument("--embedded", nargs="?", const="both", choices=("synthfaces", "shapes", "both"),
                        help="time the embedded data's rendering instead (synthfaces, shapes or both)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 64, 128, 256], help="--embedded: resolutions")
    parser.add_argument("--seconds", type=float, default=2.0, help="--embedded: time per measurement")
    parser.add_argument("--loader", action="store_true", help="--embedded: also time the train loader per view")
    args = parser.parse_args(argv)
    if args.embedded:
        embedded(args.embedded, args.sizes, args.seconds, args.loader)
        return
    print(f"train loader, {args.image_size} px, batch {args.batch_size}, {args.workers} worker process(es), "
          f"{args.batches} batches after a warm-up batch")
    print(f"{'data':<18}{'pass':<6}{'images':>8}{'seconds':>10}{'images/s':>11}")
    for row in run(args.data, batches=args.batches, batch_size=args.batch_size, workers=args.workers,
                   image_size=args.image_size, afhq_dir=args.afhq, cache_format=args.cache_format):
        print(f"{row['data']:<18}{row['pass']:<6}{row['images']:>8}{row['seconds']:>10.2f}{row['images_per_s']:>11.1f}",
              flush=True)


if __name__ == "__main__":
    main()
