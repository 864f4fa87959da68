"""`pixtrans prepare ...`: turn downloads and folders of images into the layouts training reads.

One module per family:
    cityscapes   the official Cityscapes download -> pix2pixHD and pix2pix layouts
    pairs        combine A/ + B/ into A|B images (the official combine_A_and_B) and split them back
    edges        photos -> edge map | photo pairs (Canny, or a user-provided HED model)
    cyclegan     two folders of images -> trainA/ trainB/ testA/ testB/ with a deterministic split

Every command checks names and sizes before it writes, writes each file under a temporary name
and renames it into place, never writes into an output folder that already holds images unless
told to (--overwrite), and reports what it skipped and why.
"""

from pixtrans.prepare.cityscapes import CityscapesFrame, find_cityscapes, prepare_cityscapes
from pixtrans.prepare.common import PrepareReport, Skipped
from pixtrans.prepare.cyclegan import make_cyclegan
from pixtrans.prepare.edges import CANNY_DEFAULTS, HedModel, make_edges
from pixtrans.prepare.pairs import combine_pairs, split_pairs

__all__ = [
    "CANNY_DEFAULTS",
    "CityscapesFrame",
    "HedModel",
    "PrepareReport",
    "Skipped",
    "combine_pairs",
    "find_cityscapes",
    "make_cyclegan",
    "make_edges",
    "prepare_cityscapes",
    "split_pairs",
]
