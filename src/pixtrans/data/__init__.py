"""Datasets, image I/O and the preprocess transforms. Importing registers "paired", "unpaired",
"synthetic" and "labelmap"."""

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
    LabelMapDataset,
    input_channels,
    instance_edges,
    label_input,
    one_hot_labels,
)
from pixtrans.data.paired import PairedDataset
from pixtrans.data.synth import generate_synthetic_pairs, synthetic_dataset
from pixtrans.data.transforms import PREPROCESS_MODES, apply_params, output_size, sample_params
from pixtrans.data.unpaired import UnpairedDataset

__all__ = [
    "IMAGE_EXTENSIONS",
    "PREPROCESS_MODES",
    "LabelMapDataset",
    "PairedDataset",
    "UnpairedDataset",
    "apply_params",
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
    "synthetic_dataset",
    "write_image",
]


def dataset_kwargs(data, *, split: str) -> dict:
    """Keyword arguments for DATASETS.get(data.dataset)(**kwargs) from a DataConfig.

    A builder helper: the one place that maps the `data.*` settings onto dataset arguments.
    The synthetic set also gets its size and resolution; its root "" means the user cache.
    """
    kwargs = dict(
        root=data.root,
        split=split,
        layout=data.layout,
        direction=data.direction,
        input_nc=data.input_nc,
        output_nc=data.output_nc,
        preprocess=data.preprocess,
        load_size=data.load_size,
        crop_size=data.crop_size,
        flip=data.flip,
        cache=data.cache,
        cache_max_gb=data.cache_max_gb,
        bad_files=data.bad_files,
        max_images=data.max_images,
    )
    if data.dataset == "synthetic":
        kwargs.update(size=data.synthetic_size, resolution=data.synthetic_resolution)
    if data.dataset == "unpaired":
        kwargs.update(serial_batches=data.serial_batches)
    if data.dataset == "labelmap":
        kwargs.update(
            label_nc=data.label_nc,
            dontcare_label=data.dontcare_label,
            instance=data.instance,
            features=data.features,
        )
    return kwargs
