"""`pixtrans data list | download` against a real HTTP server on loopback (http.server in a
thread, with Range support) serving small generated archives: no internet."""

import hashlib
import io
import socket
import tarfile
import threading
import zipfile
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from PIL import Image

from pixtrans import PixtransError
from pixtrans.cli import main
from pixtrans.data import PairedDataset, UnpairedDataset
from pixtrans.download import CATALOG, HOST_ENV, download_dataset, fetch, find_entry, format_table


class Server:
    """Serves `files` (url path -> bytes). `cut_after`: the first GET of a path sends only that many
    bytes of its body and drops the connection. `ignore_range`: always send the whole file."""

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.cut_after: dict[str, int] = {}
        self.ignore_range = False
        self.requests: list[tuple[str, str | None]] = []  # (path, Range header)
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                server.requests.append((self.path, self.headers.get("Range")))
                body = server.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                start, status = 0, 200
                rng = self.headers.get("Range")
                if rng and not server.ignore_range:
                    start = int(rng.split("=")[1].split("-")[0])
                    if start >= len(body):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(body)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    status = 206
                self.send_response(status)
                self.send_header("Content-Length", str(len(body) - start))
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                self.end_headers()
                cut = server.cut_after.pop(self.path, None)
                if cut is not None:
                    self.wfile.write(body[start : start + cut])
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.wfile.write(body[start:])

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


