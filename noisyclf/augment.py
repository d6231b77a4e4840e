"""Batched, per-sample random data augmentations in plain torch.

The modules in this file transform a whole mini-batch at once, drawing
independent random parameters for every sample.  They run on the device of
the input batch, draw all their randomness from the global torch random
number generator of that device (``torch.manual_seed`` seeds it; use
``torch.random.fork_rng`` to isolate it), hold no learnable parameters and
never modify their input in place.  They are applied whatever the module's
``training`` flag, so the caller decides when to augment.

* :class:`SimCLRAugment` -- the image augmentation of SimCLR (random resized
  crop, horizontal flip, colour jitter, grayscale, gaussian blur), used to
  build the two views of contrastive pre-training.
* :class:`WeakAugment` -- the standard supervised image augmentation (random
  crop with padding, horizontal flip).
* :class:`FeatureCorruption` -- the SCARF feature corruption for tabular
  data (Bahri et al., 2022).
* :func:`make_augmenter` -- build one of the above from a short name.

No operation clamps its output, so inputs may have any float range (for
instance 0..16 pixel values of the scikit-learn digits, or standardised
values).
"""

import math

import torch
from torch import nn
import torch.nn.functional as F

__all__ = ["SimCLRAugment", "WeakAugment", "FeatureCorruption", "make_augmenter"]


# Luma weights (ITU-R BT.601), also the Y row of the YIQ transform below, so
# that a hue rotation in YIQ space leaves the grayscale value unchanged.
_GRAY_WEIGHTS = (0.299, 0.587, 0.114)
# RGB -> YIQ (FCC NTSC).
_RGB_TO_YIQ = torch.tensor(
    [
        [0.299, 0.587, 0.114],
        [0.596, -0.274, -0.322],
        [0.211, -0.523, 0.312],
    ],
    dtype=torch.float64,
)
_YIQ_TO_RGB = torch.linalg.inv(_RGB_TO_YIQ)


def _check_prob(value, name):
    value = float(value)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value!r}.")
    return value


def _check_range(value, name, low=0.0, upper=None):
    """Validate a pair ``(a, b)`` with ``low < a <= b`` (and ``b <= upper``)."""
    try:
        a, b = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a pair of numbers (a, b), got {value!r}.") from None
    if not (low < a <= b) or (upper is not None and b > upper):
        bound = f" <= {upper}" if upper is not None else ""
        raise ValueError(f"{name} must satisfy {low} < a <= b{bound}, got {value!r}.")
    return (a, b)


def _check_images(x):
    if not isinstance(x, torch.Tensor) or x.ndim != 4:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"x must be a 4-D tensor of shape (N, C, H, W), got {shape}.")
    if not x.is_floating_point():
        raise ValueError(f"x must be a floating point tensor, got dtype {x.dtype}.")


def _odd_kernel_size(frac, size):
    """Odd kernel size about ``frac * size``, at least 3, usable with reflect padding."""
    k = max(3, math.ceil(frac * size))
    if k % 2 == 0:
        k += 1
    # reflect padding needs k // 2 < size
    k = min(k, 2 * size - 1)
    return max(k, 1)


