"""Structure preservation between an input and its translation: SSIM (Wang et al., IEEE TIP 2004, eq. 13)
through torchmetrics, on images mapped from [-1, 1] to [0, 1] (data_range 1)."""
from __future__ import annotations

import torch


def ssim_kernel_size(height: int, width: int, preferred: int = 11) -> int:
    """The usual 11x11 Gaussian window, shrunk to the largest odd size that fits small images (>= 3)."""
    k = min(preferred, height, width)
    k = k if k % 2 == 1 else k - 1
    if k < 3:
        raise ValueError(f"SSIM needs images of at least 3x3 pixels, got {height}x{width}")
    return k


@torch.no_grad()
def ssim(inputs: torch.Tensor, outputs: torch.Tensor, batch_size: int = 256) -> dict:
    """Mean SSIM between inputs and outputs (N, 3, H, W) in [-1, 1] -> {"mean", "kernel_size"}."""
    from torchmetrics.functional.image import structural_similarity_index_measure as tm_ssim

    if inputs.shape != outputs.shape:
        raise ValueError(f"inputs {tuple(inputs.shape)} and outputs {tuple(outputs.shape)} differ in shape")
    k = ssim_kernel_size(*inputs.shape[-2:])
    total, n = 0.0, inputs.shape[0]
    for i in range(0, n, batch_size):
        a = (inputs[i:i + batch_size].float().clamp(-1, 1) + 1) / 2
        b = (outputs[i:i + batch_size].float().clamp(-1, 1) + 1) / 2
        per = tm_ssim(b, a, data_range=1.0, kernel_size=k, reduction="none")
        total += float(per.sum())
    return {"mean": total / n if n else float("nan"), "kernel_size": k}
