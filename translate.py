"""Translate your own images with a trained checkpoint.

    python translate.py --ckpt <run>/checkpoints/last.ckpt --input face.jpg|folder/ --target happy --out out/
    python translate.py --ckpt bridge.ckpt --input face.jpg --target Smiling=1,Eyeglasses=0 --out out/
    python translate.py --ckpt disent.ckpt --input face.jpg --reference ref.jpg --out out/
    python translate.py --ckpt smiling.ckpt --ckpt eyebrows.ckpt --input faces/ --out out/   # SPM Fig. 7: fields added

Applies the training crop/resize, writes ``<out>/<name>.png`` and masks/flows as ``<name>_<key>.png``.
Errors the user can fix print one sentence and exit with status 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ckpt", required=True, action="append",
                        help="a checkpoint written by train.py; several SPM checkpoints combine their motion fields")
    parser.add_argument("--input", required=True, help="an image file or a folder of images")
    parser.add_argument("--target", default=None, help="domain name/index, or Name=0|1,… for attribute methods")
    parser.add_argument("--reference", default=None, help="a reference image (reference-based methods)")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)

    from omegaconf import OmegaConf

    from suite.errors import SuiteError
    from suite.inference import (
        list_images,
        load_image,
        load_module,
        make_preprocess,
        parse_target,
        save_outputs,
        translate_batch,
    )

    try:
        if len(args.ckpt) > 1:
            from lightning_modules.spm_combine import translate_files

            for written in translate_files(args.ckpt, args.input, Path(args.out), args.device):
                print(written)
            return 0
        module, ckpt = load_module(args.ckpt[0], args.device)
        info = ckpt["suite"]["data_info"]
        run_cfg = OmegaConf.create(ckpt["suite"]["config"])
        view = info.get("view") or run_cfg.method.view
        preprocess = make_preprocess(run_cfg, info)
        images = list_images(args.input)
        reference = None
        if args.reference:
            reference = load_image(Path(args.reference), preprocess).to(args.device)
            target = None
        else:
            target = parse_target(args.target, info, view)
        out_dir = Path(args.out)
        out_dir.mkdir(parents=True, exist_ok=True)
        with torch.no_grad():
            for path in images:
                image = load_image(path, preprocess).to(args.device)
                out = translate_batch(module, image, target, reference)
                for written in save_outputs(out, out_dir, path.stem):
                    print(written)
    except SuiteError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
