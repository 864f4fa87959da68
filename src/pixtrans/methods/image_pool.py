"""History of generated images for the discriminator (Shrivastava et al. 2017; CycleGAN §4).

D is updated on a mix of the newest fakes and fakes from earlier generators, which damps the
oscillation between G and D. Semantics of the official `util/image_pool.py`, per image of the
batch: while the pool holds fewer than `size` images, store the new one and return it; once full,
with probability 0.5 return a stored image chosen uniformly and put the new one in its place,
otherwise return the new one.

Randomness comes from torch's global RNG, which the training loop reseeds from (seed, rank, step)
before every step; with `state_dict()` in the checkpoint a resumed run draws the same images.
"""

from __future__ import annotations

from typing import Any

import torch


class ImagePool:
    def __init__(self, size: int = 50):
        if size < 0:
            raise ValueError(f"image pool size must be >= 0, got {size}")
        self.size = int(size)  # 0 = pass-through
        self.images: list[torch.Tensor] = []  # each [1, C, H, W], detached

    def __len__(self) -> int:
        return len(self.images)

    @torch.no_grad()
    def query(self, images: torch.Tensor) -> torch.Tensor:
        """images: (N, C, H, W) newest fakes -> (N, C, H, W) for D, detached, same layout."""
        if self.size == 0:
            return images.detach()
        out = []
        for image in images.detach().split(1):
            if len(self.images) < self.size:
                self.images.append(image.clone())  # own copy: the batch's storage may be reused
                out.append(image)
            elif torch.rand(()).item() > 0.5:
                k = int(torch.randint(0, self.size, ()).item())
                old = self.images[k].to(device=image.device, dtype=image.dtype)  # may come from a CPU load
                self.images[k] = image.clone()
                out.append(old)
            else:
                out.append(image)
        # same dtype, device and memory format as the input whatever the stored images are, so
        # the discriminator runs the same kernels before and after a resume
        result = torch.empty_like(images)
        result.copy_(torch.cat(out))
        return result

    def state_dict(self) -> dict[str, Any]:
        return {"size": self.size, "images": [t.detach().to("cpu", copy=True) for t in self.images]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        images = list(state.get("images", []))
        if len(images) > self.size:
            raise ValueError(f"image pool state holds {len(images)} images but the pool size is {self.size}")
        self.images = [t.detach().clone() for t in images]

    def __repr__(self) -> str:
        return f"ImagePool(size={self.size}, stored={len(self.images)})"
