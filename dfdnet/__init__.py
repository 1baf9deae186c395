"""dfdnet: blind face restoration with deep multi-scale component dictionaries (Li et al., ECCV 2020)."""
from dfdnet.archs import DFDNetGenerator, DictionaryBank, GeneratorConfig, load_dictionaries, load_generator
from dfdnet.errors import CheckpointError, DictionaryError
from dfdnet.face.components import component_boxes

__version__ = '0.1.0'
__all__ = ['CheckpointError', 'DFDNetGenerator', 'DictionaryBank', 'DictionaryError', 'GeneratorConfig',
           'component_boxes', 'load_dictionaries', 'load_generator']
