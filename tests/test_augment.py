"""Tests for noisyclf.augment."""

import colorsys
import math

import pytest
import torch
from torch import nn

from noisyclf import augment as aug_mod
from noisyclf.augment import (
    FeatureCorruption,
    SimCLRAugment,
    WeakAugment,
    make_augmenter,
)

NO_OPS = dict(hflip_prob=0.0, jitter_prob=0.0, gray_prob=0.0, blur_prob=0.0)
IDENTITY_CROP = dict(crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0))


def _images(n=6, c=3, h=16, w=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, c, h, w, generator=g)


def _devices():
    devs = ["cpu"]
    if torch.cuda.is_available():
        devs.append("cuda")
    return devs


# -- common contract ----------------------------------------------------------


AUGMENTERS = [
    ("simclr", lambda: SimCLRAugment(), (5, 3, 16, 16)),
    ("simclr_blur_gray", lambda: SimCLRAugment(gray_prob=1.0, blur_prob=1.0), (5, 3, 8, 8)),
    ("simclr_1ch", lambda: SimCLRAugment(crop_scale=(0.4, 1.0)), (5, 1, 8, 8)),
    ("weak", lambda: WeakAugment(), (5, 3, 32, 32)),
    ("weak_zeros", lambda: WeakAugment(crop_padding=2, padding_mode="zeros"), (5, 1, 8, 8)),
    ("tabular", lambda: FeatureCorruption(0.5), (7, 10)),
]


@pytest.mark.parametrize("device", _devices())
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name,factory,shape", AUGMENTERS, ids=[a[0] for a in AUGMENTERS])
def test_shape_dtype_device_and_input_untouched(name, factory, shape, dtype, device):
    torch.manual_seed(0)
    x = (torch.randn(shape, dtype=dtype) * 3 + 5).to(device)
    before = x.clone()
    out = factory()(x)
    assert out.shape == x.shape
    assert out.dtype == x.dtype
    assert out.device == x.device
    assert torch.equal(x, before)
    assert out.data_ptr() != x.data_ptr()
    assert torch.isfinite(out).all()
    assert not torch.equal(out, x)  # something was changed


@pytest.mark.parametrize(
    "module",
    [SimCLRAugment(**NO_OPS, **IDENTITY_CROP), WeakAugment(0, 0.0), FeatureCorruption(0.0)],
)
def test_no_op_returns_new_tensor(module):
    x = torch.randn(3, 3, 8, 8) if not isinstance(module, FeatureCorruption) else torch.randn(3, 4)
    out = module(x)
    assert out.data_ptr() != x.data_ptr()
    out.add_(1.0)
    assert not torch.equal(out, x)


def test_no_learnable_parameters():
    for module in (SimCLRAugment(), WeakAugment(), FeatureCorruption()):
        assert list(module.parameters()) == []
        assert module.state_dict() == {}


# -- SimCLRAugment --------------------------------------------------------------


def test_identical_samples_get_different_crops():
    torch.manual_seed(0)
    img = _images(1, 3, 16, 16)
    x = img.repeat(4, 1, 1, 1)
    out = SimCLRAugment(**NO_OPS)(x)
    for i in range(4):
        for j in range(i + 1, 4):
            assert not torch.allclose(out[i], out[j], atol=1e-3), (i, j)


def test_all_disabled_with_full_crop_is_identity():
    x = _images(4, 3, 12, 12) * 10 - 5  # any range, no clamping
    out = SimCLRAugment(**NO_OPS, **IDENTITY_CROP)(x)
    torch.testing.assert_close(out, x, atol=1e-5, rtol=1e-5)


def test_hflip_prob_one_equals_torch_flip():
    x = _images(3, 3, 10, 10)
    out = SimCLRAugment(**{**NO_OPS, "hflip_prob": 1.0}, **IDENTITY_CROP)(x)
    torch.testing.assert_close(out, torch.flip(x, dims=[-1]), atol=1e-5, rtol=1e-5)
    assert not torch.allclose(out, x, atol=1e-3)


