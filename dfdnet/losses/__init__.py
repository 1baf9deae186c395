"""Training losses: hinge GAN (Eq. 8-9) and the pixel + perceptual reconstruction loss (Eq. 7)."""
from dfdnet.losses.gan_loss import hinge_d_loss, hinge_g_loss
from dfdnet.losses.reconstruction import ReconstructionLoss

__all__ = ['hinge_d_loss', 'hinge_g_loss', 'ReconstructionLoss']