def png_bytes(seed: int, w: int = 16, h: int = 8) -> bytes:
    arr = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def tar_gz(files: dict[str, bytes], extra=None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        if extra:
            extra(tar)
    return buf.getvalue()


def zip_bytes(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


def facades_archive() -> bytes:
    # big enough (incompressible PNGs) that a cut leaves a real partial file
    return tar_gz({f"facades/{split}/{i}.png": png_bytes(i) for split in ("train", "val") for i in range(4)})


def error_line(err: str) -> str:
    """The one `error:` line of a failed command (the progress bar also writes to stderr)."""
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, err
    return lines[0]


def entry(name="facades", sha256=None):
    return replace(find_entry(f"pix2pix/{name}"), sha256=sha256)


def test_list_shows_every_dataset_with_size_checksum_and_terms(capsys):
    assert main(["data", "list"]) == 0
    out = capsys.readouterr().out
    for e in CATALOG:
        assert e.key in out
    assert "pix2pix/night2day" in out and "cyclegan/summer2winter_yosemite" in out
    assert "unknown" in out and "not verified" in format_table()
    # the official hosts, as the official scripts name them
    assert find_entry("facades").url == "http://efrosgans.eecs.berkeley.edu/pix2pix/datasets/facades.tar.gz"
    assert (
        find_entry("horse2zebra").url
        == "http://efrosgans.eecs.berkeley.edu/cyclegan/datasets/horse2zebra.zip"
    )
    assert all(e.sha256 is None for e in CATALOG)  # none known: none invented


def test_download_unpacks_where_the_preset_looks_and_says_the_checksum_is_unverified(
    server, tmp_path, monkeypatch, capsys
):
    data = facades_archive()
    server.files["/pix2pix/datasets/facades.tar.gz"] = data
    monkeypatch.setenv(HOST_ENV, server.host)
    assert main(["data", "download", "facades", "--root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"sha256 {hashlib.sha256(data).hexdigest()}: NOT verified" in out
    assert "also: cyclegan/facades" in out
    assert "pixtrans train pix2pix/facades" in out
    assert not (tmp_path / "facades.tar.gz").exists()  # removed once unpacked
    ds = PairedDataset(root=tmp_path / "facades", split="train", preprocess="none", cache="off")
    assert len(ds) == 4
    assert (tmp_path / "facades" / "val" / "3.png").read_bytes() == png_bytes(3)
    # a second call finds it and fetches nothing
    n = len(server.requests)
    assert main(["data", "download", "pix2pix/facades", "--root", str(tmp_path)]) == 0
    assert "already in" in capsys.readouterr().out and len(server.requests) == n


def test_a_known_checksum_is_verified(server, tmp_path):
    data = facades_archive()
    server.files["/pix2pix/datasets/facades.tar.gz"] = data
    lines = []
    catalog = (entry(sha256=hashlib.sha256(data).hexdigest()),)
    download_dataset(
        "facades", tmp_path, catalog=catalog, host=server.host, progress=False, echo=lines.append
    )
    assert any(line.endswith(": verified") for line in lines)


def test_checksum_mismatch_is_refused_and_the_file_set_aside(server, tmp_path):
    server.files["/pix2pix/datasets/facades.tar.gz"] = facades_archive()
    catalog = (entry(sha256="0" * 64),)
    with pytest.raises(PixtransError, match="checksum mismatch") as e:
        download_dataset("facades", tmp_path, catalog=catalog, host=server.host, progress=False, echo=None)
    assert "\n" not in str(e.value)
    assert not (tmp_path / "facades").exists()
    assert (tmp_path / "facades.tar.gz.rejected").is_file() and not (tmp_path / "facades.tar.gz").exists()


def test_an_interrupted_download_is_resumed_with_a_range_request(server, tmp_path):
    data = facades_archive()
    path = "/pix2pix/datasets/facades.tar.gz"
    server.files[path] = data
    half = len(data) // 2
    server.cut_after[path] = half
    with pytest.raises(PixtransError, match="run the same command again to resume"):
        download_dataset("facades", tmp_path, host=server.host, progress=False, echo=None)
    part = tmp_path / "facades.tar.gz.part"
    assert part.stat().st_size == half
    download_dataset("facades", tmp_path, host=server.host, progress=False, echo=None)
    assert server.requests[-1] == (path, f"bytes={half}-")
    assert (tmp_path / "facades" / "train" / "0.png").read_bytes() == png_bytes(0)
    assert not part.exists()


def test_a_server_that_ignores_range_gets_a_fresh_start(server, tmp_path):
    data = facades_archive()
    path = "/pix2pix/datasets/facades.tar.gz"
    server.files[path] = data
    (tmp_path / "facades.tar.gz.part").write_bytes(b"garbage that is not the start of the file")
    server.ignore_range = True
    out = fetch(server.host + path, tmp_path / "facades.tar.gz", progress=False)
    assert out.read_bytes() == data


def test_a_complete_part_file_is_finished_by_a_416(server, tmp_path):
    data = facades_archive()
    path = "/pix2pix/datasets/facades.tar.gz"
    server.files[path] = data
    (tmp_path / "facades.tar.gz.part").write_bytes(data)
    assert fetch(server.host + path, tmp_path / "facades.tar.gz", progress=False).read_bytes() == data


@pytest.mark.parametrize("kind", ["garbage", "truncated"])
def test_a_corrupt_archive_is_refused(server, tmp_path, capsys, monkeypatch, kind):
    data = facades_archive()
    server.files["/pix2pix/datasets/facades.tar.gz"] = (
        b"this is no archive" * 50 if kind == "garbage" else data[: len(data) * 2 // 3]
    )
    monkeypatch.setenv(HOST_ENV, server.host)
    assert main(["data", "download", "pix2pix/facades", "--root", str(tmp_path)]) == 2
    err = error_line(capsys.readouterr().err)
    assert "is corrupt or not a .tar.gz/.zip" in err
    assert not (tmp_path / "facades").exists()  # nothing half-unpacked
    assert (tmp_path / "facades.tar.gz.corrupt").is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # staging folder gone


def test_tar_slip_and_links_are_refused(server, tmp_path):
    def symlink(tar):
        info = tarfile.TarInfo("facades/train/link.png")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(info)

    root = tmp_path / "root"
    for data, what in (
        (tar_gz({"facades/train/1.png": png_bytes(1), "facades/../../evil.txt": b"x"}), "outside the target"),
        (tar_gz({"/abs/evil.txt": b"x"}), "outside the target"),
        (tar_gz({"facades/train/1.png": png_bytes(1)}, extra=symlink), "a link or special file"),
    ):
        server.files["/pix2pix/datasets/facades.tar.gz"] = data
        with pytest.raises(PixtransError, match=what):
            download_dataset("facades", root, host=server.host, progress=False, echo=None)
        assert not (root / "facades").exists() and not (tmp_path / "evil.txt").exists()
        (root / "facades.tar.gz.corrupt").unlink()


def test_zip_slip_is_refused_and_cyclegan_zips_unpack(server, tmp_path):
    path = "/cyclegan/datasets/horse2zebra.zip"
    server.files[path] = zip_bytes({"horse2zebra/trainA/a.png": png_bytes(0), "../evil.txt": b"x"})
    with pytest.raises(PixtransError, match="outside the target"):
        download_dataset("horse2zebra", tmp_path / "r", host=server.host, progress=False, echo=None)
    assert not (tmp_path / "evil.txt").exists()
    files = {
        f"horse2zebra/{d}/{i}.png": png_bytes(i)
        for d in ("trainA", "trainB", "testA", "testB")
        for i in range(2)
    }
    server.files[path] = zip_bytes(files)
    target = download_dataset("horse2zebra", tmp_path / "r2", host=server.host, progress=False, echo=None)
    assert UnpairedDataset(root=target, split="train", preprocess="none", cache="off").sizes == (2, 2)


def test_both_maps_share_one_folder_without_losing_files(server, tmp_path):
    server.files["/pix2pix/datasets/maps.tar.gz"] = tar_gz({"maps/train/1.png": png_bytes(1)})
    server.files["/cyclegan/datasets/maps.zip"] = zip_bytes({"maps/trainA/1.png": png_bytes(2)})
    download_dataset("pix2pix/maps", tmp_path, host=server.host, progress=False, echo=None)
    download_dataset("cyclegan/maps", tmp_path, host=server.host, progress=False, echo=None)
    assert (tmp_path / "maps" / "train" / "1.png").is_file() and (
        tmp_path / "maps" / "trainA" / "1.png"
    ).is_file()


def test_bad_names_refusals_and_unreachable_hosts(tmp_path, capsys, monkeypatch):
    assert main(["data", "download", "facade", "--root", str(tmp_path)]) == 2
    assert "did you mean 'facades'" in capsys.readouterr().err
    assert main(["data", "download", "cityscapes", "--root", str(tmp_path)]) == 2
    assert "cityscapes-dataset.com" in capsys.readouterr().err
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv(HOST_ENV, f"http://127.0.0.1:{port}")
    assert main(["data", "download", "horse2zebra", "--root", str(tmp_path)]) == 2
    err = error_line(capsys.readouterr().err)
    assert "cannot reach 127.0.0.1" in err


def test_http_errors_are_one_line(server, tmp_path):
    with pytest.raises(PixtransError, match="HTTP 404"):
        download_dataset("facades", tmp_path, host=server.host, progress=False, echo=None)


def test_a_file_where_the_folder_goes_is_refused_before_downloading(server, tmp_path):
    (tmp_path / "facades").write_text("mine")
    with pytest.raises(PixtransError, match="is a file, where pix2pix/facades unpacks a folder"):
        download_dataset("facades", tmp_path, host=server.host, progress=False, echo=None)
    assert not server.requests and (tmp_path / "facades").read_text() == "mine"