def test_hflip_is_per_sample():
    torch.manual_seed(3)
    x = _images(40, 1, 6, 6)
    out = SimCLRAugment(**{**NO_OPS, "hflip_prob": 0.5}, **IDENTITY_CROP)(x)
    flipped = torch.isclose(out, x.flip(-1), atol=1e-5).flatten(1).all(1)
    kept = torch.isclose(out, x, atol=1e-5).flatten(1).all(1)
    assert (flipped | kept).all()
    assert 0 < flipped.sum() < 40


def test_grayscale_gives_identical_channels():
    x = _images(4, 3, 8, 8)
    out = SimCLRAugment(**{**NO_OPS, "gray_prob": 1.0}, **IDENTITY_CROP)(x)
    torch.testing.assert_close(out[:, 0], out[:, 1])
    torch.testing.assert_close(out[:, 0], out[:, 2])
    luma = 0.2989 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]  # torchvision's weights
    torch.testing.assert_close(out[:, 0], luma, atol=1e-5, rtol=1e-5)


def test_jitter_clamps_to_value_range_and_none_does_not_clamp():
    torch.manual_seed(0)
    x = _images(16, 3, 8, 8) * 16  # digits-like range 0..16
    kwargs = {**NO_OPS, "jitter_prob": 1.0, "jitter_strength": 1.0, **IDENTITY_CROP}
    out = SimCLRAugment(**kwargs, value_range=(0, 16))(x)
    assert not torch.allclose(out, x, atol=1e-2)
    assert out.min() >= 0 and out.max() <= 16
    assert (out == 16).any()  # brightness up to 1.8x saturates at the top of the range
    assert not torch.allclose(out[:, 0], out[:, 1])  # colours stay distinct
    torch.manual_seed(0)
    free = SimCLRAugment(**kwargs, value_range=None)(x)
    assert free.max() > 16.0  # not clamped
    # the default range (0, 1) clips these 0..16 values
    torch.manual_seed(0)
    assert SimCLRAugment(**kwargs)(x).max() <= 1.0


def test_jitter_prob_zero_and_strength_zero_disable_jitter():
    x = _images(4, 3, 8, 8)
    for kwargs in ({"jitter_prob": 0.0}, {"jitter_prob": 1.0, "jitter_strength": 0.0}):
        out = SimCLRAugment(**{**NO_OPS, **kwargs}, **IDENTITY_CROP)(x)
        torch.testing.assert_close(out, x, atol=1e-5, rtol=1e-5)


def test_one_channel_skips_colour_ops():
    x = _images(4, 1, 8, 8) * 16
    out = SimCLRAugment(
        **{**NO_OPS, "jitter_prob": 1.0, "jitter_strength": 1.0, "gray_prob": 1.0}, **IDENTITY_CROP
    )(x)
    assert out.shape == (4, 1, 8, 8)
    torch.testing.assert_close(out, x, atol=1e-5, rtol=1e-5)


def test_one_channel_default_pipeline_runs():
    torch.manual_seed(0)
    x = _images(6, 1, 8, 8) * 16
    out = SimCLRAugment(crop_scale=(0.4, 1.0))(x)
    assert out.shape == x.shape
    assert not torch.allclose(out, x)


def test_blur_reduces_variance_of_noise():
    torch.manual_seed(0)
    x = torch.randn(8, 3, 32, 32)
    aug = SimCLRAugment(**{**NO_OPS, "blur_prob": 1.0, "blur_sigma": (1.0, 2.0)}, **IDENTITY_CROP)
    out = aug(x)
    var_in = x.var(dim=(1, 2, 3))
    var_out = out.var(dim=(1, 2, 3))
    assert (var_out < 0.7 * var_in).all()
    # blur preserves the mean (normalised kernel)
    torch.testing.assert_close(out.mean(), x.mean(), atol=0.05, rtol=0)


def test_blur_works_on_tiny_images_and_is_per_sample():
    torch.manual_seed(1)
    x = torch.randn(30, 1, 8, 8)
    out = SimCLRAugment(**{**NO_OPS, "blur_prob": 0.5}, **IDENTITY_CROP)(x)
    unchanged = torch.isclose(out, x, atol=1e-5).flatten(1).all(1)
    assert 0 < unchanged.sum() < 30


