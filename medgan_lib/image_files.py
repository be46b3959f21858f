"""Synthetic images as files: 8/16-bit PNG, one NumPy ``.npz``, or DICOM Secondary Capture.

Every writer takes images as float32 in [0, 1], NHWC with 1 (grayscale) or 3 (RGB) channels.
Integer formats store ``round(x * (2**bits - 1))``.

DICOM files are Secondary Capture Image Storage (SOP Class 1.2.840.10008.5.1.4.1.1.7) with no
patient data (empty patient name, id, birth date and sex), ``SyntheticData`` (0008,001C) = YES,
``ImageType`` DERIVED\\SECONDARY, ``ConversionType`` SYN (synthetic image), MONOCHROME2 or RGB,
and newly generated UIDs: all images of one :class:`DicomSeries` share one study and one series.
"""
from __future__ import annotations

import datetime as _dt
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import __version__

SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
LONG_STRING = 64  # DICOM LO: at most 64 characters
NPZ_ENCODING = "images: float32 in [0, 1], shape (n, height, width, channels); latents: float32 (n, latent_dim)"


def quantize(images: np.ndarray, bits: int) -> np.ndarray:
    """Images in [0, 1] as unsigned integers of ``bits`` (8 or 16) bits."""
    top = 2**bits - 1
    return np.rint(np.clip(images, 0.0, 1.0) * top).astype(np.uint8 if bits == 8 else np.uint16)


def write_png(image: np.ndarray, path: Path, bits: int) -> None:
    """One HWC image in [0, 1] as an 8- or 16-bit grayscale (1 channel) or RGB (3 channels) PNG."""
    import tensorflow as tf

    path.write_bytes(tf.io.encode_png(quantize(image, bits)).numpy())


@dataclass
class DicomSeries:
    """One DICOM series of synthetic images: one study and series UID, one description, ``bits`` per sample."""

    description: str  # SeriesDescription, cut to 64 characters
    derivation: str  # DerivationDescription: the full account of how the images were made
    bits: int = 8
    study_uid: str = field(default="")
    series_uid: str = field(default="")
    created: _dt.datetime = field(default_factory=lambda: _dt.datetime.now(_dt.timezone.utc))

    def __post_init__(self) -> None:
        from pydicom.uid import generate_uid

        self.study_uid = self.study_uid or generate_uid()
        self.series_uid = self.series_uid or generate_uid()

    def write(self, image: np.ndarray, path: Path, instance_number: int, comment: str = "") -> None:
        """One HWC image in [0, 1] as a Secondary Capture file (``instance_number`` counts from 1)."""
        from pydicom.dataset import Dataset, FileMetaDataset
        from pydicom.uid import ExplicitVRLittleEndian, generate_uid

        sop_uid = generate_uid()
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = SECONDARY_CAPTURE
        meta.MediaStorageSOPInstanceUID = sop_uid
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        date, time = self.created.strftime("%Y%m%d"), self.created.strftime("%H%M%S")
        ds.SpecificCharacterSet = "ISO_IR 192"
        ds.SOPClassUID, ds.SOPInstanceUID = SECONDARY_CAPTURE, sop_uid
        ds.ImageType = ["DERIVED", "SECONDARY"]
        ds.SyntheticData = "YES"
        ds.StudyDate = ds.SeriesDate = ds.ContentDate = date
        ds.StudyTime = ds.SeriesTime = ds.ContentTime = time
        ds.Modality = "OT"
        ds.ConversionType = "SYN"
        ds.Manufacturer = "medgan"
        ds.SoftwareVersions = __version__
        ds.PatientName = ""
        ds.PatientID = ""
        ds.PatientBirthDate = ""
        ds.PatientSex = ""
        ds.ReferringPhysicianName = ""
        ds.AccessionNumber = ""
        ds.StudyID = ""
        ds.StudyDescription = "medgan synthetic images"
        ds.SeriesDescription = self.description[:LONG_STRING]
        ds.DerivationDescription = self.derivation
        ds.StudyInstanceUID, ds.SeriesInstanceUID = self.study_uid, self.series_uid
        ds.SeriesNumber = 1
        ds.InstanceNumber = instance_number
        ds.BurnedInAnnotation = "NO"
        if comment:
            ds.ImageComments = comment
        pixels = quantize(image, self.bits)
        photometric = "MONOCHROME2" if pixels.shape[-1] == 1 else "RGB"
        ds.set_pixel_data(pixels[..., 0] if pixels.shape[-1] == 1 else pixels, photometric, self.bits)
        ds.save_as(path, enforce_file_format=True)


class NpzWriter:
    """One ``.npz`` with ``images``, ``latents``, ``latent_index`` and ``encoding``, written batch by batch.

    The arrays go to memory-mapped ``.npy`` files in a temporary folder beside ``path`` and are then
    stored (uncompressed, fixed timestamps, so equal inputs give equal bytes) into the archive:
    memory stays flat for any number of images.
    """

    def __init__(self, path: Path, n: int, image_shape: tuple[int, ...], latent_dim: int) -> None:
        self.path = path
        self.tmp = Path(tempfile.mkdtemp(prefix=".npz_", dir=path.parent))
        self.arrays = {
            "images": np.lib.format.open_memmap(self.tmp / "images.npy", "w+", np.float32, (n, *image_shape)),
            "latents": np.lib.format.open_memmap(self.tmp / "latents.npy", "w+", np.float32, (n, latent_dim)),
            "latent_index": np.lib.format.open_memmap(self.tmp / "latent_index.npy", "w+", np.int64, (n,)),
        }

    def add(self, start: int, images: np.ndarray, latents: np.ndarray) -> None:
        stop = start + len(images)
        self.arrays["images"][start:stop] = images
        self.arrays["latents"][start:stop] = latents
        self.arrays["latent_index"][start:stop] = np.arange(start, stop)

    def close(self) -> None:
        """Write the archive (under a temporary name, then renamed) and remove the temporary folder."""
        for array in self.arrays.values():
            array.flush()
        self.arrays.clear()
        np.save(self.tmp / "encoding.npy", np.array(NPZ_ENCODING))
        partial = self.path.with_name(f".{self.path.name}.tmp")
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
            for name in ("images", "latents", "latent_index", "encoding"):
                entry = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
                with open(self.tmp / f"{name}.npy", "rb") as src, archive.open(entry, "w", force_zip64=True) as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
        os.replace(partial, self.path)
        shutil.rmtree(self.tmp)
