"""The standard pix2pix and CycleGAN datasets: where they are hosted, what they unpack to, their
sizes, checksums and terms, as far as they are known.

Facts and their sources:
- URLs: the official scripts of junyanz/pytorch-CycleGAN-and-pix2pix,
  datasets/download_pix2pix_dataset.sh (http://efrosgans.eecs.berkeley.edu/pix2pix/datasets/
  NAME.tar.gz, unpacked into datasets/, giving datasets/NAME/{train,val,...}) and
  datasets/download_cyclegan_dataset.sh (current version: http://efrosgans.eecs.berkeley.edu/
  cyclegan/datasets/NAME.zip, giving datasets/NAME/{trainA,trainB,testA,testB}; earlier versions
  used people.eecs.berkeley.edu/~taesung_park/CycleGAN/datasets/).
- Contents and terms: that repository's docs/datasets.md ("Some of the datasets are collected by
  other researchers. Please cite their papers if you use the data"); no dataset there carries a
  licence file. The Cityscapes sets are not downloadable for licence reasons (the official script
  refuses them too).
- Sizes: approximate, from a third-party listing of these archives; not measured here.
- SHA-256: none is recorded. The hosts could not be reached from where this table was written,
  so no checksum could be computed, and none is invented: a download prints the checksum it
  computed and says it was not verified. Fill `sha256` in once a trusted value is known.
"""

from __future__ import annotations

from dataclasses import dataclass

from pixtrans import PixtransError
from pixtrans.registry import did_you_mean

PIX2PIX_BASE = "http://efrosgans.eecs.berkeley.edu/pix2pix/datasets/"
CYCLEGAN_BASE = "http://efrosgans.eecs.berkeley.edu/cyclegan/datasets/"


@dataclass(frozen=True)
class DatasetEntry:
    family: str  # pix2pix | cyclegan
    name: str  # the archive's name and the folder it unpacks to
    url: str
    approx_mb: float | None  # approximate archive size (third-party listing), None = unknown
    sha256: str | None  # None = not known (the download prints what it computed)
    contents: str
    terms: str  # licence / terms of use, as far as the sources say
    presets: tuple[str, ...] = ()
    refused: str = ""  # why pixtrans will not download it (licence), "" = it will

    @property
    def key(self) -> str:
        return f"{self.family}/{self.name}"

    @property
    def archive(self) -> str:
        return self.url.rsplit("/", 1)[1]

    @property
    def layout(self) -> str:
        """What the archive unpacks to (A|B images in split folders, or two domains)."""
        if self.url.endswith(".tar.gz"):  # the pix2pix archives
            return f"{self.name}/{{train,val,...}} of A|B images"
        return f"{self.name}/{{trainA,trainB,testA,testB}}"


_RESEARCH = "research use; no licence stated (cite the source)"
_CITYSCAPES = (
    "Cityscapes may not be redistributed (its licence): register at https://www.cityscapes-dataset.com, "
    "download gtFine_trainvaltest.zip and leftImg8bit_trainvaltest.zip, then run "
    "`pixtrans prepare cityscapes SRC DST --pix2pix DST2`"
)


def _p2p(name, mb, contents, terms, presets=(), refused=""):
    return DatasetEntry(
        "pix2pix", name, f"{PIX2PIX_BASE}{name}.tar.gz", mb, None, contents, terms, presets, refused
    )


def _cg(name, mb, contents, terms, presets=(), refused=""):
    return DatasetEntry(
        "cyclegan", name, f"{CYCLEGAN_BASE}{name}.zip", mb, None, contents, terms, presets, refused
    )