def test_seed_reproducibility():
    x = _images(5, 3, 16, 16)
    aug = SimCLRAugment()
    torch.manual_seed(123)
    a = aug(x)
    torch.manual_seed(123)
    b = aug(x)
    c = aug(x)
    torch.testing.assert_close(a, b)
    assert not torch.allclose(a, c)


def test_non_square_images():
    torch.manual_seed(0)
    x = torch.rand(3, 3, 12, 20)
    assert SimCLRAugment()(x).shape == (3, 3, 12, 20)
    full = SimCLRAugment(**NO_OPS, crop_scale=(1.0, 1.0), crop_ratio=(20 / 12, 20 / 12))
    torch.testing.assert_close(full(x), x, atol=1e-5, rtol=1e-5)
    # ratio 1 cannot cover a 12x20 image: falls back to the centre 12x12 square,
    # so the middle of the output is the middle of the input
    centre = SimCLRAugment(**NO_OPS, **IDENTITY_CROP)(x)
    assert not torch.allclose(centre, x, atol=1e-3)
    torch.testing.assert_close(
        centre[..., 9:11].mean(-1), x[..., 9:11].mean(-1), atol=0.15, rtol=0
    )


def test_crop_is_zoom_of_input_content():
    # a crop of a constant image stays constant (no padding bleeds in)
    x = torch.full((4, 3, 8, 8), 7.0)
    out = SimCLRAugment(**NO_OPS)(x)
    torch.testing.assert_close(out, x)


# -- SimCLRAugment: colour operations against torchvision ---------------------------


def _tvf():
    return pytest.importorskip("torchvision.transforms.v2.functional")


