"""Training methods; importing this package registers them."""

from pixtrans.methods import cyclegan, pix2pix, pix2pixhd  # noqa: F401
from pixtrans.methods.base import Method

__all__ = ["Method"]
