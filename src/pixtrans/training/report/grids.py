"""Sample grids: one row per sample, one column per named tensor, with a header of column names.
Tensors of any channel count or dtype are converted for display (gray, RGB, RGBA on a
checkerboard, colour-coded label maps)."""

from __future__ import annotations

import io
import os
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFont

from pixtrans.data.palettes import voc_colormap
from pixtrans.training.report.files import write_atomic


def _checkerboard(h: int, w: int, square: int = 8) -> torch.Tensor:
    """[3,h,w] light-gray checkerboard, the backdrop of transparent pixels."""
    yy = torch.arange(h).view(h, 1) // square
    xx = torch.arange(w).view(1, w) // square
    return torch.where((yy + xx) % 2 == 0, 1.0, 0.8).expand(3, h, w)


def _to_display(x: torch.Tensor) -> torch.Tensor:
    """[B,C,H,W] (or [C,H,W], [H,W]) -> float [B,3,H,W] in [0,1] on the CPU.

    Floating tensors are images in [-1,1]: 1 channel -> gray, 3 -> RGB, 4 -> RGB composited on a
    checkerboard by its alpha, 2 -> channel 0 as gray, 5+ -> the first 3 channels. Integer
    tensors are label maps (channel 0, ids clamped to 0..255) shown with the PASCAL VOC colour map.
    """
    x = x.detach().cpu()
    while x.dim() < 4:
        x = x.unsqueeze(0)
    if x.dim() != 4 or x.shape[1] == 0:
        raise ValueError(f"expected a [B,C,H,W] tensor, got shape {tuple(x.shape)}")
    if not (x.is_floating_point() or x.is_complex()):
        if x.dtype == torch.bool:
            x = x.to(torch.int64)
        ids = x[:, 0].to(torch.int64).clamp(0, 255)
        palette = voc_colormap(256).float() / 255.0
        return palette[ids].permute(0, 3, 1, 2).contiguous()
    x = torch.nan_to_num(x.float(), nan=0.0, posinf=1.0, neginf=-1.0)
    x = ((x + 1.0) / 2.0).clamp(0.0, 1.0)
    c = x.shape[1]
    if c == 3:
        return x
    if c == 4:
        rgb, alpha = x[:, :3], x[:, 3:4]
        return rgb * alpha + _checkerboard(x.shape[2], x.shape[3]) * (1.0 - alpha)
    if c in (1, 2):
        return x[:, :1].expand(-1, 3, -1, -1)
    return x[:, :3]


def _resize_to_height(x: torch.Tensor, height: int) -> torch.Tensor:
    h, w = x.shape[-2:]
    if h == height:
        return x
    width = max(1, round(w * height / h))
    if height > h:  # enlarge: keep pixels crisp (small outputs, label maps)
        return F.interpolate(x, size=(height, width), mode="nearest")
    return F.interpolate(x, size=(height, width), mode="bilinear", antialias=True, align_corners=False)


def _fit_text(draw: ImageDraw.ImageDraw, text: str, font, max_width: int) -> str:
    """`text`, cut and ended with ".." where it is wider than `max_width` pixels."""
    if draw.textlength(text, font=font) <= max_width:
        return text
    while text and draw.textlength(text + "..", font=font) > max_width:
        text = text[:-1]
    return text + ".." if text else ""


def save_sample_grid(
    columns: dict[str, torch.Tensor],
    path: str | os.PathLike,
    max_rows: int = 8,
    *,
    max_height: int = 512,
    pad: int = 2,
) -> Path:
    """Save a grid of samples: one row per sample, one column per entry of `columns`, in order.

    columns: name -> [B,C,H,W] tensor in [-1,1] (any device/dtype; see `_to_display` for how
        channel counts are shown; integer tensors are drawn as colour-coded label maps). Columns
        may differ in channels, size and batch (the smallest batch is used).
    max_rows: at most this many samples (rows).
    max_height: every column is resized to a common height, the tallest column's, capped here
        (widths keep their aspect ratio).
    pad: width of the white separators between cells.

    A header row carries the column names. Written atomically; the format follows the suffix.
    Returns the path.
    """
    if not columns:
        raise ValueError("save_sample_grid needs at least one column")
    cols = {str(name): _to_display(t) for name, t in columns.items()}
    rows = min(max_rows, *(t.shape[0] for t in cols.values()))
    if rows < 1:
        raise ValueError("save_sample_grid: a column has no samples (or max_rows < 1)")
    height = min(max(t.shape[2] for t in cols.values()), max_height)
    cols = {name: _resize_to_height(t[:rows], height) for name, t in cols.items()}

    # Cells are pasted by hand rather than with torchvision's make_grid: columns differ in width.
    widths = [t.shape[3] for t in cols.values()]
    grid_w = sum(widths) + pad * (len(widths) + 1)
    grid_h = rows * height + pad * (rows + 1)
    canvas = torch.ones(3, grid_h, grid_w)
    x0 = pad
    for t, w in zip(cols.values(), widths, strict=True):
        for r in range(rows):
            y0 = pad + r * (height + pad)
            canvas[:, y0 : y0 + height, x0 : x0 + w] = t[r]
        x0 += w + pad
    pixels = (canvas * 255.0 + 0.5).clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
    grid = Image.fromarray(pixels, mode="RGB")

    font = ImageFont.load_default()
    left, top, right, bottom = font.getbbox("Ag")
    header_h = (bottom - min(top, 0)) + 6
    image = Image.new("RGB", (grid_w, header_h + grid_h), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    x0 = pad
    for name, w in zip(cols, widths, strict=True):
        text = _fit_text(draw, name, font, w)
        tw = draw.textlength(text, font=font)
        draw.text((x0 + (w - tw) / 2, 3), text, fill=(0, 0, 0), font=font)
        x0 += w + pad
    image.paste(grid, (0, header_h))

    path = Path(path)
    fmt = Image.registered_extensions().get(path.suffix.lower(), "PNG")
    buf = io.BytesIO()
    image.save(buf, format=fmt)
    write_atomic(path, buf.getvalue())
    return path
