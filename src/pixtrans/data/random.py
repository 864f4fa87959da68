"""Random in-memory datasets shaped like the real ones: what benchmarks and tests train on when
the point is the compute, not a dataset on disk."""

from __future__ import annotations

import torch


class RandomPairs(torch.utils.data.Dataset):
    """`n` (input, target) image pairs of `size` x `size`, uniform in [-1, 1]."""

    def __init__(self, n: int, input_nc: int, output_nc: int, size: int, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        self.a = torch.rand(n, input_nc, size, size, generator=g) * 2 - 1
        self.b = torch.rand(n, output_nc, size, size, generator=g) * 2 - 1

    def __len__(self) -> int:
        return len(self.a)

    def __getitem__(self, key):
        i = key[0] if isinstance(key, tuple) else key
        return {"real_a": self.a[i], "real_b": self.b[i], "index": i}


class RandomLabels(torch.utils.data.Dataset):
    """pix2pixHD-shaped items of `height` x `width`: a block label map (or, with label_nc=0, an
    input image), Cityscapes-style instance ids (class * 1000 + k) and a photo."""

    def __init__(
        self,
        n: int,
        label_nc: int,
        height: int,
        width: int,
        *,
        instance: bool = True,
        input_nc: int = 3,
        output_nc: int = 3,
        seed: int = 0,
        block: int = 16,
    ):
        g = torch.Generator().manual_seed(seed)
        hb, wb = -(-height // block), -(-width // block)
        blocks = torch.randint(0, max(label_nc, 1), (n, 1, hb, wb), generator=g)
        label = blocks.repeat_interleave(block, 2).repeat_interleave(block, 3)[..., :height, :width]
        self.items: dict[str, torch.Tensor] = {}
        if label_nc > 0:
            self.items["label"] = label
        else:
            self.items["real_a"] = torch.rand(n, input_nc, height, width, generator=g) * 2 - 1
        if instance:
            self.items["inst"] = (label * 1000 + torch.randint(0, 3, label.shape, generator=g)).int()
        self.items["real_b"] = torch.rand(n, output_nc, height, width, generator=g) * 2 - 1

    def __len__(self) -> int:
        return len(self.items["real_b"])

    def __getitem__(self, key):
        i = key[0] if isinstance(key, tuple) else key
        return {**{k: v[i] for k, v in self.items.items()}, "index": i}
