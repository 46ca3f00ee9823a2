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


def strong(images: torch.Tensor) -> torch.Tensor:
    """A harder view of a normalised batch [N, C, H, W], for images learnt from a teacher's reading
    (trainer.training.semi): twice the geometric range, then per image a contrast and brightness change,
    Gaussian noise and, for a third of them, a 3x3 blur. The characters stay legible: nothing is cut out."""
    n = images.shape[0]
    if n == 0:
        return images
    dev = images.device

    def per_image(low: float, high: float) -> torch.Tensor:
        return (low + (high - low) * torch.rand(n)).to(dev).view(n, 1, 1, 1)

    x = random_affine(images, shift=0.06, scale=0.1, shear=0.25)
    x = x * per_image(0.6, 1.4) + per_image(-0.4, 0.4)
    x = x + torch.randn(x.shape).to(dev) * per_image(0.0, 0.25)
    blurred = F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)
    return torch.where(per_image(0, 1) < 1 / 3, blurred, x)