class SimCLRAugment(nn.Module):
    """SimCLR image augmentation, applied per sample to a batch.

    Follows the defaults of lightly's ``SimCLRTransform`` and of the SimCLR
    paper (Chen et al., 2020).  Each sample of an ``(N, C, H, W)`` batch gets,
    in this order and with its own random parameters:

    1. a random resized crop, resized back to ``(H, W)`` with bilinear
       interpolation;
    2. a horizontal flip with probability ``hflip_prob``;
    3. with probability ``jitter_prob``, a colour jitter made of brightness,
       contrast, saturation and hue changes applied in a random order drawn
       per sample (as torchvision's ``ColorJitter``);
    4. a conversion to grayscale (all three channels equal to the luma) with
       probability ``gray_prob``;
    5. a gaussian blur with probability ``blur_prob``.

    Set a probability to 0 to disable its operation.

    Parameters
    ----------
    crop_scale : tuple of float, default=(0.08, 1.0)
        Range ``(a, b)``, ``0 < a <= b <= 1``, of the crop area as a fraction
        of the image area.
    crop_ratio : tuple of float, default=(3/4, 4/3)
        Range of the crop aspect ratio (width / height); sampled
        log-uniformly.
    hflip_prob : float, default=0.5
        Probability of a horizontal flip.
    jitter_prob : float, default=0.8
        Probability of applying the colour jitter.
    jitter_strength : float, default=0.5
        Strength ``s`` of the colour jitter: the brightness, contrast and
        saturation factors are drawn uniformly from
        ``[max(0, 1 - 0.8 s), 1 + 0.8 s]`` and the hue shift from
        ``[-0.2 s, 0.2 s]`` (fraction of a full turn).  0.5 is SimCLR's
        CIFAR-10 setting; lightly's current default is 1.0.
    gray_prob : float, default=0.2
        Probability of converting to grayscale.
    blur_prob : float, default=0.5
        Probability of a gaussian blur.
    blur_sigma : tuple of float, default=(0.1, 2.0)
        Range, in pixels, from which the standard deviation of the blur is
        drawn uniformly per sample.
    blur_kernel_frac : float, default=0.1
        Size of the blur kernel as a fraction of the image side, rounded up
        to an odd number of at least 3 (and at most ``2 * side - 1``).

    Notes
    -----
    *Crop.* Crop area and log aspect ratio are drawn per sample as in
    torchvision's ``RandomResizedCrop``: ten candidates are drawn at once and
    the first that fits in the image is used; if none fits, the crop falls
    back to the whole image (centre crop with the ratio clipped to
    ``crop_ratio``).  Crop size and position are continuous (not rounded to
    whole pixels) and the crop is sampled with ``F.affine_grid`` and
    ``F.grid_sample`` (``align_corners=False``), so ``crop_scale=(1, 1)`` and
    ``crop_ratio=(1, 1)`` on a square image leave it unchanged.  Tiny images
    lose most of their content at small scales: for 8x8 digits a minimum
    scale of about 0.3-0.5 (``crop_scale=(0.4, 1.0)``) is a better choice.

    *Colour.* All colour operations are linear, so none needs clamping and
    any value range works: brightness multiplies by a factor, contrast blends
    with the mean of the image's grayscale, saturation blends with the
    grayscale image, and hue rotates the chroma plane of the YIQ colour space
    (a linear stand-in for torchvision's HSV hue shift that keeps luma
    unchanged).  Grayscale uses the ITU-R BT.601 luma weights
    ``(0.299, 0.587, 0.114)``.  Jitter and grayscale are composed into one
    affine colour map per sample, applied in a single pass.  Colour
    operations need RGB input: they are skipped when ``C != 3`` (for instance
    1-channel digits), and the other operations still apply.

    *Blur.* The blur is separable, uses reflect padding and per-sample
    kernels through grouped convolutions.  The default ``blur_sigma`` is in
    pixels as in SimCLR, so it is strong relative to tiny images.

    Examples
    --------
    >>> import torch
    >>> from noisyclf.augment import SimCLRAugment
    >>> _ = torch.manual_seed(0)
    >>> aug = SimCLRAugment()
    >>> x = torch.rand(4, 3, 32, 32)
    >>> aug(x).shape
    torch.Size([4, 3, 32, 32])
    >>> digits = 16 * torch.rand(5, 1, 8, 8)  # 1 channel: colour ops skipped
    >>> SimCLRAugment(crop_scale=(0.4, 1.0))(digits).shape
    torch.Size([5, 1, 8, 8])
    """

    def __init__(
        self,
        crop_scale=(0.08, 1.0),
        crop_ratio=(3 / 4, 4 / 3),
        hflip_prob=0.5,
        jitter_prob=0.8,
        jitter_strength=0.5,
        gray_prob=0.2,
        blur_prob=0.5,
        blur_sigma=(0.1, 2.0),
        blur_kernel_frac=0.1,
    ):
        super().__init__()
        self.crop_scale = _check_range(crop_scale, "crop_scale", upper=1.0)
        self.crop_ratio = _check_range(crop_ratio, "crop_ratio")
        self.hflip_prob = _check_prob(hflip_prob, "hflip_prob")
        self.jitter_prob = _check_prob(jitter_prob, "jitter_prob")
        jitter_strength = float(jitter_strength)
        if not jitter_strength >= 0:
            raise ValueError(f"jitter_strength must be >= 0, got {jitter_strength!r}.")
        self.jitter_strength = jitter_strength
        self.gray_prob = _check_prob(gray_prob, "gray_prob")
        self.blur_prob = _check_prob(blur_prob, "blur_prob")
        self.blur_sigma = _check_range(blur_sigma, "blur_sigma")
        blur_kernel_frac = float(blur_kernel_frac)
        if not blur_kernel_frac > 0:
            raise ValueError(f"blur_kernel_frac must be > 0, got {blur_kernel_frac!r}.")
        self.blur_kernel_frac = blur_kernel_frac

    def extra_repr(self):
        return (
            f"crop_scale={self.crop_scale}, crop_ratio={self.crop_ratio}, "
            f"hflip_prob={self.hflip_prob}, jitter_prob={self.jitter_prob}, "
            f"jitter_strength={self.jitter_strength}, gray_prob={self.gray_prob}, "
            f"blur_prob={self.blur_prob}, blur_sigma={self.blur_sigma}, "
            f"blur_kernel_frac={self.blur_kernel_frac}"
        )

    def forward(self, x):
        """Augment a batch of images.

        Parameters
        ----------
        x : torch.Tensor of shape (N, C, H, W)
            Floating point images, any value range.

        Returns
        -------
        torch.Tensor of shape (N, C, H, W)
            A new tensor with the augmented images, same dtype and device.
        """
        _check_images(x)
        if x.shape[0] == 0:
            return x.clone()
        out = self._crop_flip(x)
        if x.shape[1] == 3 and (self.jitter_prob > 0 or self.gray_prob > 0):
            out = self._colour(out)
        if self.blur_prob > 0:
            out = self._blur(out)
        return out

    # -- spatial ------------------------------------------------------------
    def _crop_flip(self, x):
        n, _, h, w = x.shape
        opts = dict(device=x.device, dtype=x.dtype)
        n_try = 10
        lo, hi = self.crop_scale
        scale = lo + (hi - lo) * torch.rand(n, n_try, **opts)
        log_lo, log_hi = math.log(self.crop_ratio[0]), math.log(self.crop_ratio[1])
        ratio = torch.exp(log_lo + (log_hi - log_lo) * torch.rand(n, n_try, **opts))
        area = scale * (h * w)
        fw = torch.sqrt(area * ratio) / w  # crop width / image width
        fh = torch.sqrt(area / ratio) / h
        valid = (fw <= 1) & (fh <= 1)
        first = valid.to(torch.uint8).argmax(dim=1, keepdim=True)
        fw = fw.gather(1, first).squeeze(1)
        fh = fh.gather(1, first).squeeze(1)
        # fallback (no candidate fits): whole image, ratio clipped to crop_ratio
        in_ratio = w / h
        if in_ratio < self.crop_ratio[0]:
            fb_w, fb_h = 1.0, (w / self.crop_ratio[0]) / h
        elif in_ratio > self.crop_ratio[1]:
            fb_w, fb_h = (h * self.crop_ratio[1]) / w, 1.0
        else:
            fb_w, fb_h = 1.0, 1.0
        any_valid = valid.any(dim=1)
        fw = torch.where(any_valid, fw, torch.full_like(fw, fb_w))
        fh = torch.where(any_valid, fh, torch.full_like(fh, fb_h))
        # centre of the crop in normalised coordinates ([-1, 1] spans the image)
        # (the fallback crop is centred)
        cx = (1 - fw) * (2 * torch.rand(n, **opts) - 1) * any_valid
        cy = (1 - fh) * (2 * torch.rand(n, **opts) - 1) * any_valid
        flip = torch.rand(n, **opts) < self.hflip_prob
        sx = torch.where(flip, -fw, fw)
        zero = torch.zeros_like(fw)
        theta = torch.stack(
            [torch.stack([sx, zero, cx], dim=1), torch.stack([zero, fh, cy], dim=1)], dim=1
        )
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)

    # -- colour -------------------------------------------------------------
    def _colour(self, x):
        n = x.shape[0]
        opts = dict(device=x.device, dtype=x.dtype)
        eye = torch.eye(3, **opts)
        A = eye.expand(n, 3, 3)
        t = torch.zeros(n, 3, **opts)
        wts = torch.tensor(_GRAY_WEIGHTS, **opts)
        ones = torch.ones(3, **opts)
        gray_map = torch.outer(ones, wts)  # rgb -> (luma, luma, luma)

        if self.jitter_prob > 0 and self.jitter_strength > 0:
            s = self.jitter_strength
            apply = torch.rand(n, **opts) < self.jitter_prob

            def factor(spread):
                low = max(0.0, 1.0 - spread)
                f = low + (1.0 + spread - low) * torch.rand(n, **opts)
                return torch.where(apply, f, torch.ones_like(f))

            bright = factor(0.8 * s)
            contrast = factor(0.8 * s)
            sat = factor(0.8 * s)
            hue = 0.2 * s * (2 * torch.rand(n, **opts) - 1)
            hue = torch.where(apply, hue, torch.zeros_like(hue))
            angle = 2 * math.pi * hue
            cos, sin = torch.cos(angle), torch.sin(angle)
            rot = torch.zeros(n, 3, 3, **opts)
            rot[:, 0, 0] = 1
            rot[:, 1, 1] = cos
            rot[:, 1, 2] = -sin
            rot[:, 2, 1] = sin
            rot[:, 2, 2] = cos
            hue_map = _YIQ_TO_RGB.to(**opts) @ rot @ _RGB_TO_YIQ.to(**opts)

            # channel means of the (cropped) input: contrast blends with the
            # mean luma of the image *as transformed so far*, which is affine
            # in these means.
            m0 = x.mean(dim=(2, 3))
            order = torch.rand(n, 4, device=x.device).argsort(dim=1)
            for step in range(4):
                b = bright[:, None]
                c = contrast[:, None]
                sa = sat[:, None]
                mean_luma = ((A @ m0[:, :, None]).squeeze(2) + t) @ wts  # (n,)
                cand_A = torch.stack(
                    [
                        b[:, :, None] * A,
                        c[:, :, None] * A,
                        sa[:, :, None] * A + (1 - sa[:, :, None]) * (gray_map @ A),
                        hue_map @ A,
                    ]
                )
                cand_t = torch.stack(
                    [
                        b * t,
                        c * t + (1 - c) * mean_luma[:, None],
                        sa * t + (1 - sa) * (t @ wts)[:, None],
                        (hue_map @ t[:, :, None]).squeeze(2),
                    ]
                )
                pick = order[:, step]
                idx = torch.arange(n, device=x.device)
                A = cand_A[pick, idx]
                t = cand_t[pick, idx]

        if self.gray_prob > 0:
            to_gray = (torch.rand(n, **opts) < self.gray_prob)[:, None]
            A = torch.where(to_gray[:, :, None], gray_map @ A, A)
            t = torch.where(to_gray, (t @ wts)[:, None].expand(n, 3), t)

        return torch.einsum("nij,njhw->nihw", A, x) + t[:, :, None, None]

    # -- blur ---------------------------------------------------------------
    def _blur(self, x):
        n, c, h, w = x.shape
        opts = dict(device=x.device, dtype=x.dtype)
        lo, hi = self.blur_sigma
        sigma = lo + (hi - lo) * torch.rand(n, **opts)
        apply = torch.rand(n, **opts) < self.blur_prob
        out = x.reshape(1, n * c, h, w)
        blurred = False
        for dim, size in ((3, w), (2, h)):
            k = _odd_kernel_size(self.blur_kernel_frac, size)
            if k < 3:
                continue
            half = k // 2
            pos = torch.arange(-half, half + 1, **opts)
            kern = torch.exp(-(pos[None, :] ** 2) / (2 * sigma[:, None] ** 2))
            kern = kern / kern.sum(dim=1, keepdim=True)
            delta = (pos == 0).to(x.dtype).expand(n, k)
            kern = torch.where(apply[:, None], kern, delta)
            kern = kern.repeat_interleave(c, dim=0)  # (n * c, k)
            if dim == 3:
                weight = kern[:, None, None, :]
                pad = (half, half, 0, 0)
            else:
                weight = kern[:, None, :, None]
                pad = (0, 0, half, half)
            out = F.conv2d(F.pad(out, pad, mode="reflect"), weight, groups=n * c)
            blurred = True
        return out.reshape(n, c, h, w) if blurred else x.clone()


