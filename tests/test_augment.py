"""Tests for noisyclf.augment."""

import pytest
import torch
from torch import nn

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
    luma = 0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]
    torch.testing.assert_close(out[:, 0], luma, atol=1e-5, rtol=1e-5)


def test_jitter_changes_colours_without_clamping():
    torch.manual_seed(0)
    x = _images(16, 3, 8, 8) * 16  # digits-like range 0..16
    aug = SimCLRAugment(**{**NO_OPS, "jitter_prob": 1.0, "jitter_strength": 1.0}, **IDENTITY_CROP)
    out = aug(x)
    assert not torch.allclose(out, x, atol=1e-2)
    assert out.max() > 16.0  # brightness up to 1.8x is not clamped to the input range
    # channels stay distinct (saturation factor is a.s. not exactly 0 for all)
    assert not torch.allclose(out[:, 0], out[:, 1])


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
