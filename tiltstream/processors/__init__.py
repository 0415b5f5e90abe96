"""Consumer-group processing services: motion correction, CTF, reconstruction, denoising."""
