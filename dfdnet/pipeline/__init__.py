"""Whole-image face restoration: detect, align, restore every face and paste it back.

Names are imported on first use, so that ``dfdnet.pipeline.options`` (the command line's options)
loads without torch.
"""
import importlib

_EXPORTS = {'RestoreOptions': 'dfdnet.pipeline.options', 'CropRestorer': 'dfdnet.pipeline.restorer'}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
