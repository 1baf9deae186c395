"""Face tools: component boxes, detection, alignment and paste-back (dlib is imported lazily)."""
from dfdnet.face.components import PART_NAMES, component_boxes, flip_landmarks

__all__ = ['PART_NAMES', 'component_boxes', 'flip_landmarks']
