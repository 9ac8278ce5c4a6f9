"""History buffer of generated images for the CycleGAN discriminators (Shrivastava et al. 2017; Zhu et al.
2017, Sec. 4 "we update the discriminators using a history of generated images rather than the ones
produced by the latest generators", buffer of 50).

Rule, per image of a query batch: while the pool holds fewer than ``size`` images, store the image and
return it. Once full, with probability 1/2 return a uniformly chosen stored image and store the new one in
its slot; otherwise return the new image and leave the pool unchanged. The draws come from the
torch.Generator passed to ``query`` (the training loop's checkpointed generator), and the contents go into
the checkpoint through ``state_dict``, so a resumed run continues exactly.
"""
from __future__ import annotations

import torch


class ImagePool:
    def __init__(self, size: int):
        if size < 0:
            raise ValueError(f"image pool size must be >= 0, got {size}")
        self.size = size
        self.images: list[torch.Tensor] = []

    def __len__(self) -> int:
        return len(self.images)

    @torch.no_grad()
    def query(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """images (N, C, H, W) -> (N, C, H, W): each row the new image or a stored one (see module doc)."""
        if self.size == 0:
            return images.detach()
        out = []
        for img in images.detach():
            if len(self.images) < self.size:
                self.images.append(img.clone())
                out.append(img)
            elif torch.rand((), generator=generator).item() < 0.5:
                slot = int(torch.randint(0, self.size, (), generator=generator))
                out.append(self.images[slot].to(img.device))
                self.images[slot] = img.clone()
            else:
                out.append(img)
        return torch.stack(out)

    def state_dict(self) -> dict:
        """{'images': (n, C, H, W) CPU tensor of the stored images, in slot order (n = 0: empty (0,))}."""
        imgs = torch.stack([i.detach().cpu() for i in self.images]) if self.images else torch.zeros(0)
        return {"images": imgs}

    def load_state_dict(self, state: dict) -> None:
        imgs = state.get("images")
        if imgs is None or imgs.numel() == 0:
            self.images = []
            return
        if imgs.shape[0] > self.size:
            raise ValueError(f"image pool state holds {imgs.shape[0]} images, more than its size {self.size}")
        self.images = [i.clone() for i in imgs]
