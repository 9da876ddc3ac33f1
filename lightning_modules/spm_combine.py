"""SPM's motion-basis combination across separately trained models (Sec. 4.1, Fig. 7).

On CelebA every attribute is its own two-domain model (M_s smiling, M_e arched eyebrows, M_n pointy nose); Fig. 7
adds their motion fields: ``w = Σ_k a_k·w_k(I_s)``, each ``w_k`` from model k's G translating to its attribute,
and warps the input once, ``I_d = warp(I_s, w)`` (Eq. 1). The paper shows these deformed images; the refinements
are composed here in the models' order, each model's R on the running image blended by its own mask:
``I ← clamp(I + R_k(I)·m_k, −1, 1)`` starting from I_d **[inferred]** — one model's R and mask as in Sec. 3.2.

Every model must be an LR-stage SPM with the motion module (``method=spm``) at the same image size. Targets are
each model's domain index (default 1: the attribute present, ``a2b``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torchvision.utils import save_image

from lightning_modules.samples import flow_to_rgb
from nets.spm import warp
from suite.errors import ConfigError


def check_models(modules: Sequence) -> int:
    """The common image size of ``modules``; ConfigError (one sentence) when they cannot be combined."""
    if len(modules) < 2:
        raise ConfigError("a motion combination needs at least two SPM checkpoints (--ckpt a.ckpt --ckpt b.ckpt).")
    sizes = set()
    for m in modules:
        if getattr(m, "method_name", None) != "spm" or not getattr(m, "use_motion", False) or m.hr_stage:
            raise ConfigError(f"motion fields combine only LR-stage SPM models with the motion module; got "
                              f"method={getattr(m, 'method_name', type(m).__name__)}.")
        sizes.add(m.image_size)
    if len(sizes) > 1:
        raise ConfigError(f"the SPM models to combine were trained at different sizes ({sorted(sizes)}); use one size.")
    return sizes.pop()


@torch.no_grad()
def combine(modules: Sequence, images: torch.Tensor, targets: Sequence[int] | None = None,
            weights: Sequence[float] | None = None) -> dict[str, torch.Tensor]:
    """images B×3×S×S in [−1, 1] → ``image`` (refinements composed), ``deformed`` (one warp by the summed field),
    ``flow`` (the sum), and per model k ``deformed_k`` / ``flow_k`` (its basis alone)."""
    check_models(modules)
    targets = list(targets) if targets is not None else [1] * len(modules)
    weights = list(weights) if weights is not None else [1.0] * len(modules)
    if len(targets) != len(modules) or len(weights) != len(modules):
        raise ConfigError(f"give one target and one weight per model ({len(modules)}), got {len(targets)} and {len(weights)}.")
    out: dict[str, torch.Tensor] = {}
    flow, parts = torch.zeros_like(images[:, :2]), []
    for k, (m, t, a) in enumerate(zip(modules, targets, weights, strict=True)):
        c = m.encode_target(t, images.shape[0], images.device, images.dtype)
        w, mask = m.motion_basis(images, c)
        flow = flow + a * w
        parts.append((m, c, mask))
        out[f"flow_{k}"], out[f"deformed_{k}"] = w, warp(images, w)
    image = deformed = warp(images, flow)
    for m, c, mask in parts:
        G = m.inference_net("G")
        if G.refiner is not None:
            image = (image + G.refine(image, c) * mask).clamp(-1, 1)
    out.update(image=image, deformed=deformed, flow=flow)
    return out


def save_combination_grid(path: str | Path, out: dict[str, torch.Tensor], images: torch.Tensor,
                          names: Sequence[str]) -> Path:
    """Fig. 7 as a grid, one row per image: input | each model's deformed result | the fields added and warped
    once | composed refinements | each flow and the summed flow (colour-coded). Titles go to ``<path>.txt``."""
    k = len(names)
    cols = [images, *(out[f"deformed_{i}"] for i in range(k)), out["deformed"], out["image"],
            *(flow_to_rgb(out[f"flow_{i}"].float()) * 2 - 1 for i in range(k)), flow_to_rgb(out["flow"].float()) * 2 - 1]
    rows = torch.stack([c.float().cpu().clamp(-1, 1) for c in cols], 1).flatten(0, 1)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_image((rows + 1) / 2, path, nrow=len(cols), padding=1)
    combo = "+".join(names)
    path.with_suffix(".txt").write_text(
        "columns: input | " + " | ".join(names) + f" | {combo} (fields added, warped once) | {combo} refined | "
        + " | ".join(f"flow {n}" for n in names) + f" | flow {combo}\n")
    return path


def translate_files(ckpt_paths: Sequence[str], input_path: str, out_dir: Path, device: str = "cpu") -> list[Path]:
    """``translate.py --ckpt a --ckpt b …``: each input image through the combination (``<stem>.png`` and its
    ``_deformed``/``_flow`` outputs) and all of them as one grid, ``<out_dir>/motion_combination.png``."""
    from omegaconf import OmegaConf

    from suite.inference import list_images, load_image, load_module, make_preprocess, save_outputs

    loaded = [load_module(p, device) for p in ckpt_paths]
    modules = [m for m, _ in loaded]
    check_models(modules)
    first = loaded[0][1]["suite"]
    preprocess = make_preprocess(OmegaConf.create(first["config"]), first["data_info"])
    out_dir.mkdir(parents=True, exist_ok=True)
    written, inputs, outs = [], [], []
    for path in list_images(input_path):
        image = load_image(path, preprocess).to(device)
        out = combine(modules, image)
        written += save_outputs({k: out[k] for k in ("image", "deformed", "flow")}, out_dir, path.stem)
        inputs.append(image)
        outs.append(out)
    names = [m.data_info.get("domain_names", ["?", f"model {i}"])[-1] for i, m in enumerate(modules)]
    merged = {k: torch.cat([o[k] for o in outs]) for k in outs[0]}
    written.append(save_combination_grid(out_dir / "motion_combination.png", merged, torch.cat(inputs), names))
    return written