def _special_images(n=12, h=6, w=7, seed=0, dtype=torch.float32):
    """Random images whose first two rows hold saturated, grey, black, white and tied pixels."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, h, w, generator=g, dtype=torch.float64)
    special = torch.tensor(
        [
            [1.0, 0.0, 0.0],  # primaries and secondaries
            [0.0, 1.0, 0.0],
            [0.0, 0.0, 1.0],
            [1.0, 1.0, 0.0],
            [0.0, 1.0, 1.0],
            [1.0, 0.0, 1.0],
            [0.5, 0.5, 0.5],  # grey
        ],
        dtype=torch.float64,
    )
    x[:, :, 0, :7] = special.T
    x[:, :, 1, 0] = torch.tensor([0.0, 0.0, 0.0])  # black
    x[:, :, 1, 1] = torch.tensor([1.0, 1.0, 1.0])  # white
    x[:, :, 1, 2] = torch.tensor([0.8, 0.8, 0.2])  # tie at the maximum (r, g)
    x[:, :, 1, 3] = torch.tensor([0.3, 0.9, 0.9])  # tie at the maximum (g, b)
    x[:, :, 1, 4] = torch.tensor([0.9, 0.2, 0.2])  # tie at the minimum
    x[:, :, 1, 5] = torch.tensor([0.6, 0.6000001, 0.6])  # almost grey
    return x.to(dtype)


def _per_sample(fn, x, factors):
    return torch.stack([fn(x[i], float(factors[i])) for i in range(x.shape[0])])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(
    "ours,name",
    [
        (aug_mod._adjust_brightness, "adjust_brightness"),
        (aug_mod._adjust_contrast, "adjust_contrast"),
        (aug_mod._adjust_saturation, "adjust_saturation"),
    ],
)
def test_blend_ops_match_torchvision(ours, name, dtype):
    TF = _tvf()
    x = _special_images(dtype=dtype)
    n = x.shape[0]
    # factors from 0 to 2 (SimCLR's jitter_strength=1.25), per sample
    factors = torch.linspace(0.0, 2.0, n, dtype=dtype)
    out = ours(x, factors)
    ref = _per_sample(getattr(TF, name), x, factors)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=0)
    assert out.min() >= 0 and out.max() <= 1
    assert (out == 1).any()  # clamping happened (factors > 1)
    assert not torch.allclose(out, x, atol=1e-3)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_hue_matches_torchvision(dtype):
    TF = _tvf()
    shifts = torch.tensor(
        [-0.5, -0.49999, -0.4, -0.25, -1 / 6, -0.01, 0.0, 0.01, 1 / 6, 1 / 3, 0.49999, 0.5],
        dtype=dtype,
    )
    x = _special_images(n=len(shifts), dtype=dtype)
    out = aug_mod._adjust_hue(x, shifts)
    ref = _per_sample(TF.adjust_hue, x, shifts)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=0)
    # grey, black and white pixels are unchanged; pure red goes to cyan at 0.5
    torch.testing.assert_close(out[:, :, 0, 6], x[:, :, 0, 6])
    torch.testing.assert_close(out[:, :, 1, :2], x[:, :, 1, :2])
    torch.testing.assert_close(out[-1, :, 0, 0], torch.tensor([0.0, 1.0, 1.0], dtype=dtype))
    assert not torch.allclose(out[1:-1], x[1:-1], atol=1e-3)


def test_hue_matches_colorsys():
    # independent reference (Python's colorsys, the same HSV model), without torchvision
    x = _special_images(n=5, h=3, w=7, dtype=torch.float64)
    shifts = torch.tensor([-0.5, -0.3, 0.0, 0.2, 0.45], dtype=torch.float64)
    out = aug_mod._adjust_hue(x, shifts)
    for i in range(5):
        for r in range(3):
            for c in range(7):
                h, s, v = colorsys.rgb_to_hsv(*x[i, :, r, c].tolist())
                expected = colorsys.hsv_to_rgb((h + float(shifts[i])) % 1.0, s, v)
                assert out[i, :, r, c].tolist() == pytest.approx(expected, abs=1e-9)


def test_hue_commutes_with_affine_rescaling():
    x = _special_images(n=6, dtype=torch.float64)
    shifts = torch.linspace(-0.5, 0.5, 6, dtype=torch.float64)
    out = aug_mod._adjust_hue(x, shifts)
    out_scaled = aug_mod._adjust_hue(x * 255.0 - 40.0, shifts)
    torch.testing.assert_close(out_scaled, out * 255.0 - 40.0, atol=1e-9, rtol=0)
    # the result keeps each pixel's channel maximum and minimum
    torch.testing.assert_close(out.amax(1), x.amax(1), atol=1e-12, rtol=0)
    torch.testing.assert_close(out.amin(1), x.amin(1), atol=1e-12, rtol=0)


def test_grayscale_matches_torchvision():
    TF = _tvf()
    x = _special_images()
    out = aug_mod._rgb_to_grayscale(x)
    torch.testing.assert_close(out, TF.rgb_to_grayscale(x, num_output_channels=3))
    assert out.shape == x.shape


def _reference_colour(x, params, value_range):
    """Per-sample torchvision ColorJitter + RandomGrayscale with the given parameters."""
    TF = _tvf()
    ops = {
        0: lambda img, p: TF.adjust_brightness(img, p["brightness"]),
        1: lambda img, p: TF.adjust_contrast(img, p["contrast"]),
        2: lambda img, p: TF.adjust_saturation(img, p["saturation"]),
        3: lambda img, p: TF.adjust_hue(img, p["hue"]),
    }
    lo, hi = value_range
    out = []
    for i in range(x.shape[0]):
        p = {k: v[i].item() if v[i].numel() == 1 else v[i].tolist() for k, v in params.items()}
        img = (x[i] - lo) / (hi - lo)
        if p["jitter"]:
            for k in p["order"]:
                img = ops[k](img, p)
        if p["gray"]:
            img = TF.rgb_to_grayscale(img, num_output_channels=3)
        out.append(img * (hi - lo) + lo if (p["jitter"] or p["gray"]) else x[i])
    return torch.stack(out)


@pytest.mark.parametrize("value_range", [(0.0, 1.0), (0.0, 255.0), (-1.0, 3.0)])
def test_colour_pipeline_matches_torchvision(value_range):
    lo, hi = value_range
    aug = SimCLRAugment(
        jitter_prob=0.7, jitter_strength=1.0, gray_prob=0.3, value_range=value_range
    )
    torch.manual_seed(0)
    n = 48
    params = aug._draw_colour_params(n, torch.device("cpu"), torch.float32)
    # the draws are per sample: factors, orders and masks all vary across the batch
    assert 0 < params["jitter"].sum() < n and 0 < params["gray"].sum() < n
    assert len({tuple(o) for o in params["order"].tolist()}) > 5
    bounds = {"brightness": (0.2, 1.8), "saturation": (0.2, 1.8), "hue": (-0.2, 0.2)}
    for name, (a, b) in bounds.items():
        assert params[name].min() >= a and params[name].max() <= b
        assert params[name].std() > 0.05
    x = _special_images(n=n, dtype=torch.float32) * (hi - lo) + lo
    out = aug._apply_colour(x, params)
    ref = _reference_colour(x, params, value_range)
    torch.testing.assert_close(out, ref, atol=1e-5 * (hi - lo), rtol=0)
    untouched = ~(params["jitter"] | params["gray"])
    assert torch.equal(out[untouched], x[untouched])
    assert not torch.allclose(out[~untouched], x[~untouched], atol=1e-3 * (hi - lo))


def test_forward_applies_the_drawn_colour_parameters(monkeypatch):
    aug = SimCLRAugment(
        **{**NO_OPS, "jitter_prob": 0.8, "gray_prob": 0.2},
        jitter_strength=1.0,
        value_range=(0.0, 255.0),
        **IDENTITY_CROP,
    )
    drawn = []
    original = aug._draw_colour_params

    def record(*args, **kwargs):
        drawn.append(original(*args, **kwargs))
        return drawn[-1]

    monkeypatch.setattr(aug, "_draw_colour_params", record)
    torch.manual_seed(1)
    x = _special_images(n=32, h=7, w=7) * 255.0  # square: the crop is the identity
    out = aug(x)
    assert len(drawn) == 1
    ref = _reference_colour(x, drawn[0], (0.0, 255.0))
    torch.testing.assert_close(out, ref, atol=1e-3, rtol=0)


def test_jitter_order_matters_and_follows_params():
    # brightness x1.8 then saturation x0 differs from saturation x0 then brightness x1.8
    # once brightness clamps; both must match the sequential torchvision reference
    x = _special_images(n=2)
    ones = torch.ones(2)
    params = dict(
        jitter=torch.tensor([True, True]),
        gray=torch.tensor([False, False]),
        brightness=1.8 * ones,
        contrast=ones,
        saturation=0 * ones,
        hue=0 * ones,
        order=torch.tensor([[0, 2, 1, 3], [2, 0, 1, 3]]),
    )
    out = SimCLRAugment()._apply_colour(x, params)
    assert not torch.allclose(out[0], out[1], atol=1e-3)
    torch.testing.assert_close(out, _reference_colour(x, params, (0.0, 1.0)), atol=1e-5, rtol=0)


@pytest.mark.parametrize("value_range", [(0.0, 1.0), (0.0, 255.0), (-0.1, 0.7), (0.1, 0.7)])
def test_colour_outputs_stay_in_value_range(value_range):
    lo, hi = value_range
    torch.manual_seed(0)
    x = torch.rand(64, 3, 12, 12) * (hi - lo) + lo
    colour = dict(jitter_prob=1.0, jitter_strength=2.0, gray_prob=0.5, value_range=value_range)
    out = SimCLRAugment(**{**NO_OPS, **colour}, **IDENTITY_CROP)(x)
    assert out.min() >= lo and out.max() <= hi  # exactly, colour ops clamp
    assert (out == hi).any() and (out == lo).any()  # brightness up to 2.6x / down to 0
    # full pipeline (crop, flip, blur only average values): in range up to rounding
    full = SimCLRAugment(**colour, blur_prob=1.0)(torch.rand(64, 3, 40, 40) * (hi - lo) + lo)
    eps = 1e-6 * (hi - lo)
    assert full.min() >= lo - eps and full.max() <= hi + eps


def test_colour_ops_are_equivariant_to_value_range():
    x = _images(16, 3, 8, 8, seed=3)
    kwargs = dict(jitter_prob=1.0, jitter_strength=1.0, gray_prob=0.3, blur_prob=0.0)
    torch.manual_seed(5)
    unit = SimCLRAugment(**kwargs)(x)
    torch.manual_seed(5)
    scaled = SimCLRAugment(**kwargs, value_range=(-2.0, 6.0))(x * 8.0 - 2.0)
    torch.testing.assert_close(scaled, unit * 8.0 - 2.0, atol=1e-4, rtol=0)


def test_samples_without_colour_ops_are_untouched_even_out_of_range():
    torch.manual_seed(0)
    x = torch.randn(40, 3, 8, 8) * 3  # far outside the default range (0, 1)
    aug = SimCLRAugment(**{**NO_OPS, "jitter_prob": 0.5}, **IDENTITY_CROP)
    out = aug(x)
    inside = ((out >= 0) & (out <= 1)).flatten(1).all(1)
    kept = torch.isclose(out, x, atol=1e-5).flatten(1).all(1)
    assert (inside | kept).all()  # jittered samples are clipped, the others unchanged
    assert 0 < kept.sum() < 40


def test_out_of_range_inputs_are_clipped_before_colour_ops():
    x = torch.tensor([2.0, -1.0, 0.5]).view(1, 3, 1, 1).expand(2, 3, 4, 4)
    aug = SimCLRAugment(**{**NO_OPS, "gray_prob": 1.0}, **IDENTITY_CROP, value_range=(0.0, 1.0))
    expected = 0.2989 * 1.0 + 0.587 * 0.0 + 0.114 * 0.5  # luma of the clipped pixel
    torch.testing.assert_close(aug(x), torch.full_like(x, expected))
    unclipped = SimCLRAugment(**{**NO_OPS, "gray_prob": 1.0}, **IDENTITY_CROP, value_range=None)
    expected = 0.2989 * 2.0 - 0.587 + 0.114 * 0.5
    torch.testing.assert_close(unclipped(x), torch.full_like(x, expected))


def test_hue_range_is_capped_at_half_a_turn():
    torch.manual_seed(0)
    params = SimCLRAugment(jitter_strength=5.0)._draw_colour_params(2000, "cpu", torch.float32)
    assert params["hue"].abs().max() <= 0.5
    assert params["hue"].abs().max() > 0.45
    assert params["brightness"].min() >= 0 and params["brightness"].max() <= 5.0
    assert params["brightness"].max() > 4.5
    orders = params["order"].sort(dim=1).values
    assert torch.equal(orders, torch.arange(4).expand(2000, 4))  # permutations


# -- SimCLRAugment: blur_prob="auto" -----------------------------------------------


@pytest.mark.parametrize("h,w,expected", [(8, 8, 0.0), (32, 32, 0.0), (32, 64, 0.0),
                                          (33, 40, 0.5), (64, 64, 0.5), (224, 224, 0.5)])
def test_blur_auto_probability(h, w, expected):
    assert SimCLRAugment()._blur_prob_for(h, w) == expected
    assert SimCLRAugment(blur_prob=0.3)._blur_prob_for(h, w) == 0.3


@pytest.mark.parametrize("size", [8, 32])
def test_blur_auto_does_not_blur_small_images(size):
    torch.manual_seed(0)
    x = torch.randn(20, 3, size, size)
    out = SimCLRAugment(**{**NO_OPS, "blur_prob": "auto"}, **IDENTITY_CROP)(x)
    torch.testing.assert_close(out, x, atol=1e-5, rtol=1e-5)
    # an explicit probability still blurs them
    torch.manual_seed(0)
    blurred = SimCLRAugment(**{**NO_OPS, "blur_prob": 0.5}, **IDENTITY_CROP)(x)
    changed = ~torch.isclose(blurred, x, atol=1e-5).flatten(1).all(1)
    assert 0 < changed.sum() < 20


def test_blur_auto_blurs_half_of_large_images():
    torch.manual_seed(0)
    x = torch.randn(40, 3, 64, 64)
    out = SimCLRAugment(**{**NO_OPS, "blur_prob": "auto"}, **IDENTITY_CROP)(x)
    changed = ~torch.isclose(out, x, atol=1e-5).flatten(1).all(1)
    assert 8 < changed.sum() < 32
    # blurred samples are smoother
    assert (out[changed].var(dim=(1, 2, 3)) < 0.9 * x[changed].var(dim=(1, 2, 3))).all()


def test_repr_shows_blur_prob_and_value_range():
    text = repr(SimCLRAugment())
    assert "blur_prob='auto'" in text
    assert "value_range=(0.0, 1.0)" in text
    assert "value_range=None" in repr(SimCLRAugment(value_range=None))


# -- WeakAugment ----------------------------------------------------------------


def test_weak_per_sample_different_shifts():
    torch.manual_seed(0)
    img = _images(1, 3, 32, 32)
    x = img.repeat(8, 1, 1, 1)
    out = WeakAugment(hflip_prob=0.0)(x)
    assert out.shape == x.shape
    distinct = {tuple(o.flatten()[:64].tolist()) for o in out}
    assert len(distinct) > 1


def test_weak_output_is_integer_translation():
    torch.manual_seed(0)
    x = _images(6, 2, 16, 16)
    out = WeakAugment(crop_padding=2, hflip_prob=0.0)(x)
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2), mode="reflect")
    for i in range(6):
        found = any(
            torch.equal(out[i], padded[i, :, dy : dy + 16, dx : dx + 16])
            for dy in range(5)
            for dx in range(5)
        )
        assert found, i


def test_weak_no_padding_flip_only():
    x = _images(3, 3, 8, 8)
    torch.testing.assert_close(WeakAugment(crop_padding=0, hflip_prob=1.0)(x), x.flip(-1))
    torch.testing.assert_close(WeakAugment(crop_padding=0, hflip_prob=0.0)(x), x)


def test_weak_default_padding_on_digits():
    torch.manual_seed(0)
    x = _images(20, 1, 8, 8) * 16
    out = WeakAugment(hflip_prob=0.0)(x)  # padding 8 // 8 = 1
    assert out.shape == x.shape
    assert not torch.equal(out, x)


def test_weak_padding_too_large_for_reflect():
    with pytest.raises(ValueError, match="crop_padding"):
        WeakAugment(crop_padding=8)(torch.rand(2, 1, 8, 8))
    out = WeakAugment(crop_padding=8, padding_mode="zeros")(torch.rand(2, 1, 8, 8))
    assert out.shape == (2, 1, 8, 8)


# -- FeatureCorruption ----------------------------------------------------------


@pytest.mark.parametrize("rate,d", [(0.6, 10), (0.3, 7), (1.0, 5), (0.5, 3)])
def test_feature_corruption_exact_count(rate, d):
    torch.manual_seed(0)
    n = 16
    x = torch.randperm(n * d).float().reshape(n, d)  # all values distinct
    out = FeatureCorruption(rate)(x)
    changed = (out != x).sum(dim=1)
    assert (changed == round(rate * d)).all()


def test_feature_corruption_values_from_same_column():
    torch.manual_seed(0)
    n, d = 12, 9
    x = torch.randperm(n * d).float().reshape(n, d)
    out = FeatureCorruption(0.6)(x)
    for j in range(d):
        assert set(out[:, j].tolist()) <= set(x[:, j].tolist())
    changed = out != x
    assert (changed.sum(dim=1) == round(0.6 * d)).all()
    # a changed entry holds the value of another row of the same column
    for i, j in changed.nonzero().tolist():
        assert out[i, j] in x[torch.arange(n) != i, j]


def test_feature_corruption_positions_vary_per_row():
    torch.manual_seed(0)
    x = torch.randperm(64 * 10).float().reshape(64, 10)
    masks = FeatureCorruption(0.5)(x) != x
    assert len({tuple(m.tolist()) for m in masks}) > 1


def test_feature_corruption_rate_zero_and_batch_one():
    x = torch.randn(5, 4)
    torch.testing.assert_close(FeatureCorruption(0.0)(x), x)
    single = torch.randn(1, 4)
    out = FeatureCorruption(1.0)(single)
    torch.testing.assert_close(out, single)
    assert out.data_ptr() != single.data_ptr()


# -- make_augmenter -------------------------------------------------------------


def test_make_augmenter():
    assert isinstance(make_augmenter("simclr", blur_prob=0.0), SimCLRAugment)
    assert make_augmenter("simclr", blur_prob=0.0).blur_prob == 0.0
    assert make_augmenter("simclr").blur_prob == "auto"
    assert make_augmenter("simclr").value_range == (0.0, 1.0)
    assert make_augmenter("simclr", value_range=(0, 255)).value_range == (0.0, 255.0)
    assert make_augmenter("simclr", value_range=None).value_range is None
    assert isinstance(make_augmenter("weak"), WeakAugment)
    assert make_augmenter("tabular", corruption_rate=0.2).corruption_rate == 0.2
    assert isinstance(make_augmenter("none"), nn.Identity)
    with pytest.raises(ValueError, match="kind"):
        make_augmenter("strong")


# -- validation -----------------------------------------------------------------


@pytest.mark.parametrize(
    "cls,kwargs,name",
    [
        (SimCLRAugment, {"crop_scale": (0.0, 1.0)}, "crop_scale"),
        (SimCLRAugment, {"crop_scale": (0.5, 0.2)}, "crop_scale"),
        (SimCLRAugment, {"crop_scale": (0.5, 1.5)}, "crop_scale"),
        (SimCLRAugment, {"crop_ratio": (0.0, 1.0)}, "crop_ratio"),
        (SimCLRAugment, {"hflip_prob": 1.5}, "hflip_prob"),
        (SimCLRAugment, {"jitter_prob": -0.1}, "jitter_prob"),
        (SimCLRAugment, {"jitter_strength": -1.0}, "jitter_strength"),
        (SimCLRAugment, {"gray_prob": 2.0}, "gray_prob"),
        (SimCLRAugment, {"blur_prob": -1.0}, "blur_prob"),
        (SimCLRAugment, {"blur_prob": "always"}, "blur_prob"),
        (SimCLRAugment, {"value_range": (1.0, 0.0)}, "value_range"),
        (SimCLRAugment, {"value_range": (2.0, 2.0)}, "value_range"),
        (SimCLRAugment, {"value_range": (0.0, math.inf)}, "value_range"),
        (SimCLRAugment, {"value_range": (0.0, 1.0, 2.0)}, "value_range"),
        (SimCLRAugment, {"value_range": 255}, "value_range"),
        (SimCLRAugment, {"value_range": "01"}, "value_range"),
        (SimCLRAugment, {"value_range": ("a", "b")}, "value_range"),
        (SimCLRAugment, {"blur_sigma": (0.0, 1.0)}, "blur_sigma"),
        (SimCLRAugment, {"blur_sigma": (-1.0, 1.0)}, "blur_sigma"),
        (SimCLRAugment, {"blur_kernel_frac": 0.0}, "blur_kernel_frac"),
        (WeakAugment, {"crop_padding": -1}, "crop_padding"),
        (WeakAugment, {"crop_padding": 1.5}, "crop_padding"),
        (WeakAugment, {"hflip_prob": 1.1}, "hflip_prob"),
        (WeakAugment, {"padding_mode": "edge"}, "padding_mode"),
        (FeatureCorruption, {"corruption_rate": 1.2}, "corruption_rate"),
        (FeatureCorruption, {"corruption_rate": -0.2}, "corruption_rate"),
    ],
)
def test_constructor_validation(cls, kwargs, name):
    with pytest.raises(ValueError, match=name):
        cls(**kwargs)


@pytest.mark.parametrize(
    "module,bad",
    [
        (SimCLRAugment(), torch.rand(3, 8, 8)),
        (SimCLRAugment(), torch.randint(0, 5, (2, 3, 8, 8))),
        (WeakAugment(), torch.rand(2, 64)),
        (FeatureCorruption(), torch.rand(2, 3, 4)),
        (FeatureCorruption(), torch.rand(5)),
    ],
)
def test_forward_validation(module, bad):
    with pytest.raises(ValueError, match="x"):
        module(bad)
