"""Image-quality and face metrics. The names below are imported on first use (OpenCV, dlib and
NIQE load only then), so that ``dfdnet.metrics.options`` stays light for the commands' ``--help``."""
from importlib import import_module

_EXPORTS = {'detail_energy': 'dfdnet.metrics.detail', 'detail_ratio': 'dfdnet.metrics.detail',
            'calculate_psnr': 'dfdnet.metrics.psnr_ssim', 'calculate_ssim': 'dfdnet.metrics.psnr_ssim',
            'component_mask': 'dfdnet.metrics.psnr_ssim', 'masked_psnr': 'dfdnet.metrics.psnr_ssim',
            'rgb_to_y': 'dfdnet.metrics.psnr_ssim'}
__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name not in _EXPORTS:
        raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
    return getattr(import_module(_EXPORTS[name]), name)
