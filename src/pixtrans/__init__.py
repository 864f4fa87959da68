"""pixtrans: image-to-image translation with GANs (pix2pix, CycleGAN, pix2pixHD)."""

__version__ = "0.1.0"


class PixtransError(Exception):
    """A user-facing error: the message is one line that names the file or setting and what to do.

    The CLI prints it without a traceback and exits non-zero.
    """
