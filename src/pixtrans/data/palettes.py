"""Colours for showing class-id maps: the PASCAL VOC colour map (bit-interleaved ids, 0 black)
that the sample grids and pix2pixHD's label column use."""

from __future__ import annotations

import torch


def voc_colormap(n: int = 256) -> torch.Tensor:
    """[n, 3] uint8 colours; id k spreads its bits over R, G, B from the most significant down."""
    ids = torch.arange(n)
    rgb = torch.zeros(n, 3, dtype=torch.int64)
    c = ids.clone()
    for shift in range(7, -1, -1):
        for ch in range(3):
            rgb[:, ch] |= ((c >> ch) & 1) << shift
        c = c >> 3
    return rgb.to(torch.uint8)


# ----------------------------------------------------------------------------------------------
# Named label palettes: what a drawing page offers and what colour (or id) each class is.

# The CMP facade database as the pix2pix "facades" set draws it: 12 classes, a stepped jet
# colour map in class order (colours measured on the dataset's label halves).
FACADES = (
    ("background", (0, 0, 222)),
    ("facade", (0, 48, 255)),
    ("window", (0, 128, 255)),
    ("door", (0, 207, 255)),
    ("cornice", (33, 255, 225)),
    ("sill", (112, 255, 143)),
    ("balcony", (192, 255, 63)),
    ("blind", (255, 240, 0)),
    ("deco", (255, 159, 0)),
    ("molding", (255, 80, 0)),
    ("pillar", (252, 0, 0)),
    ("shop", (174, 0, 0)),
)

# Cityscapes label ids 0..33 (+ 34, the licence plate pix2pixHD's label_nc=35 leaves room for),
# with the benchmark's colours; `things` are the classes whose instances are numbered
# (instance id = class * 1000 + k).
CITYSCAPES = (
    ("unlabeled", (0, 0, 0)),
    ("ego vehicle", (0, 0, 0)),
    ("rectification border", (0, 0, 0)),
    ("out of roi", (0, 0, 0)),
    ("static", (20, 20, 20)),
    ("dynamic", (111, 74, 0)),
    ("ground", (81, 0, 81)),
    ("road", (128, 64, 128)),
    ("sidewalk", (244, 35, 232)),
    ("parking", (250, 170, 160)),
    ("rail track", (230, 150, 140)),
    ("building", (70, 70, 70)),
    ("wall", (102, 102, 156)),
    ("fence", (190, 153, 153)),
    ("guard rail", (180, 165, 180)),
    ("bridge", (150, 100, 100)),
    ("tunnel", (150, 120, 90)),
    ("pole", (153, 153, 153)),
    ("polegroup", (153, 153, 153)),
    ("traffic light", (250, 170, 30)),
    ("traffic sign", (220, 220, 0)),
    ("vegetation", (107, 142, 35)),
    ("terrain", (152, 251, 152)),
    ("sky", (70, 130, 180)),
    ("person", (220, 20, 60)),
    ("rider", (255, 0, 0)),
    ("car", (0, 0, 142)),
    ("truck", (0, 0, 70)),
    ("bus", (0, 60, 100)),
    ("caravan", (0, 0, 90)),
    ("trailer", (0, 0, 110)),
    ("train", (0, 80, 100)),
    ("motorcycle", (0, 0, 230)),
    ("bicycle", (119, 11, 32)),
    ("license plate", (0, 0, 143)),
)
CITYSCAPES_THINGS = tuple(range(24, 34))  # person .. bicycle


def _classes(named, things=()) -> list[dict]:
    return [
        {"id": i, "name": name, "color": list(rgb), "thing": i in things}
        for i, (name, rgb) in enumerate(named)
    ]


def palette_for_config(config: dict) -> dict:
    """What a model's input looks like, for a drawing page and for the export's config.json.

    {"kind": "labels", "encoding": "color" | "id", "classes": [{id, name, color, thing}]} for
    label maps (pix2pix draws colours, pix2pixHD reads ids), {"kind": "edges"} for sketch / edge
    inputs (a black pen on white), or {"kind": "image"} for photos (upload only). Read from the
    resolved config: the dataset (the built-in demo), label_nc (pix2pixHD; 35 = Cityscapes) or
    the dataset folder's name (facades, edges2*), as the presets name them.
    """
    data = config.get("data", {}) or {}
    label_nc = int(data.get("label_nc", 0) or 0)
    root = str(data.get("root", "") or "").rstrip("/").lower()
    name = root.rsplit("/", 1)[-1]
    if label_nc > 0:
        if label_nc in (34, 35, 36):
            classes = _classes(CITYSCAPES[:label_nc] if label_nc <= 35 else CITYSCAPES, CITYSCAPES_THINGS)
            return {"kind": "labels", "encoding": "id", "dataset": "cityscapes", "classes": classes}
        colours = voc_colormap(label_nc).tolist()
        classes = [
            {"id": i, "name": f"class {i}", "color": colours[i], "thing": True} for i in range(label_nc)
        ]
        return {"kind": "labels", "encoding": "id", "dataset": "", "classes": classes}
    # paired files are photo|labels (A|B) for these sets: the labels are the input with BtoA
    labels_in = data.get("direction", "AtoB") == "BtoA"
    if data.get("dataset") == "synthetic" and labels_in:
        from pixtrans.data.synth import CLASSES, PALETTE

        named = tuple(zip(CLASSES, (tuple(int(v) for v in rgb) for rgb in PALETTE), strict=True))
        return {"kind": "labels", "encoding": "color", "dataset": "demo", "classes": _classes(named)}
    if "facades" in name and labels_in:
        return {"kind": "labels", "encoding": "color", "dataset": "facades", "classes": _classes(FACADES)}
    if "cityscapes" in name and labels_in:
        classes = _classes(CITYSCAPES, CITYSCAPES_THINGS)
        return {"kind": "labels", "encoding": "color", "dataset": "cityscapes", "classes": classes}
    edges_in = ("edges" in name or "sketch" in name) and not labels_in
    if edges_in or int(data.get("input_nc", 3)) == 1:
        return {"kind": "edges"}
    return {"kind": "image"}
