"""Image-quality and face metrics (light imports: dlib/NIQE modules are imported on use)."""
from dfdnet.metrics.detail import detail_energy, detail_ratio
from dfdnet.metrics.psnr_ssim import calculate_psnr, calculate_ssim, component_mask, masked_psnr, rgb_to_y

__all__ = ['calculate_psnr', 'calculate_ssim', 'component_mask', 'detail_energy', 'detail_ratio', 'masked_psnr', 'rgb_to_y']
