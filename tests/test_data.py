"""Tests for medgan_lib.data: every loader, the intensity mappings, the errors and make_dataset.

All inputs are written into pytest's tmp_path; nothing outside the repository is read and the
MedMNIST downloader is replaced, so the tests need no network.
"""
from __future__ import annotations

import hashlib
import logging
import os
import sys
import types
import urllib.error
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from medgan_lib import data
from medgan_lib.data import DataError, dataset_fingerprint, load_images, make_dataset


def gray_ramp(height: int = 16, width: int = 16) -> np.ndarray:
    """uint8 image containing 0 at [0, 0] and 255 at [-1, -1]."""
    return np.linspace(0, 255, height * width).round().astype(np.uint8).reshape(height, width)


def to_unit(values: np.ndarray | float) -> np.ndarray:
    """The expected [-1, 1] value of 8-bit pixels."""
    return np.asarray(values, np.float32) / np.float32(255) * np.float32(2) - np.float32(1)


def write_dicom(
    path: Path,
    pixels: np.ndarray,
    *,
    photometric: str = "MONOCHROME2",
    bits_stored: int = 12,
    slope: float | None = None,
    intercept: float | None = None,
    with_pixels: bool = True,
    **elements,
) -> None:
    """Write a 16-bit-allocated DICOM file (2D or multi-frame (F, H, W)) with pydicom; ``elements`` are set as given."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "OT"
    ds.Rows, ds.Columns = pixels.shape[-2:]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = 16
    ds.BitsStored = bits_stored
    ds.HighBit = bits_stored - 1
    ds.PixelRepresentation = 0
    if pixels.ndim == 3:
        ds.NumberOfFrames = pixels.shape[0]
    if slope is not None:
        ds.RescaleSlope = slope
        ds.RescaleIntercept = intercept or 0
    for keyword, value in elements.items():
        setattr(ds, keyword, value)
    if with_pixels:
        ds.PixelData = pixels.astype("<u2").tobytes()
    ds.save_as(path, enforce_file_format=True)


def write_medmnist_npz(path: Path, n_train: int = 6, n_val: int = 3, n_test: int = 2, size: int = 28) -> None:
    """A MedMNIST-layout archive whose pixel value encodes split and index."""
    arrays = {}
    for offset, (split, n) in enumerate((("train", n_train), ("val", n_val), ("test", n_test))):
        values = (np.arange(n) + 10 * offset).astype(np.uint8)
        arrays[f"{split}_images"] = np.broadcast_to(values[:, None, None], (n, size, size)).copy()
        arrays[f"{split}_labels"] = np.zeros((n, 1), np.uint8)
    np.savez(path, **arrays)


def folder(tmp_path: Path, size: int = 16, **kwargs) -> data.ImageSet:
    """load_images on tmp_path as a folder."""
    return load_images(f"folder:{tmp_path}", size, **kwargs)


def assert_valid(result: data.ImageSet, n: int, size: int, channels: int = 1) -> None:
    """Shape, dtype, range and fingerprint of a loaded set."""
    assert result.images.shape == (n, size, size, channels)
    assert result.images.dtype == np.float32
    assert result.images.min() >= -1.0 and result.images.max() <= 1.0
    assert result.fingerprint == dataset_fingerprint(result.images)


# ----------------------------------------------------------------------------- Pillow formats


def test_png_8bit_gray_maps_0_to_minus1_and_255_to_1(tmp_path):
    ramp = gray_ramp()
    Image.fromarray(ramp).save(tmp_path / "a.png")
    result = folder(tmp_path)
    assert_valid(result, 1, 16)
    np.testing.assert_array_equal(result.images[0, ..., 0], to_unit(ramp))
    assert result.images[0, 0, 0, 0] == -1.0 and result.images[0, -1, -1, 0] == 1.0
    assert result.notes == ()
    assert result.source == f"folder:{tmp_path} (1 files: 1 PNG)"


def test_rgb_png_luminance_for_one_channel_and_colour_kept_for_three(tmp_path):
    rgb = np.zeros((16, 16, 3), np.uint8)
    rgb[..., 0] = 255  # pure red
    Image.fromarray(rgb).save(tmp_path / "red.png")
    gray = folder(tmp_path)
    assert_valid(gray, 1, 16)
    np.testing.assert_allclose(gray.images, 0.299 * 2 - 1, atol=1e-6)
    assert any("RGB converted to grayscale" in note for note in gray.notes)
    colour = folder(tmp_path, channels=3)
    assert_valid(colour, 1, 16, channels=3)
    np.testing.assert_array_equal(colour.images[0, 0, 0], [1.0, -1.0, -1.0])


def test_rgb_with_identical_channels_uses_one_channel_exactly(tmp_path):
    ramp = gray_ramp()
    Image.fromarray(np.stack([ramp] * 3, axis=-1)).save(tmp_path / "gray_as_rgb.png")
    result = folder(tmp_path)
    np.testing.assert_array_equal(result.images[0, ..., 0], to_unit(ramp))
    assert any("identical R, G, B" in note for note in result.notes)


def test_rgba_png_drops_alpha(tmp_path):
    rgba = np.zeros((16, 16, 4), np.uint8)
    rgba[..., :3] = 255
    rgba[..., 3] = 0  # fully transparent white: colour must survive, alpha is ignored
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    result = folder(tmp_path)
    np.testing.assert_array_equal(result.images, 1.0)
    assert any("alpha channel dropped" in note for note in result.notes)


def test_palette_png(tmp_path):
    ramp = gray_ramp()
    Image.fromarray(np.stack([ramp, ramp // 2, ramp // 4], -1)).convert("P", palette=Image.ADAPTIVE).save(
        tmp_path / "p.png"
    )
    assert Image.open(tmp_path / "p.png").mode == "P"
    result = folder(tmp_path)
    assert_valid(result, 1, 16)
    assert result.images[0, 0, 0, 0] < result.images[0, -1, -1, 0]


@pytest.mark.parametrize("fmt", ["png", "tiff"])
def test_16bit_png_and_tiff_are_min_max_per_image(tmp_path, fmt):
    pixels = np.full((16, 16), 1000, np.uint16)
    pixels[8:] = 4095  # 12-bit data in a 16-bit container
    pixels[0, 0] = 2547  # the midpoint
    Image.fromarray(pixels).save(tmp_path / f"a.{fmt}")
    assert Image.open(tmp_path / f"a.{fmt}").mode.startswith("I;16")
    result = folder(tmp_path)
    assert_valid(result, 1, 16)
    assert result.images[0, 1, 0, 0] == -1.0 and result.images[0, 8, 0, 0] == 1.0
    assert result.images[0, 0, 0, 0] == pytest.approx(0.0, abs=1e-3)
    assert any("16-bit images min-max normalised per image" in note for note in result.notes)


def test_jpeg_close_to_source(tmp_path):
    pixels = np.full((16, 16), 200, np.uint8)
    Image.fromarray(pixels).save(tmp_path / "a.jpg", quality=95)
    result = folder(tmp_path)
    assert_valid(result, 1, 16)
    np.testing.assert_allclose(result.images, to_unit(200), atol=0.02)
    assert "1 JPEG" in result.source


def test_bmp_exact(tmp_path):
    ramp = gray_ramp()
    Image.fromarray(ramp).save(tmp_path / "a.bmp")
    result = folder(tmp_path)
    np.testing.assert_array_equal(result.images[0, ..., 0], to_unit(ramp))
    assert "1 BMP" in result.source


def test_float_tiff_min_max_and_nan_rejected(tmp_path):
    pixels = np.linspace(-3.0, 5.0, 256, dtype=np.float32).reshape(16, 16)
    Image.fromarray(pixels).save(tmp_path / "a.tif")
    result = folder(tmp_path)
    assert result.images[0, 0, 0, 0] == -1.0 and result.images[0, -1, -1, 0] == 1.0
    pixels[2, :3] = np.nan
    pixels[3, 0] = np.inf
    Image.fromarray(pixels).save(tmp_path / "a.tif")
    with pytest.raises(DataError, match=r"a\.tif.*3 NaN and 1 Inf"):
        folder(tmp_path)


# ----------------------------------------------------------------------------- DICOM


def test_dicom_uses_bits_stored_range(tmp_path):
    pixels = np.zeros((16, 16), np.uint16)
    pixels[0, 1] = 4095
    pixels[0, 2] = 2048
    write_dicom(tmp_path / "a.dcm", pixels, bits_stored=12)
    result = folder(tmp_path)
    assert_valid(result, 1, 16)
    assert result.images[0, 0, 0, 0] == -1.0
    assert result.images[0, 0, 1, 0] == 1.0
    assert result.images[0, 0, 2, 0] == pytest.approx(2048 / 4095 * 2 - 1, abs=1e-6)
    assert "1 DICOM" in result.source


def test_dicom_monochrome1_is_inverted(tmp_path):
    pixels = np.zeros((16, 16), np.uint16)
    pixels[0, 1] = 4095
    write_dicom(tmp_path / "a.dcm", pixels, photometric="MONOCHROME1")
    result = folder(tmp_path)
    assert result.images[0, 0, 0, 0] == 1.0 and result.images[0, 0, 1, 0] == -1.0
    assert any("MONOCHROME1" in note for note in result.notes)


def test_dicom_rescale_slope_applied(tmp_path):
    pixels = np.zeros((16, 16), np.uint16)
    pixels[0, 1] = 4095
    pixels[0, 2] = 1024
    write_dicom(tmp_path / "pos.dcm", pixels, slope=2.0, intercept=-1024.0)
    write_dicom(tmp_path / "neg.dcm", pixels, slope=-1.0, intercept=0.0)
    result = folder(tmp_path)
    negative, positive = result.images[0, 0, :3, 0], result.images[1, 0, :3, 0]
    np.testing.assert_allclose(positive, [-1.0, 1.0, 1024 / 4095 * 2 - 1], atol=1e-6)
    np.testing.assert_allclose(negative, -positive, atol=1e-6)  # a negative slope flips intensities
    assert any("RescaleSlope/Intercept applied: 2 images" in note for note in result.notes)


def test_dicom_detected_by_preamble_without_extension(tmp_path):
    write_dicom(tmp_path / "IM0001", np.full((16, 16), 4095, np.uint16))
    result = folder(tmp_path)
    np.testing.assert_array_equal(result.images, 1.0)
    assert "1 DICOM" in result.source


def cine(values: list[int], size: int = 16) -> np.ndarray:
    """(F, size, size) uint16 frames: a 0..99 ramp plus each value, so no frame is constant."""
    ramp = np.arange(size * size, dtype=np.uint16).reshape(size, size) % 100
    return np.stack([ramp + value for value in values])


def frame_offsets(result: data.ImageSet) -> list[int]:
    """The per-frame value of cine() frames read back with the 12-bit rule ([0, 0] holds the value)."""
    return np.rint((result.images[:, 0, 0, 0] + 1) / 2 * 4095).astype(int).tolist()


def test_dicom_multiframe_takes_every_frame_by_default(tmp_path):
    write_dicom(tmp_path / "cine.dcm", cine([0, 500, 1000, 1500, 2000]))
    result = folder(tmp_path)
    assert frame_offsets(result) == [0, 500, 1000, 1500, 2000]
    assert result.metadata["frames"] == {"cine.dcm": [1, 2, 3, 4, 5]}
    assert result.source == f"folder:{tmp_path} (5 images from 1 files: 1 DICOM)"
    note = next(note for note in result.notes if note.startswith("multi-frame DICOM"))
    assert "(frames=all): every frame of 1 file, 5 images: cine.dcm (5 of 5 frames)" in note


def test_dicom_frames_option_every_k_and_middle(tmp_path):
    write_dicom(tmp_path / "cine.dcm", cine([0, 500, 1000, 1500, 2000]))
    every = load_images(f"folder:{tmp_path}?frames=every:2", 16)
    assert frame_offsets(every) == [0, 1000, 2000] and every.metadata["frames"] == {"cine.dcm": [1, 3, 5]}
    expected = "(frames=every:2): one frame in 2 (frames 1, 3, ...) of 1 file, 3 images"
    assert any(expected in note for note in every.notes)
    middle = load_images(f"folder:{tmp_path}?frames=middle", 16)
    assert frame_offsets(middle) == [1000] and middle.metadata["frames"] == {"cine.dcm": [3]}
    for bad in ("every:0", "some", "every:x"):
        with pytest.raises(DataError, match=rf"frames={bad}: use frames=all, frames=every:K"):
            load_images(f"folder:{tmp_path}?frames={bad}", 16)


def test_dicom_frames_count_toward_the_cap_and_later_files_are_not_read(tmp_path):
    write_dicom(tmp_path / "a.dcm", cine([0, 100, 200, 300, 400]))
    write_dicom(tmp_path / "b.dcm", cine([1000, 1100, 1200, 1300, 1400]))
    (tmp_path / "c.dcm").write_bytes(b"broken")  # after the cap: never opened
    result = folder(tmp_path, n_images=7)
    assert frame_offsets(result) == [0, 100, 200, 300, 400, 1000, 1100]
    assert result.metadata["files"] == ["a.dcm", "b.dcm"]
    assert result.metadata["frames"] == {"a.dcm": [1, 2, 3, 4, 5], "b.dcm": [1, 2]}
    cap_note = next(note for note in result.notes if "n_images=7" in note)
    assert "found 3 image files; n_images=7 keeps the first 7 images in sorted path and frame order" in cap_note
    assert "2 files used, the last one for 2 of its frames; the other 1 files are not read" in cap_note


def test_holdout_keeps_the_frames_of_a_file_together(tmp_path):
    for index in range(4):
        write_dicom(tmp_path / f"run{index}.dcm", cine([1000 * index + 10 * frame for frame in range(3)]))
    train = folder(tmp_path, holdout=0.25)
    held = folder(tmp_path, holdout=0.25, part="holdout")
    assert len(held.metadata["files"]) == 1 and len(held.images) == 3 and len(train.images) == 9
    assert {value // 1000 for value in frame_offsets(held)} == {int(held.metadata["files"][0][3])}


def test_dicom_window_applied_with_voi_on(tmp_path):
    # CT-like: stored + RescaleIntercept -1024 = HU; window centre 0 HU, width 800 HU.
    stored = np.array([[624, 1024, 1424, 0, 4095]], np.uint16).repeat(5, axis=0)
    write_dicom(tmp_path / "ct.dcm", stored, slope=1, intercept=-1024, WindowCenter=0, WindowWidth=800)
    result = load_images(f"folder:{tmp_path}?voi=on", 5)
    row = result.images[0, 0, :, 0]
    np.testing.assert_allclose(row[:3], [-1.0, 0.0, 1.0], atol=0.01)  # window edges -400 / 400 HU -> -1 / 1
    assert row[3] == -1.0 and row[4] == 1.0  # outside the window: clipped
    assert any("modality LUT and window applied (voi=on)" in note for note in result.notes)
    plain = load_images(f"folder:{tmp_path}", 5)  # voi off (default): the BitsStored range
    np.testing.assert_allclose(plain.images[0, 0, :, 0], stored[0] / 4095 * 2 - 1, atol=1e-6)


def test_dicom_voi_multiframe_first_window_lut_and_fallback(tmp_path):
    write_dicom(tmp_path / "a_two_windows.dcm", cine([900, 1000]), WindowCenter=[1000, 2000], WindowWidth=[200, 4000])
    from pydicom.dataset import Dataset

    lut = Dataset()  # an inverting 12-bit VOI LUT
    lut.add_new(0x00283002, "US", [4096, 0, 12])  # LUTDescriptor: entries, first mapped value, bits
    lut.add_new(0x00283006, "US", (4095 - np.arange(4096)).tolist())  # LUTData
    extremes = np.zeros((16, 16), np.uint16)
    extremes[0, 1] = 4095
    write_dicom(tmp_path / "b_lut.dcm", extremes, VOILUTSequence=[lut])
    write_dicom(tmp_path / "c_plain.dcm", extremes)
    result = load_images(f"folder:{tmp_path}?voi=on", 16)
    two_windows = result.images[:2, 0, 0, 0]  # frame values 900 and 1000 through window 1000 +/- 100
    np.testing.assert_allclose(two_windows, [-1.0, 0.0], atol=0.02)
    np.testing.assert_allclose(result.images[2, 0, :2, 0], [1.0, -1.0], atol=1e-6)  # the LUT inverts
    np.testing.assert_allclose(result.images[3, 0, :2, 0], [-1.0, 1.0], atol=1e-6)  # no window: BitsStored rule
    assert any("the first of 2 windows" in note for note in result.notes)
    assert "voi=on but no window or VOI LUT in the file: BitsStored rule used: 1 image" in result.notes
    with pytest.raises(DataError, match="voi=maybe: use voi=on"):
        load_images(f"folder:{tmp_path}?voi=maybe", 16)


# ----------------------------------------------------------------------------- geometry


def test_center_crop_of_non_square_image(tmp_path):
    pixels = np.zeros((16, 32), np.uint8)
    pixels[:, 8:24] = 255  # the central square is white, the side bands black
    Image.fromarray(pixels).save(tmp_path / "wide.png")
    result = folder(tmp_path)
    np.testing.assert_array_equal(result.images, 1.0)
    assert any("center-cropped 1 non-square image" in note and "16x32" in note for note in result.notes)


def test_mixed_sizes_are_resized_with_notes(tmp_path, caplog):
    Image.fromarray(np.full((16, 16), 255, np.uint8)).save(tmp_path / "a.png")
    Image.fromarray(np.full((40, 40), 255, np.uint8)).save(tmp_path / "b.png")
    Image.fromarray(np.full((8, 8), 0, np.uint8)).save(tmp_path / "c.png")
    with caplog.at_level(logging.WARNING, logger="medgan"):
        result = folder(tmp_path)
    assert_valid(result, 3, 16)
    np.testing.assert_allclose(result.images[:2], 1.0, atol=1e-6)
    np.testing.assert_allclose(result.images[2], -1.0, atol=1e-6)
    assert any(note.startswith("mixed image sizes") for note in result.notes)
    resized = [note for note in result.notes if note.startswith("resized 2 images to 16x16")]
    assert resized and "40x40: 1" in resized[0] and "8x8: 1" in resized[0]
    assert any("upsampled" in note for note in result.notes)
    assert any(record.levelno == logging.WARNING and "mixed image sizes" in record.getMessage()
               for record in caplog.records)


def test_downsampling_averages_area(tmp_path):
    checker = (np.indices((32, 32)).sum(axis=0) % 2 * 255).astype(np.uint8)
    Image.fromarray(checker).save(tmp_path / "checker.png")
    result = folder(tmp_path, size=16)
    # the antialiasing filter averages the 0/255 checkerboard to mid-gray (exactly, away from the border)
    np.testing.assert_allclose(result.images[0, 1:-1, 1:-1], 0.0, atol=1e-5)
    np.testing.assert_allclose(result.images, 0.0, atol=0.05)


def test_gray_replicated_to_three_channels(tmp_path):
    ramp = gray_ramp()
    Image.fromarray(ramp).save(tmp_path / "a.png")
    result = folder(tmp_path, channels=3)
    assert_valid(result, 1, 16, channels=3)
    for channel in range(3):
        np.testing.assert_array_equal(result.images[0, ..., channel], to_unit(ramp))
    assert any("replicated to 3 channels" in note for note in result.notes)


# ----------------------------------------------------------------------------- folder behaviour


def test_folder_recursive_sorted_with_skips_and_n_images(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / ".hidden").mkdir()
    for name, value in (("b.png", 20), ("a.png", 10), ("sub/c.png", 30), (".hidden/d.png", 40), (".e.png", 50)):
        Image.fromarray(np.full((16, 16), value, np.uint8)).save(tmp_path / name)
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "labels.csv").write_text("a,1")
    result = folder(tmp_path)
    np.testing.assert_array_equal(result.images[:, 0, 0, 0], to_unit([10, 20, 30]))
    assert result.metadata["files"] == ["a.png", "b.png", str(Path("sub", "c.png"))]
    assert "skipped 2 hidden files or folders" in result.notes
    assert any(note.startswith("skipped 2 non-image files") and ".txt: 1" in note for note in result.notes)
    first_two = folder(tmp_path, n_images=2)
    np.testing.assert_array_equal(first_two.images[:, 0, 0, 0], to_unit([10, 20]))


def test_folder_loads_2000_images_quickly(tmp_path):
    import time

    rng = np.random.default_rng(0)
    for index in range(2000):
        Image.fromarray(rng.integers(0, 256, (64, 64), dtype=np.uint8)).save(tmp_path / f"{index:04d}.png")
    start = time.perf_counter()
    result = load_images(f"folder:{tmp_path}", 64)
    assert result.images.shape == (2000, 64, 64, 1)
    assert time.perf_counter() - start < 20


def write_pngs(directory: Path, values: list[int], size: int = 16) -> None:
    """One constant-free 8-bit PNG per value, named 000.png, 001.png, ... (value at [0, 0])."""
    directory.mkdir(parents=True, exist_ok=True)
    for index, value in enumerate(values):
        pixels = gray_ramp(size, size)
        pixels[0, 0] = value
        Image.fromarray(pixels).save(directory / f"{index:03d}.png")


def test_folder_cap_is_noted_and_files_after_it_are_not_decoded(tmp_path, monkeypatch, caplog):
    write_pngs(tmp_path, [10, 20, 30, 40, 50, 60])
    (tmp_path / "999_broken.png").write_bytes(b"not a png")  # after the cap: never opened
    decoded = []
    real_decode = data._decode_pillow
    monkeypatch.setattr(data, "_decode_pillow", lambda path, job: decoded.append(path.name) or real_decode(path, job))
    with caplog.at_level(logging.WARNING, logger="medgan"):
        result = folder(tmp_path, n_images=4)
    assert decoded == ["000.png", "001.png", "002.png", "003.png"]
    np.testing.assert_array_equal(result.images[:, 0, 0, 0], to_unit([10, 20, 30, 40]))
    assert result.source == f"folder:{tmp_path} (4 of 7 files, n_images=4: 4 PNG)"
    assert result.metadata["files_found"] == 7 and len(result.metadata["files"]) == 4
    cap_note = next(note for note in result.notes if "n_images=4" in note)
    assert "found 7 image files, using the first 4 in sorted path order" in cap_note
    assert "the other 3 are not read" in cap_note and "--n-images" in cap_note
    assert cap_note in caplog.text
    with pytest.raises(DataError, match="999_broken.png"):
        folder(tmp_path)


def test_symlinked_subfolder_is_followed(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "outside"
    write_pngs(root / "a", [10, 20])
    write_pngs(outside, [30, 40])
    (root / "b").symlink_to(outside, target_is_directory=True)
    result = folder(root)
    assert result.metadata["files"] == ["a/000.png", "a/001.png", "b/000.png", "b/001.png"]
    np.testing.assert_array_equal(result.images[:, 0, 0, 0], to_unit([10, 20, 30, 40]))
    assert not any("symbolic link" in note for note in result.notes)


def test_symlink_loop_and_second_link_are_reported_not_followed(tmp_path):
    root = tmp_path / "root"
    write_pngs(root / "a", [10, 20])
    (root / "a" / "loop").symlink_to(root, target_is_directory=True)  # points back to an ancestor
    (root / "again").symlink_to(root / "a", target_is_directory=True)  # a second way to one folder
    result = folder(root)
    assert result.metadata["files"] == ["a/000.png", "a/001.png"]
    links = next(note for note in result.notes if note.startswith("symbolic links to folders not followed again"))
    assert f"a/loop -> {root} (a loop" in links
    assert "again ->" in links and "already scanned" in links


def test_broken_symlink_is_an_error(tmp_path):
    write_pngs(tmp_path, [10])
    (tmp_path / "gone.png").symlink_to(tmp_path / "missing.png")
    with pytest.raises(DataError, match=r"gone\.png: broken symbolic link"):
        folder(tmp_path)


def test_unlistable_subfolder_is_an_error_naming_it(tmp_path, monkeypatch):
    # Tests may run as root, where chmod 000 does not stop reads: make os.scandir fail the way it
    # does for an unreadable folder. The real permission case runs below when not root.
    write_pngs(tmp_path / "ok", [10])
    write_pngs(tmp_path / "locked", [20])
    real_scandir = os.scandir

    def scandir(path):
        if Path(path).name == "locked":
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(data.os, "scandir", scandir)
    with pytest.raises(DataError, match=r"locked: cannot list folder \(Permission denied\)"):
        folder(tmp_path)


def test_unreadable_file_without_extension_is_an_error(tmp_path, monkeypatch):
    # As root, chmod does not stop reads: make open() fail as it does for an unreadable file.
    write_pngs(tmp_path, [10])
    (tmp_path / "scan0001").write_bytes(b"\0" * 200)  # no extension: sniffed for a DICOM preamble
    real_open = open

    def fake_open(path, *args, **kwargs):
        if Path(path).name == "scan0001":
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(data, "open", fake_open, raising=False)
    with pytest.raises(DataError, match=r"scan0001: cannot read file \(Permission denied\)"):
        folder(tmp_path)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0,
                    reason="root reads folders whatever their permissions; the monkeypatched test covers it")
def test_unreadable_subfolder_really_is_an_error(tmp_path):
    write_pngs(tmp_path / "locked", [20])
    (tmp_path / "locked").chmod(0)
    try:
        with pytest.raises(DataError, match="locked: cannot list folder"):
            folder(tmp_path)
    finally:
        (tmp_path / "locked").chmod(0o755)


def test_constant_images_noted_for_8bit_and_float(tmp_path):
    Image.fromarray(np.full((16, 16), 128, np.uint8)).save(tmp_path / "flat.png")
    Image.fromarray(np.full((16, 16), 2.5, np.float32)).save(tmp_path / "flat.tif")
    Image.fromarray(gray_ramp()).save(tmp_path / "ramp.png")
    result = folder(tmp_path)
    assert "constant images (every pixel has the same value): 2 images" in result.notes
    path = tmp_path / "set.npz"
    images = np.stack([gray_ramp(), np.zeros((16, 16), np.uint8)])
    np.savez(path, images=images)
    assert "constant images (every pixel has the same value): 1 image" in load_images(f"npz:{path}", 16).notes


def test_pixel_limit_checked_from_the_header(tmp_path, monkeypatch):
    assert data.DEFAULT_MAX_PIXELS < Image.MAX_IMAGE_PIXELS
    Image.new("1", (3000, 2000)).save(tmp_path / "big.png")
    loads = []
    monkeypatch.setattr(Image.Image, "load", lambda self: loads.append(self) or None)
    with pytest.raises(DataError, match=r"big\.png: 3000x2000 = 6,000,000 pixels, above the limit of 1,000,000"):
        load_images(f"folder:{tmp_path}?max_pixels=1000000", 16)
    assert loads == []  # refused before any pixel was decoded
    monkeypatch.undo()
    assert load_images(f"folder:{tmp_path}?max_pixels=6000000", 16).images.shape == (1, 16, 16, 1)


def test_pixel_limit_for_dicom_and_npz(tmp_path):
    write_dicom(tmp_path / "a.dcm", np.zeros((40, 50), np.uint16))
    with pytest.raises(DataError, match=r"a\.dcm: 50x40 = 2,000 pixels, above the limit of 1,999"):
        load_images(f"folder:{tmp_path}?max_pixels=1999", 16)
    path = tmp_path / "set.npz"
    np.savez(path, images=np.zeros((2, 40, 50), np.uint8))
    with pytest.raises(DataError, match=r"set\.npz \[images\]: 50x40 = 2,000 pixels, above the limit"):
        load_images(f"npz:{path}?max_pixels=1999", 16)
    assert load_images(f"npz:{path}?max_pixels=2000", 16).images.shape == (2, 16, 16, 1)


def test_bad_spec_options(tmp_path):
    write_pngs(tmp_path, [10])
    with pytest.raises(DataError, match=r"unknown option 'colour=1'; valid options: max_pixels=\.\.\."):
        load_images(f"folder:{tmp_path}?colour=1", 16)
    with pytest.raises(DataError, match="max_pixels=lots: must be a positive integer"):
        load_images(f"folder:{tmp_path}?max_pixels=lots", 16)
    odd = tmp_path / "what?" / "x"
    write_pngs(odd, [10])
    assert load_images(f"folder:{odd.parent}", 16).images.shape == (1, 16, 16, 1)  # an existing '?' path


def test_check_training_set_names_the_spec(tmp_path):
    from medgan_lib.config import preset

    write_pngs(tmp_path, [10, 20, 30])
    config = preset("smoke").replace(data=f"folder:{tmp_path}")
    images = load_images(config.data, config.image_size)
    with pytest.raises(DataError, match=rf"folder:{tmp_path}: 3 training images, fewer than the batch size 16"):
        data.check_training_set(images, config)
    data.check_training_set(images, config.replace(batch_size=3))
    with pytest.raises(DataError, match=r"images of shape \(32, 32, 1\), the configuration needs \(64, 64, 1\)"):
        data.check_training_set(images, config.replace(batch_size=3, levels=config.levels + 1))


def test_train_with_too_few_images_writes_nothing(tmp_path):
    from medgan_lib.config import preset
    from medgan_lib.runs import train

    write_pngs(tmp_path / "images", [10, 20, 30])
    config = preset("smoke").replace(data=f"folder:{tmp_path / 'images'}")
    run_dir = tmp_path / "run"
    with pytest.raises(DataError, match="fewer than the batch size"):
        train(config, run_dir, progress=False)
    assert not run_dir.exists() or list(run_dir.iterdir()) == []


# ----------------------------------------------------------------------------- held-out split


def split_folder(root: Path, n: int = 20) -> list[str]:
    """``n`` PNGs whose [0, 0] pixel is 10 + their index; returns their names."""
    write_pngs(root, [10 + index for index in range(n)])
    return [f"{index:03d}.png" for index in range(n)]


def test_folder_holdout_disjoint_complete_and_sized(tmp_path):
    names = split_folder(tmp_path)
    train = folder(tmp_path, holdout=0.25)
    held = folder(tmp_path, holdout=0.25, part="holdout")
    assert len(train.metadata["files"]) == 15 and len(held.metadata["files"]) == 5
    assert set(train.metadata["files"]).isdisjoint(held.metadata["files"])
    assert sorted(train.metadata["files"] + held.metadata["files"]) == names
    assert train.metadata["files"] == sorted(train.metadata["files"])  # each part in sorted path order
    values = set(np.rint((train.images[:, 0, 0, 0] + 1) / 2 * 255).astype(int)) | set(
        np.rint((held.images[:, 0, 0, 0] + 1) / 2 * 255).astype(int))
    assert values == set(range(10, 30))
    assert train.split == {**train.split, "fraction": 0.25, "seed": 0, "part": "train", "unit": "file",
                           "found": 20, "train": 15, "holdout": 5}
    assert held.split["part"] == "holdout" and held.split["part_sha256"] != train.split["part_sha256"]
    assert any(note.startswith("held-out split: 5 of 20 files held out") for note in train.notes)
    assert "of the train part, holdout=0.25" in train.source


def test_folder_holdout_stable_and_a_function_of_names_and_seed(tmp_path):
    names = split_folder(tmp_path / "a")
    (tmp_path / "b").mkdir()
    for name in reversed(names):  # the same names written in another order, with other pixels
        Image.fromarray(np.full((16, 16), 7, np.uint8)).save(tmp_path / "b" / name)
    first = folder(tmp_path / "a", holdout=0.3, part="holdout").metadata["files"]
    assert folder(tmp_path / "a", holdout=0.3, part="holdout").metadata["files"] == first
    assert folder(tmp_path / "b", holdout=0.3, part="holdout").metadata["files"] == first
    other_seed = folder(tmp_path / "a", holdout=0.3, part="holdout", split_seed=1).metadata["files"]
    assert other_seed != first and len(other_seed) == len(first) == 6
    assert folder(tmp_path / "a", holdout=0.3, part="holdout", seed=5).metadata["files"] == first  # not the run seed


def test_holdout_with_n_images_caps_the_returned_part(tmp_path):
    split_folder(tmp_path)
    train = folder(tmp_path, holdout=0.25)
    capped = folder(tmp_path, holdout=0.25, n_images=4)
    assert capped.metadata["files"] == train.metadata["files"][:4]
    assert folder(tmp_path, holdout=0.25, part="holdout", n_images=4).metadata["files"] == folder(
        tmp_path, holdout=0.25, part="holdout").metadata["files"][:4]
    cap_note = next(note for note in capped.notes if "n_images=4" in note)
    assert "(train part): found 15 image files, using the first 4" in cap_note


def test_npz_holdout_rows(tmp_path):
    path = tmp_path / "set.npz"
    images = np.stack([gray_ramp() for _ in range(40)])
    images[:, 0, 0] = np.arange(40)
    np.savez(path, images=images)
    train = load_images(f"npz:{path}", 16, holdout=0.2)
    held = load_images(f"npz:{path}", 16, holdout=0.2, part="holdout")
    rows = lambda result: np.rint((result.images[:, 0, 0, 0] + 1) / 2 * 255).astype(int).tolist()
    assert len(rows(train)) == 32 and len(rows(held)) == 8
    assert sorted(rows(train) + rows(held)) == list(range(40)) and rows(train) == sorted(rows(train))
    assert train.split["unit"] == "array row" and train.split["holdout"] == 8
    assert rows(load_images(f"npz:{path}", 16, n_images=5, holdout=0.2)) == rows(train)[:5]
    assert rows(load_images(f"npz:{path}", 16, holdout=0.2, part="holdout")) == rows(held)


def test_phantom_holdout_is_the_phantom_of_the_next_seed_whatever_the_fraction():
    plain = load_images("phantom:6", 16, seed=3)
    train = load_images("phantom:6", 16, seed=3, holdout=0.2)
    held = load_images("phantom:6", 16, seed=3, holdout=0.2, part="holdout")
    assert train.fingerprint == plain.fingerprint  # the training set is not reduced
    assert held.images.shape == plain.images.shape
    assert held.split == {**train.split, "part": "holdout"}
    assert held.split["holdout_seed"] == 4 and "6 images, seed 4" in held.source
    np.testing.assert_array_equal(held.images, load_images("phantom:6", 16, seed=4).images)
    unsplit_held = load_images("phantom:6", 16, seed=3, part="holdout")  # no fraction: the same held-out frames
    assert unsplit_held.fingerprint == held.fingerprint and unsplit_held.split["fraction"] == 0.0
    distance = np.abs(held.images[:, None] - plain.images[None]).reshape(6, 6, -1).max(axis=-1)
    assert distance.min() > 0.1  # no held-out frame equals a training frame
    with pytest.raises(DataError, match="seed in"):
        load_images("phantom:6", 16, seed=2**32 - 1, part="holdout")


def test_holdout_mask_adding_a_file_moves_at_most_one_other():
    from medgan_lib.holdout import holdout_mask

    keys = [f"case_{index:03d}.png" for index in range(100)]
    before = dict(zip(keys, holdout_mask(keys, 0.2, seed=0)))
    after = dict(zip(keys + ["new.png"], holdout_mask(keys + ["new.png"], 0.2, seed=0)))
    assert sum(before.values()) == 20 and sum(after.values()) == 20
    assert sum(before[key] != after[key] for key in keys) <= 1


def test_holdout_errors(tmp_path):
    split_folder(tmp_path, n=2)
    with pytest.raises(DataError, match="holdout must be a fraction between 0 and 1"):
        folder(tmp_path, holdout=1.0)
    with pytest.raises(DataError, match="part='holdout' needs a held-out split"):
        folder(tmp_path, part="holdout")
    with pytest.raises(DataError, match="part must be one of"):
        folder(tmp_path, holdout=0.5, part="test")
    with pytest.raises(DataError, match=rf"folder:{tmp_path}: holdout 0.9 of 2 items holds out 2, leaving none"):
        folder(tmp_path, holdout=0.9)
    assert len(folder(tmp_path, holdout=0.01).metadata["files"]) == 1  # at least one item is held out


# ----------------------------------------------------------------------------- npz


def write_npz_member(path: Path, name: str, shape: tuple, rows: np.ndarray, compress: bool = True) -> None:
    """An .npz holding one member whose header says ``shape`` but whose data is only ``rows``."""
    import zipfile

    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED) as archive:
        with archive.open(f"{name}.npy", "w") as member:
            header = {"descr": np.lib.format.dtype_to_descr(rows.dtype), "fortran_order": False, "shape": shape}
            np.lib.format.write_array_header_1_0(member, header)
            member.write(np.ascontiguousarray(rows).tobytes())


def test_npz_cap_reads_only_the_needed_rows(tmp_path):
    # The header promises 100,000 images but the data stops after 10: a capped load that read the
    # whole member would fail; one that stops at the cap does not.
    path = tmp_path / "big.npz"
    rows = np.broadcast_to(np.arange(10, dtype=np.uint8)[:, None, None] * 20, (10, 28, 28))
    write_npz_member(path, "images", (100_000, 28, 28), rows)
    capped = load_images(f"npz:{path}", 28, n_images=5)
    np.testing.assert_array_equal(capped.images[:, 0, 0, 0], to_unit([0, 20, 40, 60, 80]))
    assert capped.metadata["images_found"] == 100_000
    assert "5 of 100000 images, n_images=5" in capped.source
    assert any("found 100000 images, using the first 5 in array order" in note for note in capped.notes)
    with pytest.raises(DataError, match=r"big\.npz: array 'images' is truncated"):
        load_images(f"npz:{path}", 28)


@pytest.mark.parametrize("compress", [True, False])
def test_npz_archive_rows_at_any_indices(tmp_path, compress):
    from medgan_lib.npz_archive import NpzArchive

    array = np.arange(50 * 3 * 2, dtype=">u2").reshape(50, 3, 2)  # big-endian, as another machine may write it
    path = tmp_path / "a.npz"
    write_npz_member(path, "x", array.shape, array, compress)
    with NpzArchive(path) as archive:
        header = archive.header("x")
        assert (header.shape, header.dtype, header.row_bytes) == ((50, 3, 2), np.dtype(">u2"), 12)
        wanted = np.array([0, 1, 2, 7, 30, 31, 49])
        np.testing.assert_array_equal(archive.rows("x", wanted), array[wanted])
        assert archive.rows("x", np.array([], np.int64)).shape == (0, 3, 2)


def test_npz_fortran_order_and_object_arrays(tmp_path):
    path = tmp_path / "f.npz"
    images = np.asfortranarray(np.stack([gray_ramp(), gray_ramp()[::-1]]))
    np.savez(path, images=images)
    np.testing.assert_array_equal(load_images(f"npz:{path}", 16, n_images=1).images[0, ..., 0], to_unit(gray_ramp()))
    objects = tmp_path / "o.npz"
    np.savez(objects, images=np.array([None, 1], dtype=object))
    with pytest.raises(DataError, match=r"o\.npz: array 'images' holds Python objects .* never unpickled"):
        load_images(f"npz:{objects}", 16)


def test_npz_medmnist_layout_and_selections(tmp_path):
    path = tmp_path / "mm.npz"
    write_medmnist_npz(path)
    train = load_images(f"npz:{path}", 28)
    assert_valid(train, 6, 28)
    np.testing.assert_array_equal(train.images[:, 0, 0, 0], to_unit(np.arange(6)))
    assert load_images(f"npz:{path}#val", 28).images[0, 0, 0, 0] == to_unit(10)
    assert len(load_images(f"npz:{path}#test", 28).images) == 2
    everything = load_images(f"npz:{path}#all", 28, n_images=8)
    np.testing.assert_array_equal(everything.images[:, 0, 0, 0], to_unit([0, 1, 2, 3, 4, 5, 10, 11]))
    assert "train_images" in train.source


def test_npz_images_layout_rgb_uint8(tmp_path):
    images = np.zeros((4, 8, 8, 3), np.uint8)
    images[..., 1] = 255  # pure green
    np.savez(tmp_path / "x.npz", images=images, labels=np.arange(4))
    result = load_images(f"npz:{tmp_path / 'x.npz'}", 8)
    assert_valid(result, 4, 8)
    np.testing.assert_allclose(result.images, 0.587 * 2 - 1, atol=1e-6)


@pytest.mark.parametrize("dtype", [np.uint16, np.float32])
def test_npz_non_uint8_min_max_over_whole_array(tmp_path, dtype):
    images = np.zeros((2, 8, 8), dtype)
    images[0] = 100
    images[1] = 300
    images[1, 0, 0] = 500
    np.savez(tmp_path / "x.npz", images=images)
    result = load_images(f"npz:{tmp_path / 'x.npz'}", 8)
    # one map for all images: 100 -> -1, 300 -> 0, 500 -> 1 (per-image min-max would give -1 for both)
    assert result.images[0, 1, 1, 0] == -1.0
    assert result.images[1, 1, 1, 0] == pytest.approx(0.0, abs=1e-6)
    assert result.images[1, 0, 0, 0] == 1.0
    assert any("min-max normalised over all 2 images" in note for note in result.notes)


def test_npz_wrong_keys_lists_found_and_expected(tmp_path):
    np.savez(tmp_path / "bad.npz", x_train=np.zeros((2, 8, 8), np.uint8), y_train=np.zeros(2))
    with pytest.raises(DataError, match=r"bad\.npz.*x_train.*y_train.*expected 'images'.*train_images"):
        load_images(f"npz:{tmp_path / 'bad.npz'}", 8)


def test_npz_nan_names_array_and_count(tmp_path):
    images = np.zeros((3, 8, 8), np.float32)
    images[1, :2, :2] = np.nan
    np.savez(tmp_path / "nan.npz", images=images)
    with pytest.raises(DataError, match=r"nan\.npz \[images\]: 4 NaN and 0 Inf"):
        load_images(f"npz:{tmp_path / 'nan.npz'}", 8)


def test_npz_channels_first_rejected(tmp_path):
    np.savez(tmp_path / "cf.npz", images=np.zeros((2, 3, 8, 8), np.uint8))
    with pytest.raises(DataError, match=r"cf\.npz.*channels-first"):
        load_images(f"npz:{tmp_path / 'cf.npz'}", 8)


# ----------------------------------------------------------------------------- bad inputs


def test_missing_paths(tmp_path):
    with pytest.raises(DataError, match="nowhere.*not found"):
        load_images(f"folder:{tmp_path / 'nowhere'}", 16)
    with pytest.raises(DataError, match=r"missing\.npz.*not found"):
        load_images(f"npz:{tmp_path / 'missing.npz'}", 16)


def test_empty_folder(tmp_path):
    (tmp_path / "readme.txt").write_text("no images here")
    with pytest.raises(DataError, match=rf"{tmp_path.name}: no images found.*skipped 1 non-image file \(\.txt: 1\)"):
        folder(tmp_path)


def test_truncated_png(tmp_path):
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8)).save(tmp_path / "t.png")
    payload = (tmp_path / "t.png").read_bytes()
    (tmp_path / "t.png").write_bytes(payload[: len(payload) // 2])
    with pytest.raises(DataError, match=r"t\.png: cannot decode image"):
        folder(tmp_path)


def test_non_image_file_with_image_extension(tmp_path):
    Image.fromarray(gray_ramp()).save(tmp_path / "good.png")
    (tmp_path / "fake.jpg").write_text("this is text, not a JPEG")
    with pytest.raises(DataError, match=r"fake\.jpg: cannot decode image"):
        folder(tmp_path)


def test_dicom_without_pixel_data(tmp_path):
    write_dicom(tmp_path / "nopix.dcm", np.zeros((16, 16), np.uint16), with_pixels=False)
    with pytest.raises(DataError, match=r"nopix\.dcm: DICOM file has no pixel data"):
        folder(tmp_path)


def test_garbage_dcm(tmp_path):
    (tmp_path / "junk.dcm").write_bytes(b"\x00\x01garbage" * 20)
    with pytest.raises(DataError, match=r"junk\.dcm"):
        folder(tmp_path)


def test_zero_images_after_selection(tmp_path):
    path = tmp_path / "mm.npz"
    write_medmnist_npz(path, n_val=0)
    with pytest.raises(DataError, match="zero images after selection"):
        load_images(f"npz:{path}#val", 28)
    Image.fromarray(gray_ramp()).save(tmp_path / "a.png")
    with pytest.raises(DataError, match="zero images after selection with n_images=0"):
        folder(tmp_path, n_images=0)


def test_unknown_spec_lists_valid_specs():
    expected = r"unknown dataset spec 'dicomdir:/x'.*phantom.*npz:PATH.*folder:PATH.*medmnist:NAME"
    with pytest.raises(DataError, match=expected):
        load_images("dicomdir:/x", 16)


# ----------------------------------------------------------------------------- MedMNIST


@pytest.fixture
def medmnist_cache(tmp_path, monkeypatch):
    """An empty MedMNIST cache and a downloader that fails as if offline."""
    cache = tmp_path / "cache"
    cache.mkdir()
    monkeypatch.setenv("MEDGAN_DATA_DIR", str(cache))

    def offline(url: str, dest: Path) -> None:
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(data, "_download", offline)
    return cache


def test_medmnist_cached_file_used_offline(medmnist_cache, monkeypatch):
    write_medmnist_npz(medmnist_cache / "breastmnist.npz")
    md5 = hashlib.md5((medmnist_cache / "breastmnist.npz").read_bytes()).hexdigest()
    monkeypatch.setitem(data.MEDMNIST_MD5["breastmnist"], 28, md5)
    result = load_images("medmnist:breastmnist@28", 28)
    assert_valid(result, 6, 28)
    assert "md5 verified" in result.source and result.metadata["md5"] == md5
    assert len(load_images("medmnist:breastmnist@28#all", 28).images) == 11


def test_medmnist_wrong_md5(medmnist_cache):
    write_medmnist_npz(medmnist_cache / "breastmnist.npz")
    with pytest.raises(DataError, match=r"breastmnist\.npz: md5 .* does not match .*750601b1f35ba3300ea97c75c52ff8f6"):
        load_images("medmnist:breastmnist@28", 28)


def test_medmnist_offline_and_uncached_says_what_to_place_where(medmnist_cache):
    with pytest.raises(DataError) as error:
        load_images("medmnist:breastmnist", 64)  # no @SIZE: the 64 px file matches image_size 64
    message = str(error.value)
    assert "breastmnist_64.npz" in message
    assert str(medmnist_cache / "breastmnist_64.npz") in message
    assert "https://zenodo.org/records/10519652/files/breastmnist_64.npz?download=1" in message
    assert list(medmnist_cache.iterdir()) == []  # no partial file left behind


def test_medmnist_download_is_verified_and_atomic(medmnist_cache, tmp_path, monkeypatch):
    source = tmp_path / "official.npz"
    write_medmnist_npz(source)
    monkeypatch.setattr(data, "_download", lambda url, dest: dest.write_bytes(source.read_bytes()))
    with pytest.raises(DataError, match="md5"):
        load_images("medmnist:pneumoniamnist@28", 28)
    assert list(medmnist_cache.iterdir()) == []
    md5 = hashlib.md5(source.read_bytes()).hexdigest()
    monkeypatch.setitem(data.MEDMNIST_MD5["pneumoniamnist"], 28, md5)
    result = load_images("medmnist:pneumoniamnist@28", 28)
    assert len(result.images) == 6
    assert [path.name for path in medmnist_cache.iterdir()] == ["pneumoniamnist.npz"]


def test_medmnist_bad_name_and_size():
    with pytest.raises(DataError, match="unknown MedMNIST 2D dataset 'nosuchmnist'.*breastmnist"):
        load_images("medmnist:nosuchmnist", 28)
    with pytest.raises(DataError, match="size must be one of"):
        load_images("medmnist:breastmnist@32", 28)


def test_md5_table_covers_every_2d_dataset_and_size():
    assert len(data.MEDMNIST_MD5) == 12
    for sizes in data.MEDMNIST_MD5.values():
        assert sorted(sizes) == [28, 64, 128, 224]
        assert all(len(md5) == 32 and int(md5, 16) >= 0 for md5 in sizes.values())


# ----------------------------------------------------------------------------- phantom


class FakePhantomSet:
    """Stand-in for medgan_lib.phantom.PhantomSet."""

    def __init__(self, n: int, size: int) -> None:
        self.images = np.linspace(0, 1, n * size * size, dtype=np.float32).reshape(n, size, size)
        self.params = [{"index": i} for i in range(n)]
        self.landmarks = {"apex": np.arange(2 * n, dtype=float).reshape(n, 2)}


def test_phantom_spec_calls_make_phantom(monkeypatch):
    calls = []

    def make_phantom(n: int, size: int = 64, seed: int = 0, first: int = 0) -> FakePhantomSet:
        calls.append((n, size, seed) + ((first,) if first else ()))
        return FakePhantomSet(n, size)

    monkeypatch.setitem(sys.modules, "medgan_lib.phantom", types.SimpleNamespace(make_phantom=make_phantom))
    default = load_images("phantom", 16, seed=3)
    assert calls[-1] == (2000, 16, 3)
    assert_valid(default, 2000, 16)
    assert default.source == "phantom (procedural X-ray aortography, NOT patient data): 2000 images, seed 3"
    limited = load_images("phantom:10", 16, n_images=4)
    assert calls[-1] == (4, 16, 0)  # frame i does not depend on the count: only the kept frames are rendered
    assert any("found 10 frames, using the first 4" in note and "--n-images" in note for note in limited.notes)
    assert len(limited.images) == 4 and limited.metadata["params"] == [{"index": i} for i in range(4)]
    assert limited.metadata["landmarks"]["apex"] == [[0.0, 1.0], [2.0, 3.0], [4.0, 5.0], [6.0, 7.0]]
    assert limited.images.min() == -1.0
    with pytest.raises(DataError, match="positive integer"):
        load_images("phantom:many", 16)


def test_real_phantom_if_available():
    pytest.importorskip("medgan_lib.phantom")
    result = load_images("phantom:8", 32, seed=1)
    assert_valid(result, 8, 32)
    assert len(result.metadata["params"]) == 8
    assert result.fingerprint == load_images("phantom:8", 32, seed=1).fingerprint


# ----------------------------------------------------------------------------- datasets


def test_make_dataset_order_determined_by_seed_and_epoch():
    images = np.arange(10, dtype=np.float32).reshape(10, 1, 1, 1) * np.ones((1, 4, 4, 1), np.float32)

    def order(seed: int, epoch: int) -> list[float]:
        return [float(v) for batch in make_dataset(images, 3, seed, epoch) for v in batch.numpy()[:, 0, 0, 0]]

    first = order(5, 0)
    assert first == order(5, 0)
    assert first != order(5, 1)
    assert first != order(6, 0)
    assert first == [float(i) for i in np.random.default_rng([5, 0]).permutation(10)[:9]]


def test_make_dataset_batches_drop_remainder():
    images = np.zeros((10, 8, 8, 1), np.float32)
    batches = list(make_dataset(images, 4, seed=0, epoch=0))
    assert [tuple(batch.shape) for batch in batches] == [(4, 8, 8, 1), (4, 8, 8, 1)]
    assert all(batch.dtype.name == "float32" for batch in batches)
    with pytest.raises(DataError, match="fewer than batch_size 16"):
        make_dataset(images, 16, seed=0, epoch=0)


def test_fingerprint_depends_on_values_and_shape():
    images = np.zeros((4, 8, 8, 1), np.float32)
    reference = dataset_fingerprint(images)
    assert reference == dataset_fingerprint(images.copy())
    changed = images.copy()
    changed[2, 3, 3, 0] = 1e-6
    assert dataset_fingerprint(changed) != reference
    assert dataset_fingerprint(images.reshape(2, 8, 16, 1)) != reference
