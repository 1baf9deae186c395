"""Whole-image face restoration: detect, align, restore every face and paste it back."""
from dfdnet.pipeline.options import RestoreOptions
from dfdnet.pipeline.restorer import FaceRestorer

__all__ = ['FaceRestorer', 'RestoreOptions']
