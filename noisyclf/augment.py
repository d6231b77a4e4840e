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
  build the two views of contrastive pre-training.  Its colour operations
  reproduce, per sample, torchvision's ``adjust_brightness``,
  ``adjust_contrast``, ``adjust_saturation``, ``adjust_hue`` and
  ``rgb_to_grayscale`` (``torchvision.transforms.v2.functional``),
  including their clamping to the image's value range.
* :class:`WeakAugment` -- the standard supervised image augmentation (random
  crop with padding, horizontal flip).
* :class:`FeatureCorruption` -- the SCARF feature corruption for tabular
  data (Bahri et al., 2022).
* :func:`make_augmenter` -- build one of the above from a short name.

Only the colour operations of :class:`SimCLRAugment` depend on the value
range of the images: they clamp to its ``value_range`` parameter (default
``(0, 1)``; ``None`` disables clamping).  All the other operations (crops,
flips, blur, feature corruption) only move or average existing values, so
inputs may have any float range (for instance 0..16 pixel values of the
scikit-learn digits, or standardised values).
"""

import math

import torch
from torch import nn
import torch.nn.functional as F

__all__ = ["SimCLRAugment", "WeakAugment", "FeatureCorruption", "make_augmenter"]


# Luma weights of torchvision's ``rgb_to_grayscale`` (ITU-R BT.601, with
# torchvision's 0.2989 for red).
_GRAY_WEIGHTS = (0.2989, 0.587, 0.114)
# The four colour-jitter operations, in the index order used by ``order``.
_JITTER_OPS = ("brightness", "contrast", "saturation", "hue")
# SimCLR uses no gaussian blur on images this small (its CIFAR-10 setting).
_AUTO_BLUR_MAX_SIDE = 32
_AUTO_BLUR_PROB = 0.5


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


def _check_value_range(value):
    """Validate ``value_range``: None or a pair ``(lo, hi)`` of finite numbers, lo < hi."""
    if value is None:
        return None
    msg = (
        "value_range must be None or a pair (lo, hi) of finite numbers with lo < hi, "
        f"got {value!r}."
    )
    if isinstance(value, (str, bytes)):
        raise ValueError(msg)
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(msg) from None
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ValueError(msg)
    return (lo, hi)


# -- colour operations --------------------------------------------------------
#
# Per-sample versions of torchvision.transforms.v2.functional's colour kernels
# for float images in [0, 1].  ``img`` is (N, 3, H, W) and ``factor`` (N,),
# one value per sample.  ``clamp=False`` skips the clamp to [0, 1] (used when
# SimCLRAugment has ``value_range=None``).  Functions whose name ends with an
# underscore work in place (few large temporaries: on CPU, every fresh large
# buffer costs page faults); the others return new tensors.

# ``kind`` codes of _blend_step_; their order is that of _JITTER_OPS.
_BRIGHTNESS, _CONTRAST, _SATURATION, _HUE = range(4)


def _rgb_to_gray(img):
    """Luma ``0.2989 R + 0.587 G + 0.114 B`` as (N, 1, H, W) (torchvision's weights)."""
    r, g, b = img.unbind(dim=1)
    wr, wg, wb = _GRAY_WEIGHTS
    return (r * wr).add_(g, alpha=wg).add_(b, alpha=wb).unsqueeze(1)


def _rgb_to_grayscale(img):
    """``rgb_to_grayscale(img, num_output_channels=3)``: the luma in all 3 channels."""
    return _rgb_to_gray(img).expand(-1, 3, -1, -1).contiguous()


def _blend_step_(img, factor, kind, clamp=True):
    """Brightness, contrast or saturation change chosen per sample, in place.

    Sample ``i`` gets ``adjust_brightness`` (``kind[i] == 0``),
    ``adjust_contrast`` (1) or ``adjust_saturation`` (2) with factor
    ``factor[i]``.  All three are torchvision's
    ``_blend(img, ref, f) = clamp(f img + (1 - f) ref, 0, 1)`` with ``ref``
    = 0 (brightness: plain scaling), the mean over the image of its
    grayscale (contrast) or the grayscale image (saturation), so a single
    fused pass does them all.
    """
    view = (-1, 1, 1, 1)
    rest = 1.0 - factor  # weight of ref
    gray = _rgb_to_gray(img)
    mean = gray.mean(dim=(1, 2, 3), keepdim=True)
    w_gray = (rest * (kind == _SATURATION).to(img.dtype)).view(view)
    w_mean = (rest * (kind == _CONTRAST).to(img.dtype)).view(view)
    ref = gray.mul_(w_gray).add_(mean * w_mean)  # (1 - f) ref, 0 for brightness
    img.mul_(factor.view(view)).add_(ref)
    if clamp:
        img.clamp_(0.0, 1.0)
    return img


def _adjust_brightness(img, factor, clamp=True):
    """``adjust_brightness``: ``clamp(f img, 0, 1)``."""
    kind = torch.full(factor.shape, _BRIGHTNESS, device=factor.device)
    return _blend_step_(img.clone(), factor, kind, clamp)


def _adjust_contrast(img, factor, clamp=True):
    """``adjust_contrast``: blend with the mean of the image's grayscale, clamp to [0, 1]."""
    kind = torch.full(factor.shape, _CONTRAST, device=factor.device)
    return _blend_step_(img.clone(), factor, kind, clamp)


def _adjust_saturation(img, factor, clamp=True):
    """``adjust_saturation``: blend with the image's grayscale, clamp to [0, 1]."""
    kind = torch.full(factor.shape, _SATURATION, device=factor.device)
    return _blend_step_(img.clone(), factor, kind, clamp)


def _adjust_hue_(img, shift):
    """``adjust_hue`` in place: RGB -> HSV, hue + ``shift`` modulo 1, HSV -> RGB.

    The RGB -> HSV conversion follows torchvision's ``_rgb_to_hsv`` (after
    Pillow): with ``V`` and ``m`` the maximum and minimum of the pixel's
    channels, the hue in sextants (units of 60 degrees) is
    ``(G - B) / (V - m)`` if red is the maximum, ``2 + (B - R) / (V - m)``
    if green is, else ``4 + (R - G) / (V - m)``.  HSV -> RGB uses the closed
    form equivalent to torchvision's ``_hsv_to_rgb`` table,
    ``channel = V - (V - m) clip(min(k, 4 - k), 0, 1)`` with
    ``k = (n + 6 H) mod 6`` and ``n = 5, 3, 1`` for R, G, B.  The result
    keeps each pixel's channel minimum and maximum, so it needs no clamping,
    and the shift commutes with any rescaling ``a x + b`` (``a > 0``) of
    the values: it works for any value range.  Grey pixels are unchanged.
    """
    r, g, b = img.unbind(dim=1)
    maxc = img.amax(dim=1)
    span = img.amin(dim=1).neg_().add_(maxc)  # V - m
    hue = torch.sub(g, b)  # numerator if red is the maximum
    tmp = torch.sub(b, r).add_(span, alpha=2.0)  # if green is
    tmp2 = torch.sub(r, g).add_(span, alpha=4.0)  # if blue is
    # select without torch.where (slow on CPU): sign(V - c) is 0 where channel
    # c is the maximum and 1 elsewhere, and lerp with weight 0 / 1 returns
    # exactly its first / second argument
    not_max = torch.sub(maxc, g).sign_()
    tmp.lerp_(tmp2, not_max)  # green, else blue
    hue.lerp_(tmp, torch.sub(maxc, r, out=not_max).sign_())  # red, else the above
    # grey pixels: span = 0 and hue = G - B = 0, so any positive divisor works
    hue.div_(torch.clamp_min(span, torch.finfo(img.dtype).tiny, out=tmp2))
    hue.add_((6.0 * shift).view(-1, 1, 1))  # shift in sextants
    hue.sub_(torch.div(hue, 6.0, out=tmp).floor_(), alpha=6.0)  # modulo 6, in [0, 6)
    # HSV -> RGB: with k = (6 H + n) mod 6, min(k, 4 - k) = 2 - d where
    # d = ||v| - 3| is the distance from k to 2 around the circle of
    # length 6, for v = 6 H + n - 5 in [-4, 6); then
    # V - span * clip(2 - d, 0, 1) = (V - 2 span) + span * clip(d, 1, 2).
    # Written channel by channel into img (whose values are no longer used).
    base = maxc.sub_(span, alpha=2.0)
    for c, offset in enumerate((0.0, -2.0, -4.0)):
        dist = torch.add(hue, offset, out=tmp).abs_().sub_(3.0).abs_().clamp_(1.0, 2.0)
        torch.addcmul(base, span, dist, out=img[:, c])
    return img


def _adjust_hue(img, shift):
    """``adjust_hue`` with a per-sample ``shift`` (new tensor)."""
    return _adjust_hue_(img.clone(), shift)


def _jitter_sort_key(params):
    """Sort key of the samples for :func:`_color_jitter_sorted_`.

    ``3 - (position of the hue shift in the sample's order)`` for jittered
    samples (0: hue shift last, ..., 3: first), 4 for the others.
    """
    hue_pos = (params["order"] == _HUE).to(torch.uint8).argmax(dim=1)
    return torch.where(params["jitter"], 3 - hue_pos, 4)


def _color_jitter_sorted_(img, params, counts, clamp=True):
    """Per-sample ``ColorJitter`` with explicit parameters, in place.

    ``params`` holds the factors ``brightness``, ``contrast``,
    ``saturation``, the shift ``hue`` and ``order`` ((N, 4) permutations of
    the indices of ``_JITTER_OPS``): each jittered sample gets the four
    operations in the order ``order[i]``.  The rows of ``img`` and
    ``params`` must be sorted by :func:`_jitter_sort_key`, and
    ``counts[k]`` is the number of rows with key ``k`` (0 to 3; rows after
    these, with key 4, are left unchanged).

    Vectorised: sorted this way, the samples that have a brightness /
    contrast / saturation step before their hue shift at step ``j`` form a
    leading block of rows, those with a step after it at step ``j`` a
    trailing block of the jittered rows.  So the (at most three) steps
    before the hue shift run as fused passes on leading slices, the hue
    shift runs once on all jittered rows, and the steps after it run on
    trailing slices; every sample does its own operation at each step.
    """
    order = params["order"]
    factors = torch.stack([params[name] for name in _JITTER_OPS[:3]], dim=1)  # (N, 3)
    cum = [0]
    for c in counts[:4]:
        cum.append(cum[-1] + c)
    n_jitter = cum[4]

    def step(j, start, stop):
        if stop > start:
            kind = order[start:stop, j]
            factor = factors[start:stop].gather(1, kind[:, None]).squeeze(1)
            _blend_step_(img[start:stop], factor, kind, clamp)

    for j in range(3):  # steps before the hue shift: rows with key < 3 - j
        step(j, 0, cum[3 - j])
    if n_jitter > 0:
        _adjust_hue_(img[:n_jitter], params["hue"][:n_jitter])
    for j in range(1, 4):  # steps after it: jittered rows with key >= 4 - j
        step(j, cum[4 - j], n_jitter)
    return img


class SimCLRAugment(nn.Module):
    """SimCLR image augmentation, applied per sample to a batch.

    Follows the defaults of lightly's ``SimCLRTransform`` and of the SimCLR
    paper (Chen et al., 2020), with the colour operations of torchvision's
    ``ColorJitter`` and ``RandomGrayscale``.  Each sample of an
    ``(N, C, H, W)`` batch gets, in this order and with its own random
    parameters:

    1. a random resized crop, resized back to ``(H, W)`` with bilinear
       interpolation;
    2. a horizontal flip with probability ``hflip_prob``;
    3. with probability ``jitter_prob``, a colour jitter: brightness,
       contrast, saturation and hue changes applied in a random order drawn
       per sample, as torchvision's ``ColorJitter`` (which draws the order
       per call with ``torch.randperm(4)``);
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
        Strength ``s`` of the colour jitter, as in SimCLR's
        ``ColorJitter(0.8 s, 0.8 s, 0.8 s, 0.2 s)``: the brightness, contrast
        and saturation factors are drawn uniformly from
        ``[max(0, 1 - 0.8 s), 1 + 0.8 s]`` and the hue shift from
        ``[-min(0.2 s, 0.5), min(0.2 s, 0.5)]`` (fraction of a full turn;
        torchvision allows at most 0.5).  0.5 is SimCLR's CIFAR-10 setting;
        lightly's current default is 1.0.
    gray_prob : float, default=0.2
        Probability of converting to grayscale.
    blur_prob : float or "auto", default="auto"
        Probability of a gaussian blur.  ``"auto"`` follows SimCLR: 0.5 for
        images whose smaller side is larger than 32 pixels, and 0 (no blur)
        for images of 32x32 pixels or smaller, such as CIFAR-10 or the 8x8
        digits.
    blur_sigma : tuple of float, default=(0.1, 2.0)
        Range, in pixels, from which the standard deviation of the blur is
        drawn uniformly per sample.
    blur_kernel_frac : float, default=0.1
        Size of the blur kernel as a fraction of the image side, rounded up
        to an odd number of at least 3 (and at most ``2 * side - 1``).
    value_range : tuple of float or None, default=(0.0, 1.0)
        Range ``(lo, hi)``, ``lo < hi``, of the pixel values, used by the
        colour operations only: they work on ``(x - lo) / (hi - lo)``
        clipped to [0, 1], clamp as torchvision does for float images in
        [0, 1], and map the result back to ``[lo, hi]``.  Use
        ``(0, 1)`` for images scaled to [0, 1] (for instance uint8 images
        divided by 255), ``(0, 255)`` for unscaled 8-bit values, ``(0, 16)``
        for the scikit-learn digits.  ``None`` applies the same operations
        to ``x`` itself without any clamping (for data with no natural
        range, such as standardised images); brightness then scales around
        0.

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

    *Colour.* With ``z = (x - lo) / (hi - lo)``, each operation matches the
    float-image kernel of ``torchvision.transforms.v2.functional`` with the
    sample's own factor (up to float rounding):

    * brightness, ``adjust_brightness``: ``clamp(f z, 0, 1)``;
    * contrast, ``adjust_contrast``: ``clamp(f z + (1 - f) m, 0, 1)`` where
      ``m`` is the mean over the image of its grayscale;
    * saturation, ``adjust_saturation``: ``clamp(f z + (1 - f) g, 0, 1)``
      where ``g`` is the grayscale of ``z``;
    * hue, ``adjust_hue``: RGB -> HSV, hue shifted modulo 1, HSV -> RGB;
    * grayscale, ``rgb_to_grayscale(z, num_output_channels=3)``, with the
      weights ``(0.2989, 0.587, 0.114)`` (ITU-R BT.601).

    Samples that get no colour operation (neither jitter nor grayscale) are
    left exactly unchanged.  The others are first clipped to
    ``value_range`` (``z`` clipped to [0, 1]; this changes nothing for
    inputs in the range, and makes the result independent of how far
    outside it a value lies), go through their operations, and are mapped
    back and clamped to ``value_range``, so that every output of a colour
    operation lies in ``value_range``.  With ``value_range=None`` nothing is
    clipped or clamped and the operations apply to ``x`` itself (the hue
    shift keeps each pixel's channel minimum and maximum, so it works for
    any range).

    The operations are vectorised over the batch, with no Python loop over
    the samples.  The jitter order is a random permutation per sample (as
    torchvision's ``ColorJitter`` draws one per call).  The samples are
    sorted by the position of the hue shift in their order; then the (at
    most three) brightness / contrast / saturation steps before the hue
    shift, the hue shift, and the steps after it each run as one fused pass
    over a contiguous block of samples, each sample with its own operation
    and factor.  Colour operations need RGB input: they are skipped when
    ``C != 3`` (for instance 1-channel digits), and the other operations
    still apply.

    *Blur.* The blur is separable, uses reflect padding and per-sample
    kernels through grouped convolutions.  The default ``blur_sigma`` is in
    pixels as in SimCLR, so it is strong relative to tiny images.  SimCLR
    applies no blur to CIFAR-10: the CIFAR-10 command of the reference
    implementation (github.com/google-research/simclr, ``README.md``)
    passes ``--use_blur=False`` (``model.py`` applies ``batch_random_blur``
    only when ``use_blur`` is set), while its ImageNet runs (224x224) blur
    with probability 0.5; ``blur_prob="auto"`` picks between the two from
    the image size.

    References
    ----------
    T. Chen, S. Kornblith, M. Norouzi and G. Hinton, "A Simple Framework for
    Contrastive Learning of Visual Representations", ICML 2020,
    arXiv:2002.05709.

    Examples
    --------
    >>> import torch
    >>> from noisyclf.augment import SimCLRAugment
    >>> _ = torch.manual_seed(0)
    >>> aug = SimCLRAugment()
    >>> x = torch.rand(4, 3, 32, 32)
    >>> aug(x).shape
    torch.Size([4, 3, 32, 32])
    >>> pixels = 255 * torch.rand(4, 3, 32, 32)  # unscaled 8-bit values
    >>> out = SimCLRAugment(value_range=(0, 255), jitter_strength=1.0)(pixels)
    >>> bool(out.min() >= 0) and bool(out.max() <= 255)
    True
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
        blur_prob="auto",
        blur_sigma=(0.1, 2.0),
        blur_kernel_frac=0.1,
        value_range=(0.0, 1.0),
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
        if isinstance(blur_prob, str):
            if blur_prob != "auto":
                raise ValueError(
                    f"blur_prob must be 'auto' or a number in [0, 1], got {blur_prob!r}."
                )
            self.blur_prob = blur_prob
        else:
            self.blur_prob = _check_prob(blur_prob, "blur_prob")
        self.blur_sigma = _check_range(blur_sigma, "blur_sigma")
        blur_kernel_frac = float(blur_kernel_frac)
        if not blur_kernel_frac > 0:
            raise ValueError(f"blur_kernel_frac must be > 0, got {blur_kernel_frac!r}.")
        self.blur_kernel_frac = blur_kernel_frac
        self.value_range = _check_value_range(value_range)

    def extra_repr(self):
        return (
            f"crop_scale={self.crop_scale}, crop_ratio={self.crop_ratio}, "
            f"hflip_prob={self.hflip_prob}, jitter_prob={self.jitter_prob}, "
            f"jitter_strength={self.jitter_strength}, gray_prob={self.gray_prob}, "
            f"blur_prob={self.blur_prob!r}, blur_sigma={self.blur_sigma}, "
            f"blur_kernel_frac={self.blur_kernel_frac}, value_range={self.value_range}"
        )

    def forward(self, x):
        """Augment a batch of images.

        Parameters
        ----------
        x : torch.Tensor of shape (N, C, H, W)
            Floating point images, with values in ``value_range`` (any
            range when ``value_range`` is None).

        Returns
        -------
        torch.Tensor of shape (N, C, H, W)
            A new tensor with the augmented images, same dtype and device.
        """
        _check_images(x)
        if x.shape[0] == 0:
            return x.clone()
        out = self._crop_flip(x)
        if x.shape[1] == 3 and (self._jitter_enabled() or self.gray_prob > 0):
            params = self._draw_colour_params(x.shape[0], x.device, x.dtype)
            out = self._apply_colour(out, params)
        blur_prob = self._blur_prob_for(x.shape[2], x.shape[3])
        if blur_prob > 0:
            out = self._blur(out, blur_prob)
        return out

    def _blur_prob_for(self, h, w):
        """Blur probability for ``h x w`` images (resolves ``blur_prob="auto"``)."""
        if self.blur_prob == "auto":
            return _AUTO_BLUR_PROB if min(h, w) > _AUTO_BLUR_MAX_SIDE else 0.0
        return self.blur_prob

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
    def _jitter_enabled(self):
        return self.jitter_prob > 0 and self.jitter_strength > 0

    def _draw_colour_params(self, n, device, dtype):
        """Draw the per-sample colour parameters of a batch of ``n`` images.

        Returns a dict of tensors of length ``n``: ``"jitter"`` and
        ``"gray"`` (bool, whether the sample gets the colour jitter /
        the grayscale conversion), ``"brightness"``, ``"contrast"``,
        ``"saturation"`` (factors) and ``"hue"`` (shift), and ``"order"``
        (``(n, 4)`` long, a permutation of the indices of ``_JITTER_OPS``
        per sample: the order in which the jitter operations are applied).
        """
        opts = dict(device=device, dtype=dtype)
        s = self.jitter_strength
        if self._jitter_enabled():
            jitter = torch.rand(n, **opts) < self.jitter_prob

            def factor(spread):
                low = max(0.0, 1.0 - spread)
                return low + (1.0 + spread - low) * torch.rand(n, **opts)

            brightness = factor(0.8 * s)
            contrast = factor(0.8 * s)
            saturation = factor(0.8 * s)
            hue = min(0.2 * s, 0.5) * (2 * torch.rand(n, **opts) - 1)
            order = torch.rand(n, 4, device=device).argsort(dim=1)
        else:
            jitter = torch.zeros(n, dtype=torch.bool, device=device)
            brightness = contrast = saturation = torch.ones(n, **opts)
            hue = torch.zeros(n, **opts)
            order = torch.arange(4, device=device).expand(n, 4)
        if self.gray_prob > 0:
            gray = torch.rand(n, **opts) < self.gray_prob
        else:
            gray = torch.zeros(n, dtype=torch.bool, device=device)
        return dict(
            jitter=jitter,
            gray=gray,
            brightness=brightness,
            contrast=contrast,
            saturation=saturation,
            hue=hue,
            order=order,
        )

    def _apply_colour(self, x, params):
        """Apply the colour operations described by ``params`` to RGB images ``x``.

        ``params`` is a dict as returned by :meth:`_draw_colour_params`.
        Samples with neither jitter nor grayscale are returned unchanged;
        the others are clipped to ``value_range``, transformed as
        torchvision would transform ``(x - lo) / (hi - lo)``, mapped back and
        clamped to ``value_range``.  Returns a new tensor; ``x`` is not
        modified.
        """
        jitter = params["jitter"] if self._jitter_enabled() else torch.zeros_like(params["gray"])
        params = dict(params, jitter=jitter)
        # samples sorted for _color_jitter_sorted_, the ones without any
        # colour operation (key 5) last and left out
        key = torch.where(jitter | params["gray"], _jitter_sort_key(params), 5)
        counts = torch.bincount(key, minlength=6).tolist()
        n_selected = sum(counts[:5])
        if n_selected == 0:
            return x.clone()
        selected = key.argsort(stable=True)[:n_selected]
        params = {name: value[selected] for name, value in params.items()}
        z = x.index_select(0, selected)
        vr = self.value_range
        clamp = vr is not None
        if clamp:
            lo, hi = vr
            if vr != (0.0, 1.0):
                z.sub_(lo).div_(hi - lo)
            z.clamp_(0.0, 1.0)
        if self._jitter_enabled():
            _color_jitter_sorted_(z, params, counts, clamp)
        rows = params["gray"].nonzero().squeeze(1)
        if rows.numel() > 0:
            z.index_copy_(0, rows, _rgb_to_grayscale(z.index_select(0, rows)))
        if clamp:  # map back; the clamp only removes rounding errors
            if vr != (0.0, 1.0):
                z.mul_(hi - lo).add_(lo)
            z.clamp_(lo, hi)
        # samples that got no colour operation are returned unchanged
        return x.index_copy(0, selected, z)

    # -- blur ---------------------------------------------------------------
    def _blur(self, x, prob):
        n, c, h, w = x.shape
        opts = dict(device=x.device, dtype=x.dtype)
        lo, hi = self.blur_sigma
        sigma = lo + (hi - lo) * torch.rand(n, **opts)
        apply = torch.rand(n, **opts) < prob
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
        Passed to the constructor of the module, for instance
        ``value_range=(0, 255)`` or ``blur_prob=0.0`` for ``"simclr"``.

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
