"""Caching of the label-free SimCLR pre-training (phase a1) with :class:`joblib.Memory` (private).

a1 depends on the images, the encoder and the pre-training hyperparameters,
never on the labels, so a grid over ``lr``, ``loss`` or any later-phase
hyperparameter pre-trains once per fold when the estimator gets ``memory=``.
"""

import os

import torch
from torch import nn

__all__ = ["cached_call", "encoder_cache_key", "resolve_memory"]


def resolve_memory(memory):
    """The :class:`joblib.Memory` of the ``memory`` hyperparameter (None: no caching)."""
    if memory is None:
        return None
    if hasattr(memory, "cache"):
        return memory
    from joblib import Memory
    return Memory(location=os.fspath(memory), verbose=0)


def encoder_cache_key(encoder, encoder_kwargs):
    """What identifies ``encoder`` in a1's cache key.

    A built-in encoder by its name; a module class by its import path (its
    ``encoder__*`` keyword arguments are a separate argument of the cached
    call); a module instance by its class, its ``repr`` (the architecture)
    and a hash of the bytes of every tensor of its ``state_dict`` (the
    starting weights), so that another instance or the same one with other
    weights never reuses a cached pre-training.
    """
    if isinstance(encoder, str):
        return encoder
    cls = encoder if isinstance(encoder, type) else type(encoder)
    key = (cls.__module__, cls.__qualname__)
    if isinstance(encoder, nn.Module):
        import joblib

        def tensor_key(t):
            if isinstance(t, nn.parameter.UninitializedTensorMixin):  # lazy modules
                return "uninitialized"
            return (str(t.dtype), tuple(t.shape),
                    t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy())

        weights = {name: tensor_key(t) for name, t in encoder.state_dict().items()}
        key += (repr(encoder), joblib.hash(weights))
    return key


def cached_call(memory, func, args, kwargs, *, ignore=(), check_loaded=False, keep=None):
    """``(func(*args, **kwargs), loaded)``, the call cached in ``memory`` (None: not cached).

    ``ignore`` names the arguments left out of the cache key (they must be
    stood for by other arguments).  ``loaded`` says whether the result came
    from the cache; it is only looked up with ``check_loaded`` (it hashes the
    arguments once more), else False.  A result for which ``keep(result)``
    is false is removed from the cache after the call (an interrupted run
    must not be reused).
    """
    if memory is None:
        return func(*args, **kwargs), False
    cached = memory.cache(func, ignore=list(ignore))
    loaded = (check_loaded and hasattr(cached, "check_call_in_cache")
              and cached.check_call_in_cache(*args, **kwargs))
    result = cached(*args, **kwargs)
    if keep is not None and not keep(result) and hasattr(cached, "call_and_shelve"):
        cached.call_and_shelve(*args, **kwargs).clear()
    return result, bool(loaded)
