"""Model families other than AIPROD's own, behind the same interfaces (text encoder, backbone, VAE, upscaler)."""
