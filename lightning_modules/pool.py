"""Image history pool (Shrivastava et al.; CycleGAN/AGGAN: 50 images) with checkpointable state."""

from __future__ import annotations

import torch


class ImagePool:
    """Returns, for each incoming fake, either the fake itself or (with probability ½ once the pool is full) an
    older fake that it replaces. Size 0 disables the pool. Its random draws come from its own generator, whose
    state is checkpointed with the stored images so that a resumed run draws what an uninterrupted one would."""

    def __init__(self, size: int, seed: int = 0) -> None:
        if size < 0:
            raise ValueError(f"pool size must be >= 0, got {size}")
        self.size = size
        self.images: list[torch.Tensor] = []
        self.generator = torch.Generator().manual_seed(seed)

    def query(self, images: torch.Tensor) -> torch.Tensor:
        """images: B×C×H×W (detached here). Returns a B×C×H×W batch drawn as described above."""
        images = images.detach()
        if self.size == 0:
            return images
        out = []
        for image in images:
            image = image.unsqueeze(0)
            if len(self.images) < self.size:
                self.images.append(image.clone())
                out.append(image)
            elif torch.rand(1, generator=self.generator).item() < 0.5:
                idx = int(torch.randint(len(self.images), (1,), generator=self.generator).item())
                out.append(self.images[idx].to(image.device, image.dtype))
                self.images[idx] = image.clone()
            else:
                out.append(image)
        return torch.cat(out, 0)

    def state_dict(self) -> dict:
        stored = torch.cat(self.images, 0).cpu() if self.images else torch.empty(0)
        return {"size": self.size, "images": stored, "rng": self.generator.get_state()}

    def load_state_dict(self, state: dict, device: torch.device | None = None) -> None:
        self.size = int(state["size"])
        stored = state["images"]
        self.images = [img.unsqueeze(0).to(device) if device else img.unsqueeze(0) for img in stored] if stored.numel() else []
        self.generator.set_state(state["rng"])