class WeakAugment(nn.Module):
    """Standard supervised image augmentation: padded random crop and flip.

    Each sample of an ``(N, C, H, W)`` batch is padded, cropped back to
    ``(H, W)`` at a random integer offset drawn per sample (a random
    translation by at most ``crop_padding`` pixels) and flipped horizontally
    with probability ``hflip_prob``.  Implemented with a single gather.

    Parameters
    ----------
    crop_padding : int or None, default=None
        Padding, in pixels, on each side before the crop.  ``None`` uses
        ``H // 8`` vertically and ``W // 8`` horizontally (4 for 32x32
        images, 1 for 8x8 digits).  0 disables the crop.
    hflip_prob : float, default=0.5
        Probability of a horizontal flip.
    padding_mode : {"reflect", "zeros"}, default="reflect"
        How the border is filled.  ``"reflect"`` does not depend on the value
        range of the input; ``"zeros"`` is torchvision's ``RandomCrop``
        default for images in [0, 1].

    Examples
    --------
    >>> import torch
    >>> from noisyclf.augment import WeakAugment
    >>> _ = torch.manual_seed(0)
    >>> x = torch.rand(4, 3, 32, 32)
    >>> WeakAugment()(x).shape
    torch.Size([4, 3, 32, 32])
    >>> WeakAugment(crop_padding=0, hflip_prob=1.0)(x).equal(x.flip(-1))
    True
    """

    def __init__(self, crop_padding=None, hflip_prob=0.5, padding_mode="reflect"):
        super().__init__()
        if crop_padding is not None:
            bad = isinstance(crop_padding, bool) or int(crop_padding) != crop_padding
            if bad or crop_padding < 0:
                raise ValueError(
                    f"crop_padding must be None or an integer >= 0, got {crop_padding!r}."
                )
            crop_padding = int(crop_padding)
        self.crop_padding = crop_padding
        self.hflip_prob = _check_prob(hflip_prob, "hflip_prob")
        if padding_mode not in ("reflect", "zeros"):
            raise ValueError(
                f"padding_mode must be 'reflect' or 'zeros', got {padding_mode!r}."
            )
        self.padding_mode = padding_mode

    def extra_repr(self):
        return (
            f"crop_padding={self.crop_padding}, hflip_prob={self.hflip_prob}, "
            f"padding_mode={self.padding_mode!r}"
        )

    def forward(self, x):
        """Augment a batch of images.

        Parameters
        ----------
        x : torch.Tensor of shape (N, C, H, W)
            Images, any value range.

        Returns
        -------
        torch.Tensor of shape (N, C, H, W)
            A new tensor with the augmented images, same dtype and device.
        """
        _check_images(x)
        n, c, h, w = x.shape
        if self.crop_padding is None:
            ph, pw = h // 8, w // 8
        else:
            ph = pw = self.crop_padding
        if self.padding_mode == "reflect" and (ph >= h or pw >= w):
            raise ValueError(
                f"crop_padding={self.crop_padding} is too large for reflect padding of "
                f"{h}x{w} images in x; use padding_mode='zeros' or a smaller crop_padding."
            )
        if ph or pw:
            mode = "reflect" if self.padding_mode == "reflect" else "constant"
            padded = F.pad(x, (pw, pw, ph, ph), mode=mode)
        else:
            padded = x
        dev = x.device
        oy = torch.randint(0, 2 * ph + 1, (n, 1), device=dev)
        ox = torch.randint(0, 2 * pw + 1, (n, 1), device=dev)
        flip = torch.rand(n, 1, device=dev) < self.hflip_prob
        ar_h = torch.arange(h, device=dev)
        ar_w = torch.arange(w, device=dev)
        rows = oy + ar_h  # (n, h)
        cols = ox + torch.where(flip, ar_w.flip(0), ar_w)  # (n, w)
        batch = torch.arange(n, device=dev)[:, None, None]
        # advanced indices on dims 0, 2, 3 -> result (n, h, w, c)
        out = padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]]
        return out.permute(0, 3, 1, 2).contiguous()


