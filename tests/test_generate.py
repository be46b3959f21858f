"""``generate``: synthetic images of a run's snapshot as PNG, npz or DICOM, deterministic per seed."""
import csv
import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
import tensorflow as tf
from conftest import write_snapshot_run
from PIL import Image

from medgan_lib.__main__ import main
from medgan_lib.config import Config
from medgan_lib.generate import EMA_FIELD, GenerationError, generate_to_directory, sampling_snapshot
from medgan_lib.generator import build_generator
from medgan_lib.rundir import load_weights_file, read_config
from medgan_lib.sampling import generate_images, latent_batch


def manifest(out: Path) -> list[dict]:
    with open(out / "manifest.csv") as f:
        return list(csv.DictReader(f))


def error_lines(capsys) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]


@pytest.fixture(scope="module")
def npz_out(snapshot_run, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("gen") / "npz"
    generate_to_directory(snapshot_run, 7, out, seed=5, file_format="npz")
    return out


def test_npz_holds_the_generator_output_of_the_evaluation_latents(snapshot_run, npz_out):
    archive = np.load(npz_out / "synthetic.npz")
    assert archive["images"].dtype == np.float32 and archive["images"].shape == (7, 32, 32, 1)
    z = latent_batch(5, 7, read_config(snapshot_run).latent_dim)  # evaluate's latent vectors for seed 5
    np.testing.assert_array_equal(archive["latents"], z)
    np.testing.assert_array_equal(archive["latent_index"], np.arange(7))
    generator = build_generator(read_config(snapshot_run))
    load_weights_file(generator, sampling_snapshot(snapshot_run).path)
    expected = (generate_images(generator, z) + 1) / 2
    np.testing.assert_allclose(archive["images"], expected, atol=1e-6)
    assert 0.0 <= archive["images"].min() and archive["images"].max() <= 1.0
    assert "float32 in [0, 1]" in str(archive["encoding"])


def test_manifest_generation_record_and_run_copies(snapshot_run, npz_out):
    rows = manifest(npz_out)
    assert [r["latent_index"] for r in rows] == [str(i) for i in range(7)]
    assert {(r["file"], r["epoch"], r["seed"], r["weights"]) for r in rows} == {("synthetic.npz", "3", "5", "generator")}
    assert [r["row"] for r in rows] == [str(i) for i in range(7)]
    record = json.loads((npz_out / "generation.json").read_text())
    assert (record["epoch"], record["n"], record["seed"], record["format"]) == (3, 7, 5, "npz")
    assert len(record["weights"]["sha256"]) == 64
    for name in ("config.json", "provenance.json"):
        assert (npz_out / name).read_bytes() == (snapshot_run / name).read_bytes()


def test_png_8_and_16_bit_are_the_npz_values_quantized(snapshot_run, npz_out, tmp_path):
    floats = np.load(npz_out / "synthetic.npz")["images"][..., 0]
    for fmt, bits, mode in (("png", 8, "L"), ("png16", 16, "I;16")):
        result = generate_to_directory(snapshot_run, 7, tmp_path / fmt, seed=5, file_format=fmt)
        assert result.files == 7
        files = sorted((tmp_path / fmt).glob("synthetic_*.png"))
        assert [p.name for p in files] == [r["file"] for r in manifest(tmp_path / fmt)]
        for i, path in enumerate(files):
            image = Image.open(path)
            assert image.mode == mode and image.size == (32, 32)
            np.testing.assert_array_equal(np.array(image), np.rint(floats[i] * (2**bits - 1)))


def test_same_seed_same_files_and_larger_n_extends(snapshot_run, tmp_path):
    generate_to_directory(snapshot_run, 5, tmp_path / "a", seed=1)
    generate_to_directory(snapshot_run, 3, tmp_path / "b", seed=1)
    generate_to_directory(snapshot_run, 3, tmp_path / "c", seed=2)
    for i in range(3):
        name = f"synthetic_{i:06d}.png"
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
        assert (tmp_path / "a" / name).read_bytes() != (tmp_path / "c" / name).read_bytes()
    generate_to_directory(snapshot_run, 5, tmp_path / "a2", seed=1, file_format="npz")
    generate_to_directory(snapshot_run, 5, tmp_path / "a3", seed=1, file_format="npz")
    assert (tmp_path / "a2" / "synthetic.npz").read_bytes() == (tmp_path / "a3" / "synthetic.npz").read_bytes()


def test_batch_size_changes_only_float_rounding(snapshot_run, tmp_path):
    generate_to_directory(snapshot_run, 5, tmp_path / "b2", seed=1, file_format="npz", batch_size=2)
    generate_to_directory(snapshot_run, 5, tmp_path / "b64", seed=1, file_format="npz", batch_size=64)
    small, large = (np.load(tmp_path / name / "synthetic.npz") for name in ("b2", "b64"))
    np.testing.assert_array_equal(small["latents"], large["latents"])  # the same latent rows
    np.testing.assert_allclose(small["images"], large["images"], atol=1e-6)  # convolutions round per batch


def test_dicom_is_an_anonymous_synthetic_secondary_capture_series(snapshot_run, npz_out, tmp_path):
    floats = np.load(npz_out / "synthetic.npz")["images"][..., 0]
    for fmt, bits in (("dicom", 8), ("dicom16", 16)):
        generate_to_directory(snapshot_run, 7, tmp_path / fmt, seed=5, file_format=fmt)
        files = sorted((tmp_path / fmt).glob("synthetic_*.dcm"))
        assert len(files) == 7
        series = set()
        for i, path in enumerate(files):
            ds = pydicom.dcmread(path)
            assert ds.SyntheticData == "YES" and ds[0x0008, 0x001C].value == "YES"
            assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.7" == ds.file_meta.MediaStorageSOPClassUID
            assert list(ds.ImageType) == ["DERIVED", "SECONDARY"]
            assert str(ds.PatientName) == "" and ds.PatientID == ""
            assert ds.SeriesDescription == f"medgan {snapshot_run.name} (smoke) epoch 3"
            assert (ds.PhotometricInterpretation, ds.BitsStored, ds.InstanceNumber) == ("MONOCHROME2", bits, i + 1)
            np.testing.assert_array_equal(ds.pixel_array, np.rint(floats[i] * (2**bits - 1)))
            series.add((ds.StudyInstanceUID, ds.SeriesInstanceUID))
        assert len(series) == 1  # one series per call
    first = pydicom.dcmread(tmp_path / "dicom" / "synthetic_000000.dcm").SeriesInstanceUID
    assert pydicom.dcmread(tmp_path / "dicom16" / "synthetic_000000.dcm").SeriesInstanceUID != first


def test_rgb_runs_give_rgb_png_and_dicom(tmp_path):
    run = write_snapshot_run(tmp_path / "rgb", channels=3, epochs=(2,))
    generate_to_directory(run, 2, tmp_path / "png", file_format="png16")
    generate_to_directory(run, 2, tmp_path / "dcm", file_format="dicom")
    data = (tmp_path / "png" / "synthetic_000001.png").read_bytes()
    assert data[24:26] == bytes([16, 2])  # IHDR: bit depth 16, colour type 2 (RGB); Pillow reads it as 8-bit
    image = tf.io.decode_png(data, dtype=tf.uint16).numpy()
    assert image.shape == (32, 32, 3)
    ds = pydicom.dcmread(tmp_path / "dcm" / "synthetic_000001.dcm")
    assert ds.PhotometricInterpretation == "RGB" and ds.pixel_array.shape == (32, 32, 3)
    np.testing.assert_allclose(ds.pixel_array / 255, image / 65535, atol=0.5 / 255 + 1e-6)


def test_the_last_snapshot_by_default_or_the_epoch_asked(snapshot_run, tmp_path):
    assert sampling_snapshot(snapshot_run).epoch == 3 and sampling_snapshot(snapshot_run, 1).epoch == 1
    generate_to_directory(snapshot_run, 2, tmp_path / "last", file_format="npz")
    generate_to_directory(snapshot_run, 2, tmp_path / "one", file_format="npz", epoch=1)
    assert {r["epoch"] for r in manifest(tmp_path / "one")} == {"1"}
    images = {name: np.load(tmp_path / name / "synthetic.npz")["images"] for name in ("last", "one")}
    assert not np.array_equal(images["last"], images["one"])  # other weights
    assert {r["weights"] for r in manifest(tmp_path / "last")} == {"generator"}


@pytest.mark.skipif(EMA_FIELD not in {f.name for f in dataclasses.fields(Config)},
                    reason=f"Config has no {EMA_FIELD} field (weight-average generator) in this version")
def test_a_weight_average_run_is_sampled_and_labelled_as_ema(snapshot_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(snapshot_run, run)
    (run / "config.json").write_text(read_config(run).replace(**{EMA_FIELD: 0.9}).to_json())
    generate_to_directory(run, 2, tmp_path / "ema", file_format="npz")
    assert sampling_snapshot(run).kind == "ema" and {r["weights"] for r in manifest(tmp_path / "ema")} == {"ema"}


def test_a_directory_with_files_is_refused_unless_overwrite(snapshot_run, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    args = ["generate", "--run-dir", str(snapshot_run), "--n", "3", "--out", str(out)]
    assert main(args) == 2
    lines = error_lines(capsys)
    assert len(lines) == 1 and "already holds 1 files (notes.txt)" in lines[0] and "--overwrite" in lines[0]
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    assert main([*args, "--n", "4", "--overwrite"]) == 0
    assert main([*args, "--n", "2", "--overwrite"]) == 0  # fewer images: the earlier ones are gone
    assert sorted(p.name for p in out.glob("synthetic_*")) == ["synthetic_000000.png", "synthetic_000001.png"]
    assert (out / "notes.txt").read_text() == "mine" and len(manifest(out)) == 2


def test_a_run_without_snapshots_or_epoch_is_one_error(snapshot_run, tmp_path, capsys):
    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copyfile(snapshot_run / "config.json", bare / "config.json")
    for run, epoch, expected in ((bare, [], "has no generator snapshots"),
                                 (tmp_path / "nothing", [], "no training run in"),
                                 (snapshot_run, ["--epoch", "2"], "no generator snapshot for epoch 2; saved: [1, 3]")):
        code = main(["generate", "--run-dir", str(run), "--n", "2", "--out", str(tmp_path / "o"), *epoch])
        lines = error_lines(capsys)
        assert code == 2 and len(lines) == 1 and expected in lines[0], lines
    with pytest.raises(GenerationError, match="has no generator snapshots"):
        generate_to_directory(bare, 1, tmp_path / "o2")
    assert not (tmp_path / "o2").exists()


@pytest.mark.parametrize("option, value, message", [("--n", "0", "--n: must be >= 1, got 0"),
                                                    ("--batch-size", "x", "--batch-size: expected an integer"),
                                                    ("--format", "tiff", "--format: invalid choice: 'tiff'")])
def test_bad_generate_options_are_one_error_line(snapshot_run, tmp_path, capsys, option, value, message):
    args = {"--run-dir": str(snapshot_run), "--n": "2", "--out": str(tmp_path / "o"), option: value}
    with pytest.raises(SystemExit) as stop:
        main(["generate", *[part for item in args.items() for part in item]])
    lines = error_lines(capsys)
    assert stop.value.code == 2 and len(lines) == 1 and message in lines[0], lines