CATALOG: tuple[DatasetEntry, ...] = (
    _p2p(
        "facades",
        29,
        "400 train / 100 val / 106 test photo|labels pairs, CMP Facades",
        f"CMP Facade Database (Tylecek & Sara 2013): {_RESEARCH}",
        ("pix2pix/facades",),
    ),
    _p2p(
        "cityscapes",
        99,
        "2975 train photo|labels pairs from Cityscapes",
        "Cityscapes licence",
        ("pix2pix/cityscapes",),
        _CITYSCAPES,
    ),
    _p2p(
        "maps",
        239,
        "1096 train map|aerial pairs scraped from Google Maps",
        "scraped from Google Maps: Google's terms; research use",
        ("pix2pix/maps",),
    ),
    _p2p(
        "edges2shoes",
        2048,
        "50k edges|photo pairs, UT Zappos50K (HED edges)",
        f"UT Zappos50K (Yu & Grauman 2014): {_RESEARCH}",
        ("pix2pix/edges2shoes",),
    ),
    _p2p(
        "edges2handbags",
        8192,
        "137k edges|photo pairs, Amazon handbags (iGAN; HED edges)",
        f"Amazon handbag images collected by iGAN (Zhu et al. 2016): {_RESEARCH}",
    ),
    _p2p(
        "night2day",
        None,
        "about 20k night|day pairs, Transient Attributes",
        f"Transient Attributes (Laffont et al. 2014): {_RESEARCH}",
    ),
    _cg(
        "horse2zebra",
        111,
        "939 horse / 1177 zebra photos (ImageNet)",
        "ImageNet terms: non-commercial research",
        ("cyclegan/horse2zebra",),
    ),
    _cg(
        "apple2orange",
        75,
        "996 apple / 1020 orange photos (ImageNet)",
        "ImageNet terms: non-commercial research",
        ("cyclegan/apple2orange",),
    ),
    _cg(
        "summer2winter_yosemite",
        126,
        "1273 summer / 854 winter Yosemite photos (Flickr)",
        "Flickr photos under their owners' terms; research use",
        ("cyclegan/summer2winter",),
    ),
    _cg(
        "monet2photo",
        291,
        "1074 Monet paintings (WikiArt) / 6853 photos (Flickr)",
        "WikiArt and Flickr images under their owners' terms; research use",
        ("cyclegan/monet2photo",),
    ),
    _cg(
        "cezanne2photo",
        267,
        "584 Cezanne paintings (WikiArt) / 6853 photos (Flickr)",
        "WikiArt and Flickr images under their owners' terms; research use",
    ),
    _cg(
        "ukiyoe2photo",
        279,
        "1433 ukiyo-e prints (WikiArt) / 6853 photos (Flickr)",
        "WikiArt and Flickr images under their owners' terms; research use",
    ),
    _cg(
        "vangogh2photo",
        292,
        "401 Van Gogh paintings (WikiArt) / 6853 photos (Flickr)",
        "WikiArt and Flickr images under their owners' terms; research use",
    ),
    _cg(
        "maps",
        1434,
        "1096 map / aerial images, unpaired layout (Google Maps)",
        "scraped from Google Maps: Google's terms; research use",
        ("cyclegan/maps",),
    ),
    _cg(
        "facades",
        34,
        "400 photo / label images, unpaired layout (CMP Facades)",
        f"CMP Facade Database: {_RESEARCH}",
    ),
    _cg(
        "cityscapes",
        58,
        "2975 photo / label images, unpaired layout (Cityscapes)",
        "Cityscapes licence",
        (),
        _CITYSCAPES,
    ),
    _cg(
        "iphone2dslr_flower",
        324,
        "1813 iPhone / 3316 DSLR flower photos (Flickr)",
        "Flickr photos under their owners' terms; research use",
    ),
    _cg("ae_photos", 10, "a few test photos for the CycleGAN demo", _RESEARCH),
)


def find_entry(name: str, catalog: tuple[DatasetEntry, ...] = CATALOG) -> DatasetEntry:
    """`family/name`, or a bare name: the first entry of that name (pix2pix before cyclegan)."""
    by_key = {e.key: e for e in catalog}
    if name in by_key:
        return by_key[name]
    matches = [e for e in catalog if e.name == name]
    if matches:  # where both families have it (facades, maps), the paired (pix2pix) one first
        return matches[0]
    names = sorted(set(by_key) | {e.name for e in catalog})
    raise PixtransError(
        f"unknown dataset '{name}'{did_you_mean(name, names)}; `pixtrans data list` shows the known ones"
    )


def _size(e: DatasetEntry) -> str:
    if e.approx_mb is None:
        return "unknown"
    return f"~{e.approx_mb / 1024:.1f} GB" if e.approx_mb >= 1024 else f"~{e.approx_mb:.0f} MB"


def format_table(catalog: tuple[DatasetEntry, ...] = CATALOG) -> str:
    """The catalog as a text table (what `pixtrans data list` prints)."""
    rows = [("name", "size", "sha256", "unpacks to", "terms")]
    for e in catalog:
        sha = e.sha256[:12] + "..." if e.sha256 else "unknown"
        terms = e.terms if not e.refused else f"{e.terms} (not downloadable: see its entry)"
        rows.append((e.key, _size(e), sha, e.layout, terms))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r[:4], widths, strict=True)) + "  " + r[4] for r in rows]
    lines.append("")
    lines.append(
        "sizes are approximate (a third-party listing); no checksum is recorded yet, so a download prints "
        "the SHA-256 it computed and says it was not verified. Cityscapes: register at "
        "cityscapes-dataset.com, then `pixtrans prepare cityscapes`."
    )
    return "\n".join(lines)