class FeatureCorruption(nn.Module):
    """SCARF feature corruption for tabular data (Bahri et al., 2022).

    For every row of an ``(N, D)`` batch, a subset of exactly
    ``round(corruption_rate * D)`` features (Python rounding), chosen
    uniformly at random per row, is replaced by draws from the empirical
    marginal distribution of each feature.  The marginal is estimated by the
    current batch: the replacement for entry ``(i, j)`` is ``x[r, j]`` with
    ``r`` drawn uniformly, per entry, from the *other* rows of the batch
    (``r != i``, so that a corrupted entry really comes from another sample).
    With shuffled mini-batches the batch is a random sample of the training
    set, so this approximates SCARF's draw from the training-set marginal.

    Parameters
    ----------
    corruption_rate : float, default=0.6
        Fraction of the features replaced in each row, in [0, 1].  SCARF's
        default is 0.6.

    Notes
    -----
    A batch with a single row has no other row to draw from and is returned
    unchanged (as a copy), as is any batch when the number of corrupted
    features is 0.

    References
    ----------
    D. Bahri, H. Jiang, Y. Tay and D. Metzler, "SCARF: Self-Supervised
    Contrastive Learning using Random Feature Corruption", ICLR 2022,
    arXiv:2106.15147.

    Examples
    --------
    >>> import torch
    >>> from noisyclf.augment import FeatureCorruption
    >>> _ = torch.manual_seed(0)
    >>> x = torch.randn(4, 5)
    >>> out = FeatureCorruption(corruption_rate=0.4)(x)
    >>> out.shape
    torch.Size([4, 5])
    >>> (out != x).sum(dim=1).tolist()  # round(0.4 * 5) = 2 per row
    [2, 2, 2, 2]
    """

    def __init__(self, corruption_rate=0.6):
        super().__init__()
        self.corruption_rate = _check_prob(corruption_rate, "corruption_rate")

    def extra_repr(self):
        return f"corruption_rate={self.corruption_rate}"

    def forward(self, x):
        """Corrupt a batch of tabular rows.

        Parameters
        ----------
        x : torch.Tensor of shape (N, D)
            Feature matrix.

        Returns
        -------
        torch.Tensor of shape (N, D)
            A new tensor with the corrupted rows, same dtype and device.
        """
        if not isinstance(x, torch.Tensor) or x.ndim != 2:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"x must be a 2-D tensor of shape (N, D), got {shape}.")
        n, d = x.shape
        k = round(self.corruption_rate * d)
        if n < 2 or k == 0:
            return x.clone()
        dev = x.device
        chosen = torch.rand(n, d, device=dev).argsort(dim=1)[:, :k]
        mask = torch.zeros(n, d, dtype=torch.bool, device=dev)
        mask.scatter_(1, chosen, True)
        # a uniformly random row other than i: (i + U{1..n-1}) mod n
        rows = torch.arange(n, device=dev)[:, None]
        src = (rows + torch.randint(1, n, (n, d), device=dev)) % n
        replacement = x.gather(0, src)
        return torch.where(mask, replacement, x)


