import numpy as np
import torch

from selfcascade.shapes.vae_loss import edge_map, reconstruction_loss
from selfcascade.shapes.world import Scene, render


def _render(shape="square"):
    scene = Scene(shape=shape, colour="red", background="gray", size_word="large", extent=0.4, centre_x=0.5,
                  centre_y=0.5, gradient_angle=0.0, gradient_strength=0.0)
    pixels = np.asarray(render(scene, 64), dtype=np.float32)
    return torch.from_numpy(pixels).permute(2, 0, 1)[None] / 127.5 - 1


def test_edge_map_marks_the_outline_and_nothing_flat():
    image = _render()
    edges = edge_map(image)[0, 0]
    assert edges[32, 32] == 0 and edges[2, 2] == 0  # inside the square, far background
    assert edges[32, :].max() == 1  # a row across the square crosses its sides


def test_unweighted_loss_is_the_original_one():
    target, reconstruction = _render(), _render() + 0.1 * torch.randn(1, 3, 64, 64)
    expected = torch.nn.functional.mse_loss(reconstruction, target) + 0.5 * torch.nn.functional.l1_loss(
        reconstruction, target)
    assert torch.allclose(reconstruction_loss(reconstruction, target), expected)


def test_edge_weight_punishes_a_moved_edge_more_than_a_tint_of_the_same_size():
    target = _render()
    moved = torch.roll(target, 1, dims=3)  # the whole outline one pixel off
    tint = target + (moved - target).abs().mean() * torch.tensor([1.0, -1, -1]).view(1, 3, 1, 1)
    plain = reconstruction_loss(moved, target) / reconstruction_loss(tint, target)
    weighted = reconstruction_loss(moved, target, 4.0) / reconstruction_loss(tint, target, 4.0)
    assert weighted > 2 * plain


def test_colour_weight_punishes_a_flat_tint_more_than_zero_mean_noise_of_the_same_size():
    target = _render()
    signs = torch.randint(0, 2, target.shape, generator=torch.Generator().manual_seed(0)) * 2 - 1
    tint, noise = torch.full_like(target, 0.1), 0.1 * signs
    plain = reconstruction_loss(target + tint, target) / reconstruction_loss(target + noise, target)
    coloured = reconstruction_loss(target + tint, target, 0, 1.0) / reconstruction_loss(target + noise, target, 0, 1.0)
    assert torch.isclose(plain, torch.tensor(1.0))  # per pixel the two errors are the same size
    assert coloured > 1.5
