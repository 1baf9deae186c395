"""dfdnet: blind face restoration with deep multi-scale component dictionaries (Li et al., ECCV 2020).

The names below are imported on first use, so that ``import dfdnet.cli.restore`` (and ``--help``)
does not pay for torch, OpenCV and dlib.
"""
from importlib import import_module

__version__ = '0.1.0'

_EXPORTS = {
    'DFDNetGenerator': 'dfdnet.archs', 'DictionaryBank': 'dfdnet.archs', 'GeneratorConfig': 'dfdnet.archs',
    'load_dictionaries': 'dfdnet.archs', 'load_generator': 'dfdnet.archs', 'restore_batch': 'dfdnet.archs.fidelity',
    'CheckpointError': 'dfdnet.errors', 'DictionaryError': 'dfdnet.errors',
    'component_boxes': 'dfdnet.face.components',
    'PhotoRestorer': 'dfdnet.pipeline.photo', 'RestoredPhoto': 'dfdnet.pipeline.photo',
    'shipped_model_dir': 'dfdnet.pipeline.photo', 'resolve_fidelity': 'dfdnet.pipeline.photo',
    'RestoreOptions': 'dfdnet.pipeline.options',
}
__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        value = getattr(import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')


def __dir__():
    return sorted(list(globals()) + __all__)
