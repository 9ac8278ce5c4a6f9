"""translab: unpaired image-to-image translation with diffusion models, measured against GAN and OT baselines."""

__version__ = "0.2.0"
