"""Light geometric augmentation of a normalised batch, on whatever device the batch is on.

Synthetic captchas are cheap to make but a fixed set is still seen many times; small random shifts,
scales and shears keep the model from memorising pixel positions. Random numbers come from torch's
global generator, which training seeds and checkpoints, so runs and resumed runs stay reproducible.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def random_affine(images: torch.Tensor, shift: float = 0.03, scale: float = 0.05, shear: float = 0.1) -> torch.Tensor:
    """images [N, 1, H, W]; each gets its own shift (fraction of the size), zoom and horizontal shear."""
    n = images.shape[0]
    dev = images.device

    def uniform(bound: float) -> torch.Tensor:
        return (torch.rand(n) * 2 - 1).mul_(bound).to(dev)

    zoom = 1 + uniform(scale)
    theta = torch.zeros(n, 2, 3, device=dev)
    theta[:, 0, 0] = zoom
    theta[:, 0, 1] = uniform(shear)
    theta[:, 1, 1] = zoom
    theta[:, 0, 2] = uniform(2 * shift)  # affine_grid coordinates span [-1, 1]: a fraction f of the size is 2f
    theta[:, 1, 2] = uniform(2 * shift)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)  # [N, H, W, 2]
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)
