"""`pixtrans prepare edges | combine | split | cyclegan` on small generated images, good and bad
(the cityscapes command is tested in test_labelmap.py)."""

import numpy as np
import pytest
import torch
from PIL import Image

from pixtrans import PixtransError
from pixtrans.cli import main
from pixtrans.data import PairedDataset, UnpairedDataset
from pixtrans.prepare import HedModel, combine_pairs, make_cyclegan, make_edges, split_pairs
from pixtrans.prepare.cyclegan import split_order
from pixtrans.prepare.edges import edge_map


def photo(seed: int, w: int = 32, h: int = 24) -> np.ndarray:
    """A photo-like RGB image: a gradient with a bright square (strong, known edges)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([xx * 255 // w, yy * 255 // h, np.full((h, w), 80)], axis=2).astype(np.uint8)
    x0, y0 = rng.integers(2, w // 2), rng.integers(2, h // 2)
    img[y0 : y0 + h // 3, x0 : x0 + w // 3] = 250
    return img


def save(arr: np.ndarray, path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


def two_sides(tmp_path, n=3, splits=("",)):
    a, b = tmp_path / "A", tmp_path / "B"
    for split in splits:
        for i in range(n):
            save(photo(i), a / split / f"{i}.png")
            save(photo(i + 10), b / split / f"{i}.jpg")  # same stem, another extension: still a pair
    return a, b


def read(path) -> np.ndarray:
    return np.asarray(Image.open(path))


# -- combine / split ---------------------------------------------------------------------------


def test_combine_then_split_round_trip(tmp_path):
    a, b = two_sides(tmp_path)
    report = combine_pairs(a, b, tmp_path / "AB", echo=None)
    assert report.written == {str(tmp_path / "AB" / "train"): 3} and not report.skipped
    ab = read(tmp_path / "AB" / "train" / "1.png")
    assert ab.shape == (24, 64, 3)
    np.testing.assert_array_equal(ab[:, :32], read(a / "1.png"))
    np.testing.assert_array_equal(ab[:, 32:], read(b / "1.jpg"))
    # what pix2pix reads: the combined folder is a paired dataset
    ds = PairedDataset(root=tmp_path / "AB", split="train", preprocess="none", cache="off")
    assert len(ds) == 3
    split_pairs(tmp_path / "AB", tmp_path / "A2", tmp_path / "B2", echo=None)
    for i in range(3):
        np.testing.assert_array_equal(read(tmp_path / "A2" / "train" / f"{i}.png"), read(a / f"{i}.png"))
        np.testing.assert_array_equal(read(tmp_path / "B2" / "train" / f"{i}.png"), read(b / f"{i}.jpg"))


def test_combine_keeps_split_folders_like_the_official_script(tmp_path):
    a, b = two_sides(tmp_path, n=2, splits=("train", "val"))
    report = combine_pairs(a, b, tmp_path / "AB", echo=None)
    assert sorted(report.written) == [str(tmp_path / "AB" / "train"), str(tmp_path / "AB" / "val")]
    assert sorted(p.name for p in (tmp_path / "AB" / "val").iterdir()) == ["0.png", "1.png"]


def test_combine_reports_what_it_skipped(tmp_path, capsys):
    a, b = two_sides(tmp_path, n=3)
    save(photo(5), a / "only_a.png")  # no partner
    save(photo(6, w=40), b / "2.png")  # a second file named 2 in B: ambiguous
    save(photo(7, w=40), a / "big.png")
    save(photo(8), b / "big.png")  # sizes differ
    (a / "readme.txt").write_text("not an image")
    (a / "broken.png").write_bytes(b"\x89PNG not really")
    (b / "broken.png").write_bytes(b"\x89PNG not really")
    assert main(["prepare", "combine", str(a), str(b), str(tmp_path / "AB")]) == 0
    out = capsys.readouterr().out
    assert f"{tmp_path / 'AB' / 'train'}: 2 file(s) written" in out  # 0 and 1
    assert "only_a.png: no partner" in out
    assert "readme.txt: not an image" in out
    assert "is 40x24 but its partner" in out
    assert "the name '2' is used by 2 files" in out
    assert "broken.png" in out
    assert sorted(p.name for p in (tmp_path / "AB" / "train").iterdir()) == ["0.png", "1.png"]


def test_combine_grey_next_to_colour_is_written_as_colour(tmp_path):
    save(photo(0)[:, :, 0], tmp_path / "A" / "x.png")
    save(photo(1), tmp_path / "B" / "x.png")
    combine_pairs(tmp_path / "A", tmp_path / "B", tmp_path / "AB", fmt="jpg", echo=None)
    assert Image.open(tmp_path / "AB" / "train" / "x.jpg").mode == "RGB"


@pytest.mark.parametrize(
    "setup, message",
    [
        ("missing", "A folder '{a}' does not exist"),
        ("empty", "no images in A folder '{a}' (it is empty)"),
        ("text_only", "no images in A folder '{a}' (1 other file(s), e.g. 'notes.txt')"),
        ("no_match", "no pairs to combine"),
    ],
)
def test_combine_bad_inputs_are_one_line_errors(tmp_path, capsys, setup, message):
    a, b = tmp_path / "A", tmp_path / "B"
    save(photo(0), b / "x.png")
    if setup == "empty":
        a.mkdir()
    elif setup == "text_only":
        a.mkdir()
        (a / "notes.txt").write_text("x")
    elif setup == "no_match":
        save(photo(0), a / "y.png")
    assert main(["prepare", "combine", str(a), str(b), str(tmp_path / "AB")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ")
    assert message.format(a=a) in err
    assert not (tmp_path / "AB" / "train").exists() or not any((tmp_path / "AB" / "train").iterdir())


def test_outputs_are_never_overwritten_without_overwrite(tmp_path, capsys):
    a, b = two_sides(tmp_path, n=2)
    combine_pairs(a, b, tmp_path / "AB", echo=None)
    target = tmp_path / "AB" / "train" / "0.png"
    before = target.read_bytes()
    save(photo(99), a / "0.png")  # A changed
    assert main(["prepare", "combine", str(a), str(b), str(tmp_path / "AB")]) == 2
    assert "already holds 2 of the files to write" in capsys.readouterr().err
    assert target.read_bytes() == before
    assert main(["prepare", "combine", str(a), str(b), str(tmp_path / "AB"), "--overwrite"]) == 0
    assert target.read_bytes() != before


def test_split_skips_odd_widths_and_non_images(tmp_path, capsys):
    save(photo(0, w=32), tmp_path / "AB" / "a.png")
    save(photo(1, w=33), tmp_path / "AB" / "odd.png")
    (tmp_path / "AB" / "x.csv").write_text("1,2")
    assert main(["prepare", "split", str(tmp_path / "AB"), str(tmp_path / "A"), str(tmp_path / "B")]) == 0
    out = capsys.readouterr().out
    assert "odd.png: is 33x24: an A|B image needs an even width" in out and "x.csv: not an image" in out
    assert read(tmp_path / "A" / "a.png").shape == (24, 16, 3)
    assert not (tmp_path / "A" / "odd.png").exists()


def test_split_of_nothing_usable_is_an_error(tmp_path, capsys):
    save(photo(1, w=33), tmp_path / "AB" / "odd.png")
    assert main(["prepare", "split", str(tmp_path / "AB"), str(tmp_path / "A"), str(tmp_path / "B")]) == 2
    assert "no A|B images to split" in capsys.readouterr().err


# -- cyclegan ----------------------------------------------------------------------------------


def test_cyclegan_layout_with_a_deterministic_split(tmp_path):
    for i in range(10):
        save(photo(i), tmp_path / "horses" / f"h{i}.png")
    for i in range(7):
        save(photo(i + 20), tmp_path / "zebras" / f"z{i}.jpg")
    (tmp_path / "zebras" / "Thumbs.db").write_bytes(b"junk")
    save(photo(3, w=8, h=8), tmp_path / "zebras" / "tiny.png")
    report = make_cyclegan(
        tmp_path / "horses", tmp_path / "zebras", tmp_path / "h2z", test_fraction=0.2, min_size=16, echo=None
    )
    counts = {k.rsplit("/", 1)[1]: v for k, v in report.written.items()}
    assert counts == {"trainA": 8, "testA": 2, "trainB": 6, "testB": 1}
    reasons = {s.path.rsplit("/", 1)[1]: s.reason for s in report.skipped}
    assert "not an image" in reasons["Thumbs.db"] and "smaller than --min-size 16" in reasons["tiny.png"]
    test_a = sorted(p.name for p in (tmp_path / "h2z" / "testA").iterdir())
    assert test_a == sorted(split_order([f"h{i}.png" for i in range(10)], 0)[:2])
    # copied byte for byte
    name = test_a[0]
    assert (tmp_path / "h2z" / "testA" / name).read_bytes() == (tmp_path / "horses" / name).read_bytes()
    # the same inputs and seed give the same split; another seed another one
    make_cyclegan(tmp_path / "horses", tmp_path / "zebras", tmp_path / "again", test_fraction=0.2, echo=None)
    assert sorted(p.name for p in (tmp_path / "again" / "testA").iterdir()) == test_a
    assert split_order([f"h{i}.png" for i in range(10)], 1) != split_order(
        [f"h{i}.png" for i in range(10)], 0
    )
    # what CycleGAN reads
    ds = UnpairedDataset(root=tmp_path / "h2z", split="train", preprocess="none", cache="off")
    assert ds.sizes == (8, 6)


def test_cyclegan_bad_inputs(tmp_path, capsys):
    save(photo(0), tmp_path / "A" / "a.png")
    (tmp_path / "B").mkdir()
    (tmp_path / "B" / "notes.md").write_text("x")
    assert main(["prepare", "cyclegan", str(tmp_path / "A"), str(tmp_path / "B"), str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "no usable images in domain B folder" in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()  # checked before anything was written
    argv = [
        "prepare",
        "cyclegan",
        str(tmp_path / "A"),
        str(tmp_path / "A"),
        str(tmp_path / "o"),
        "--test-fraction",
        "1",
    ]
    assert main(argv) == 2
    assert "--test-fraction must lie in [0, 1)" in capsys.readouterr().err


# -- edges -------------------------------------------------------------------------------------


def test_edges_make_pairs_that_pix2pix_reads(tmp_path):
    for i in range(3):
        save(photo(i), tmp_path / "photos" / f"{i}.png")
    report = make_edges(tmp_path / "photos", tmp_path / "e2p", sigma=1.0, echo=None)
    assert report.total == 3
    pair = read(tmp_path / "e2p" / "train" / "0.png")
    edges, rgb = pair[:, :32], pair[:, 32:]
    np.testing.assert_array_equal(rgb, photo(0))
    assert set(np.unique(edges)) <= {0, 255}
    assert (edges == 0).any() and (edges == 255).mean() > 0.5  # black lines on white
    # the bright square's outline is found: its corner rows carry edge pixels
    ds = PairedDataset(root=tmp_path / "e2p", split="train", preprocess="none", cache="off")
    assert len(ds) == 3


def test_edges_are_deterministic_and_follow_the_thresholds(tmp_path):
    img = photo(4, w=64, h=48)
    first = edge_map(img, sigma=1.0)
    np.testing.assert_array_equal(first, edge_map(img, sigma=1.0))
    assert edge_map(img, sigma=1.0, low=0.5, high=0.9).sum() <= first.sum()
    cleaned = edge_map(img, sigma=1.0, min_edge_pixels=1000)  # every piece is smaller
    assert cleaned.sum() == 0


def test_edges_resize_and_split_folders(tmp_path):
    save(photo(0), tmp_path / "photos" / "train" / "a.png")
    save(photo(1), tmp_path / "photos" / "test" / "b.png")
    make_edges(tmp_path / "photos", tmp_path / "out", size=16, echo=None)
    assert read(tmp_path / "out" / "train" / "a.png").shape == (16, 32, 3)
    assert read(tmp_path / "out" / "test" / "b.png").shape == (16, 32, 3)


def _edge_net():
    class Edges(torch.nn.Module):
        """A stand-in "HED": the horizontal gradient of the mean colour, as a probability."""

        def forward(self, x):
            grey = x.mean(dim=1, keepdim=True)
            dx = torch.nn.functional.pad(grey[..., 1:] - grey[..., :-1], (0, 1))
            return [dx.abs(), (dx.abs() * 4).clamp(0, 1)]  # side output, then the fused map

    return Edges()


def test_hed_with_a_torchscript_model(tmp_path):
    model = tmp_path / "hed.pt"
    torch.jit.save(torch.jit.script(_edge_net()), str(model))
    save(photo(0), tmp_path / "photos" / "x.png")
    assert (
        main(["prepare", "edges", str(tmp_path / "photos"), str(tmp_path / "out"), "--hed-model", str(model)])
        == 0
    )
    edges = read(tmp_path / "out" / "train" / "x.png")[:, :32, 0]
    expected = edge_map(photo(0), detector="hed", hed=HedModel(model))
    np.testing.assert_array_equal(edges == 0, expected)
    assert expected.any()


def test_hed_with_an_onnx_model(tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    model = tmp_path / "hed.onnx"

    class Fused(torch.nn.Module):
        def forward(self, x):
            return _edge_net()(x)[1]

    try:
        torch.onnx.export(Fused(), torch.rand(1, 3, 24, 32), str(model), dynamo=False, input_names=["image"])
    except Exception as e:  # noqa: BLE001 - an exporter that cannot run here skips, not fails
        pytest.skip(f"torch.onnx.export unavailable: {e}")
    prob = HedModel(model)(photo(0))
    assert prob.shape == (24, 32) and 0 <= prob.min() and prob.max() <= 1
    ts = tmp_path / "hed.pt"
    torch.jit.save(torch.jit.script(_edge_net()), str(ts))
    np.testing.assert_allclose(prob, HedModel(ts)(photo(0)), atol=1e-5)


def test_hed_model_errors(tmp_path, capsys):
    save(photo(0), tmp_path / "photos" / "x.png")
    args = ["prepare", "edges", str(tmp_path / "photos"), str(tmp_path / "out")]
    assert main([*args, "--detector", "hed"]) == 2
    assert "pixtrans ships no HED weights" in capsys.readouterr().err
    assert main([*args, "--hed-model", str(tmp_path / "missing.onnx")]) == 2
    assert "HED model file" in capsys.readouterr().err
    (tmp_path / "bad.pt").write_bytes(b"not a model")
    assert main([*args, "--hed-model", str(tmp_path / "bad.pt")]) == 2
    err = capsys.readouterr().err
    assert "is neither an ONNX file" in err and err.count("\n") == 1
    (tmp_path / "bad.onnx").write_bytes(b"not a model")
    if pytest.importorskip("onnxruntime"):
        assert main([*args, "--hed-model", str(tmp_path / "bad.onnx")]) == 2
        assert "is not a valid ONNX model" in capsys.readouterr().err

    class Flat(torch.nn.Module):
        def forward(self, x):
            return x.mean()

    torch.jit.save(torch.jit.script(Flat()), str(tmp_path / "flat.pt"))
    assert main([*args, "--hed-model", str(tmp_path / "flat.pt")]) == 2
    assert "expected an edge map [1,1,H,W]" in capsys.readouterr().err


def test_edges_bad_settings_and_inputs(tmp_path, capsys):
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "a.txt").write_text("x")
    assert main(["prepare", "edges", str(tmp_path / "photos"), str(tmp_path / "out")]) == 2
    assert "no images in photo folder" in capsys.readouterr().err
    save(photo(0), tmp_path / "photos" / "x.png")
    assert (
        main(
            [
                "prepare",
                "edges",
                str(tmp_path / "photos"),
                str(tmp_path / "o"),
                "--low",
                "0.5",
                "--high",
                "0.1",
            ]
        )
        == 2
    )
    assert "0 <= --low <= --high" in capsys.readouterr().err
    with pytest.raises(PixtransError, match="--format"):
        make_edges(tmp_path / "photos", tmp_path / "o", fmt="gif", echo=None)
