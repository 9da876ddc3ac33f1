"""How much memory the streaming FID/KID of metrics/fid.py needs for a large evaluation (10,000 images).

Streams ``--images`` random images (real and as many fake, ``--size`` px, ``--batch-size`` at a time, as
evaluate.py does) through :class:`metrics.fid.FidKid` on an evaluation classifier's features, then computes FID
and KID, and prints the peak resident memory of the process (``resource.getrusage``) before, during and after,
and the bytes the metrics keep: FID's sums (d and d×d per side, float64) and KID's feature rows (N×d per
side). Images are never kept, so the figure should not grow with N beyond KID's rows. The classifier is
untrained (random weights): memory does not depend on what it learned.

    OMP_NUM_THREADS=1 .venv/bin/python scripts/fid_memory.py [--images 10000] [--arch small|resnet18]
"""

from __future__ import annotations

import argparse
import time

import torch

from metrics.eval_classifier import build_classifier
from metrics.fid import ClassifierFeatures, FidKid
from suite.bench import peak_memory


def peak_rss_mib() -> float:
    return peak_memory()["peak_rss_mib"]


def tensor_mib(*tensors: torch.Tensor) -> float:
    return sum(t.numel() * t.element_size() for t in tensors) / 2**20


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=10_000, help="real images, and as many fake ones")
    parser.add_argument("--size", type=int, default=32, help="image side in px")
    parser.add_argument("--batch-size", type=int, default=250)
    parser.add_argument("--arch", default="small", choices=("small", "resnet18"), help="evaluation classifier")
    parser.add_argument("--no-kid", action="store_true", help="FID only (KID keeps every feature row)")
    args = parser.parse_args(argv)

    torch.manual_seed(0)
    extractor = ClassifierFeatures(build_classifier(args.arch, 2, args.size))
    metric = FidKid(extractor, "classifier", kid=not args.no_kid)
    start = peak_rss_mib()
    t0 = time.perf_counter()
    g = torch.Generator().manual_seed(0)
    done = 0
    while done < args.images:
        n = min(args.batch_size, args.images - done)
        metric.update_real(torch.rand(n, 3, args.size, args.size, generator=g) * 2 - 1)
        metric.update_fake(torch.rand(n, 3, args.size, args.size, generator=g) * 1.6 - 0.8)
        done += n
    streamed = peak_rss_mib()
    t1 = time.perf_counter()
    result = metric.compute()
    t2 = time.perf_counter()
    computed = peak_rss_mib()

    fid = metric.fid
    fid_state = tensor_mib(fid.real_features_sum, fid.real_features_cov_sum, fid.fake_features_sum,
                           fid.fake_features_cov_sum)
    kid_rows = 0.0 if metric.kid is None else tensor_mib(*metric.kid.real_features, *metric.kid.fake_features)
    d = extractor.num_features
    report = {
        "images_per_side": float(metric.num_real),
        "feature_dim": float(d),
        "fid_state_mib": fid_state,
        "kid_rows_mib": kid_rows,
        "peak_rss_before_mib": start,
        "peak_rss_streamed_mib": streamed,
        "peak_rss_after_compute_mib": computed,
        "stream_s": t1 - t0,
        "compute_s": t2 - t1,
        **result,
    }
    print(f"{metric.num_real} real + {metric.num_fake} fake {args.size}px images, {args.arch} classifier "
          f"features (d={d}), batches of {args.batch_size}, torch threads {torch.get_num_threads()}")
    print(f"  FID sums (float64, d + d×d per side): {fid_state:.2f} MiB")
    print(f"  KID feature rows (float64, N×d per side): {kid_rows:.2f} MiB")
    print(f"  peak RSS: {start:.0f} MiB before streaming, {streamed:.0f} MiB after streaming, "
          f"{computed:.0f} MiB after compute")
    print(f"  time: {t1 - t0:.1f} s streaming, {t2 - t1:.1f} s compute")
    print("  " + ", ".join(f"{k} {v:.4g}" for k, v in result.items()))
    return report


if __name__ == "__main__":
    main()
