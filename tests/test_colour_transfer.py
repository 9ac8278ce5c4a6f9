"""Colour-distribution consistency (translab.diffusion.colour_transfer): sliced colour transfer and its use in
DDIB's and UNIT-DDPM's chains (model.colour_match)."""
from __future__ import annotations

import pytest
import torch

from translab.diffusion.colour_transfer import colour_consistent, colour_rotations, transfer_colours
from translab.diffusion.process import x0_from_eps
from translab.diffusion.schedule import NoiseSchedule
from translab.settings import ConfigError


def images(seed: int, n: int = 2, size: int = 6) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_rotations_are_orthonormal_fixed_and_start_with_the_rgb_axes():
    rots = colour_rotations(4)
    assert torch.equal(rots[0], torch.eye(3))
    for r in rots:
        assert torch.allclose(r @ r.T, torch.eye(3), atol=1e-6)
    assert all(torch.equal(a, b) for a, b in zip(rots, colour_rotations(4)))


def test_one_pass_on_the_rgb_axes_gives_each_channel_the_reference_values_in_the_image_s_own_order():
    """Oracle: 1-D optimal transport between two equal-size samples is the monotone (rank) assignment."""
    x, ref = images(0), images(1)
    out = transfer_colours(x, ref, colour_rotations(1))
    flat, x_flat, ref_flat = out.flatten(2), x.flatten(2), ref.flatten(2)
    assert torch.equal(flat.sort(-1).values, ref_flat.sort(-1).values)  # the reference's values per channel
    assert torch.equal(flat.argsort(-1), x_flat.argsort(-1))  # in the image's own order


def test_an_image_with_the_reference_s_colours_already_is_left_as_it_is():
    """A permutation of the reference's pixels has its colour distribution: every pass maps it to itself."""
    ref = images(2)
    perm = torch.randperm(36, generator=torch.Generator().manual_seed(3))
    x = ref.flatten(2)[..., perm].reshape(ref.shape)
    assert torch.allclose(transfer_colours(x, ref, colour_rotations()), x, atol=1e-5)


def test_the_estimate_of_the_rewritten_noise_prediction_takes_the_reference_s_colours():
    sched = NoiseSchedule.make("cosine", 100)
    x, ref, eps = images(4), images(5), images(6)
    t = torch.full((2,), 60)
    full = colour_consistent(lambda xt, tt: eps, sched, ref, 1.0)(x, t)
    x0 = x0_from_eps(sched, x, 60, full)
    rot = colour_rotations()[-1]
    # after the last pass the marginals along the last rotation's axes are the reference's
    assert torch.allclose((rot @ x0.flatten(2)).sort(-1).values, (rot @ ref.flatten(2)).sort(-1).values, atol=1e-4)
    half = colour_consistent(lambda xt, tt: eps, sched, ref, 0.5)(x, t)
    plain = x0_from_eps(sched, x, 60, eps).clamp(-1, 1)
    assert torch.allclose(x0_from_eps(sched, x, 60, half), (plain + x0) / 2, atol=1e-4)
    # conditions between the image and t reach the network unchanged (UNIT-DDPM's partner chain)
    seen = []
    colour_consistent(lambda xt, other, tt: seen.append(other) or eps, sched, ref, 1.0)(x, ref, t)
    assert seen[0] is ref


def test_ddib_and_unit_ddpm_refuse_a_strength_outside_0_1_and_non_rgb_images():
    from translab.config import build_config

    for method in ("ddib", "unit-ddpm"):
        with pytest.raises(ConfigError, match="model.colour_match"):
            build_config({"method": method, "model": {"colour_match": 1.5}})
        with pytest.raises(ConfigError, match="model.colour_match=1.0: colour transfer needs RGB"):
            build_config({"method": method, "data": {"dataset": "folders", "channels": 1},
                          "model": {"colour_match": 1.0}})


@pytest.mark.parametrize("method", ["ddib", "unit-ddpm"])
def test_the_translation_keeps_the_input_s_colours(method):
    """A tiny untrained model, one solver step from t_max to 0: its output is the last clean-image estimate,
    which colour_match = 1 gives the input's colour distribution along the last rotation's axes."""
    from translab.config import build_config
    from translab.methods import build_method

    model = {"unet": {"base_channels": 8, "channel_mult": [1], "norm_groups": 4}, "colour_match": 1.0}
    if method == "unit-ddpm":
        model.update(release_t=-1, t_max=500, generator={"ngf": 4, "n_blocks": 1, "n_down": 1})
    cfg = build_config({"method": method, "data": {"dataset": "synthetic", "image_size": 8}, "model": model})
    m = build_method(cfg)
    x = images(7, size=8) * 0.3  # colours whose rotations stay inside [-1, 1]: the output is clipped there
    y = m.translate(x, "a2b", steps=1).images
    rot = colour_rotations()[-1]
    assert torch.allclose((rot @ y.flatten(2)).sort(-1).values, (rot @ x.flatten(2)).sort(-1).values, atol=1e-3)
    plain = m.with_inference(colour_match=0.0).translate(x, "a2b", steps=1).images
    assert not torch.allclose(plain, y, atol=1e-3)
