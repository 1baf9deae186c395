"""Network architectures: the DFDNet generator, its encoder, dictionaries and checkpoints."""
from dfdnet.archs.checkpoint import load_generator, read_checkpoint, save_generator
from dfdnet.archs.dfdnet_arch import DFDNetGenerator, GeneratorConfig
from dfdnet.archs.dictionary import DictionaryBank, load_dictionaries

__all__ = ['DFDNetGenerator', 'GeneratorConfig', 'DictionaryBank', 'load_dictionaries', 'load_generator',
           'read_checkpoint', 'save_generator']
