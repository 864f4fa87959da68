"""Datasets, image I/O and the preprocess transforms. Importing registers "paired", "unpaired",
"synthetic", "labelmap" and "colorization"."""

from pixtrans.data.build import build_dataset, dataset_kwargs
from pixtrans.data.colorization import ColorizationDataset
from pixtrans.data.io import (
    IMAGE_EXTENSIONS,
    image_info,
    image_size,
    is_image_file,
    load_array,
    read_image,
    write_image,
)
from pixtrans.data.labelmap import (
    LabelInput,
    LabelMapDataset,
    input_channels,
    instance_edges,
    label_input,
    one_hot_labels,
)
from pixtrans.data.paired import PairedDataset
from pixtrans.data.synth import SyntheticDataset, generate_synthetic_pairs
from pixtrans.data.transforms import PREPROCESS_MODES, apply_params, output_size, sample_params
from pixtrans.data.unpaired import UnpairedDataset

__all__ = [
    "ColorizationDataset",
    "IMAGE_EXTENSIONS",
    "PREPROCESS_MODES",
    "LabelInput",
    "LabelMapDataset",
    "PairedDataset",
    "SyntheticDataset",
    "UnpairedDataset",
    "apply_params",
    "build_dataset",
    "dataset_kwargs",
    "generate_synthetic_pairs",
    "image_info",
    "image_size",
    "input_channels",
    "instance_edges",
    "is_image_file",
    "label_input",
    "load_array",
    "one_hot_labels",
    "output_size",
    "read_image",
    "sample_params",
    "write_image",
]
