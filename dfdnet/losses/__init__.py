"""Training losses: hinge GAN (Eq. 8-9), feature matching and the pixel + perceptual reconstruction loss (Eq. 7)."""
from dfdnet.losses.gan_loss import feature_matching_loss, hinge_d_loss, hinge_g_loss
from dfdnet.losses.reconstruction import ReconstructionLoss

__all__ = ['feature_matching_loss', 'hinge_d_loss', 'hinge_g_loss', 'ReconstructionLoss']
