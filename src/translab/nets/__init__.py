"""Networks: denoiser UNets (diffusers' UNet2DModel), ResNet generators, PatchGAN and NOT critics."""
