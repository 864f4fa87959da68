"""Convert generator checkpoints of the reference codebases into pixtrans exports.

  state.py      reading official .pth files safely, legacy InstanceNorm keys, strict loading
  base.py       what a converter gets (files, Options) and returns (a Conversion)
  junyanz.py    junyanz pix2pix U-Net and CycleGAN ResNet generators (one file or a G_A/G_B pair)
  pix2pixhd.py  NVIDIA pix2pixHD global generator / local enhancer, with its feature encoder
  kinds.py      the KINDS table, detection, and convert_official, the dispatch that writes exports

Discriminators and encoders given alone are recognised and refused with a hint.
"""

from pixtrans.convert.base import Conversion, Options
from pixtrans.convert.junyanz import infer_resnet_spec, infer_unet_spec
from pixtrans.convert.kinds import KINDS, Kind, convert_official, detect_kind
from pixtrans.convert.state import Checkpoint, load_state_dict_file

__all__ = [
    "KINDS",
    "Checkpoint",
    "Conversion",
    "Kind",
    "Options",
    "convert_official",
    "detect_kind",
    "infer_resnet_spec",
    "infer_unet_spec",
    "load_state_dict_file",
]