def make_augmenter(kind, **kwargs):
    """Build an augmentation module from its name.

    Parameters
    ----------
    kind : {"simclr", "weak", "tabular", "none"}
        ``"simclr"`` gives :class:`SimCLRAugment`, ``"weak"``
        :class:`WeakAugment`, ``"tabular"`` :class:`FeatureCorruption` and
        ``"none"`` a ``torch.nn.Identity`` (which takes no arguments).
    **kwargs
        Passed to the constructor of the module.

    Returns
    -------
    torch.nn.Module
        The augmentation module.

    Raises
    ------
    ValueError
        If ``kind`` is not one of the names above.

    Examples
    --------
    >>> from noisyclf.augment import make_augmenter
    >>> make_augmenter("tabular", corruption_rate=0.3)
    FeatureCorruption(corruption_rate=0.3)
    >>> make_augmenter("none")
    Identity()
    """
    builders = {
        "simclr": SimCLRAugment,
        "weak": WeakAugment,
        "tabular": FeatureCorruption,
    }
    if kind == "none":
        if kwargs:
            raise TypeError(
                f"make_augmenter('none') takes no keyword arguments, got {sorted(kwargs)}."
            )
        return nn.Identity()
    if not isinstance(kind, str) or kind not in builders:
        raise ValueError(
            f"kind must be one of 'simclr', 'weak', 'tabular' or 'none', got {kind!r}."
        )
    return builders[kind](**kwargs)
