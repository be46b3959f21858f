"""Locate Keras Applications ImageNet weight files (no-top variants) without surprises.

The paper's discriminator (and later the InceptionV3 features for FID) needs the official
Keras ImageNet weights. This module finds a verified copy of the right file, in this order:

1. ``user_path``: an explicit file given by the caller (used as is; a hash that differs from
   the official one only logs a warning, so fine-tuned weights stay possible);
2. ``weights_dir``: the directory named by the env var ``MEDGAN_WEIGHTS_DIR``, holding files
   under their official names; a hash mismatch raises :class:`WeightsHashMismatch`;
3. ``keras_cache``: ``$KERAS_HOME/models`` (or ``~/.keras/models``); the file is verified here
   and used BY PATH. ``keras.utils.get_file`` is never called on a cached file, because on a
   hash mismatch it deletes the file and tries to download it again;
4. ``download``: ``keras.utils.get_file`` with the official URL and hash, after a short TCP
   reachability probe so that an offline machine fails in seconds instead of hanging.

When nothing works, :class:`WeightsUnavailable` says which file to put where and its URL.
:func:`discriminator_weights` says what a preset's discriminator will use (found, none needed, or
the "auto" mode's scratch fallback); ``python -m medgan_lib.pretrained --preset NAME`` prints it.

Hashes: Keras 2.15 ships md5 sums for Xception, ResNet*, InceptionV3 and NASNet (copied from
the installed ``keras/src/applications/*.py``); it has none for MobileNet v1/v2. The MobileNet
v1 sha256 sums come from a ``WEIGHTS_HASHES`` table in a public copy of the Keras 3 source
``keras/src/applications/mobilenet.py`` (``# SHA-256 of each ImageNet checkpoint``), found with
the project's code search; the repository of that copy could not be identified. The
``2_5_224`` entry was confirmed on a real copy of the file. No official
hash was found for MobileNetV2, so those files are accepted unverified (with a warning).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import socket
import urllib.parse
import urllib.request
from pathlib import Path

from tensorflow import keras

from .errors import MedganError

log = logging.getLogger("medgan")

WEIGHTS_DIR_ENV = "MEDGAN_WEIGHTS_DIR"
PROBE_TIMEOUT_S = 3.0

_BASE = "https://storage.googleapis.com/tensorflow/keras-applications/"
MOBILENET_ALPHAS = (0.25, 0.5, 0.75, 1.0)
MOBILENET_V2_ALPHAS = (0.35, 0.5, 0.75, 1.0, 1.3, 1.4)

# Keras 3 mobilenet.py WEIGHTS_HASHES, entry "<alpha_text>_224", weights_no_top (see docstring).
_MOBILENET_SHA256 = {
    "1_0": "9f9cfd8c925431c06ce96744e1d201575f6a681bf38ae2de38e2ae8f7d7829d3",
    "7_5": "1da9019b66f05a0256dedfed0f321fcaf8bfa71f9facf3f9117e62820be39aa5",
    "5_0": "df860c59562f4c4af7a2fb2ae90731caef39fd5d03e5fcd6ca46988965f0a4b7",
    "2_5": "dbdb03ee2a22fd895301636cd328b234bb3a9952358f436d82f46b81e0d5b0bf",
}


class WeightsUnavailable(MedganError):
    """No usable ImageNet weight file was found and none could be downloaded."""


class WeightsHashMismatch(MedganError):
    """A weight file exists under the official name but its hash is not the official one."""


@dataclasses.dataclass(frozen=True)
class WeightsFile:
    """One official Keras no-top ImageNet weight file.

    ``file_name`` is the name Keras stores it under in its cache (for NASNetMobile this
    differs from the URL's last path component).
    """

    backbone: str
    alpha: float | None
    file_name: str
    url: str
    md5: str | None
    sha256: str | None


@dataclasses.dataclass(frozen=True)
class WeightsSource:
    """Where the weights were found; ``sha256`` is the hash of the file actually used."""

    path: str
    origin: str
    file_name: str
    sha256: str


def _table() -> dict[tuple[str, float | None], WeightsFile]:
    """Build the table of official no-top weight files, keyed by (backbone, alpha)."""
    entries = [
        WeightsFile("Xception", None, "xception_weights_tf_dim_ordering_tf_kernels_notop.h5",
                    _BASE + "xception/xception_weights_tf_dim_ordering_tf_kernels_notop.h5",
                    "b0042744bf5b25fce3cb969f33bebb97", None),
        WeightsFile("ResNet50", None, "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
                    _BASE + "resnet/resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
                    "4d473c1dd8becc155b73f8504c6f6626", None),
        WeightsFile("ResNet101", None, "resnet101_weights_tf_dim_ordering_tf_kernels_notop.h5",
                    _BASE + "resnet/resnet101_weights_tf_dim_ordering_tf_kernels_notop.h5",
                    "88cf7a10940856eca736dc7b7e228a21", None),
        WeightsFile("ResNet50V2", None, "resnet50v2_weights_tf_dim_ordering_tf_kernels_notop.h5",
                    _BASE + "resnet/resnet50v2_weights_tf_dim_ordering_tf_kernels_notop.h5",
                    "fac2f116257151a9d068a22e544a4917", None),
        WeightsFile("InceptionV3", None, "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5",
                    _BASE + "inception_v3/inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5",
                    "bcbd6486424b2319ff4ef7d526e38f63", None),
        WeightsFile("NASNetMobile", None, "nasnet_mobile_no_top.h5",
                    _BASE + "nasnet/NASNet-mobile-no-top.h5",
                    "1ed92395b5b598bdda52abe5c0dbfd63", None),
    ]
    for alpha in MOBILENET_ALPHAS:
        text = {1.0: "1_0", 0.75: "7_5", 0.5: "5_0", 0.25: "2_5"}[alpha]
        name = f"mobilenet_{text}_224_tf_no_top.h5"
        entries.append(WeightsFile("MobileNet", alpha, name, _BASE + "mobilenet/" + name,
                                   None, _MOBILENET_SHA256[text]))
    for alpha in MOBILENET_V2_ALPHAS:
        name = f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{float(alpha)}_224_no_top.h5"
        entries.append(WeightsFile("MobileNetV2", alpha, name, _BASE + "mobilenet_v2/" + name,
                                   None, None))
    return {(e.backbone, e.alpha): e for e in entries}


IMAGENET_WEIGHTS: dict[tuple[str, float | None], WeightsFile] = _table()


def weights_file(backbone: str, alpha: float | None = None) -> WeightsFile:
    """Return the table entry; MobileNets default to alpha 1.0, others take no alpha."""
    if backbone in ("MobileNet", "MobileNetV2"):
        alpha = 1.0 if alpha is None else round(float(alpha), 2)
    elif alpha is not None:
        raise ValueError(f"{backbone} has no width multiplier; got alpha={alpha}")
    try:
        return IMAGENET_WEIGHTS[(backbone, alpha)]
    except KeyError:
        known = sorted({f"{b}@{a}" if a is not None else b for b, a in IMAGENET_WEIGHTS})
        raise ValueError(
            f"No ImageNet weights exist for {backbone} alpha={alpha}; known: {', '.join(known)}"
        ) from None


def keras_cache_dir() -> Path:
    """The Keras model cache: ``$KERAS_HOME/models`` if set, else ``~/.keras/models``."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(home) / "models"


def _hashes(path: Path) -> tuple[str, str]:
    """Return (md5, sha256) of a file, read once."""
    md5, sha = hashlib.md5(), hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            md5.update(chunk)
            sha.update(chunk)
    return md5.hexdigest(), sha.hexdigest()


def _mismatch(entry: WeightsFile, md5: str, sha: str) -> str | None:
    """Describe the hash mismatch of a file against the entry, or None if it matches."""
    if entry.sha256 is not None and sha != entry.sha256:
        return f"expected sha256 {entry.sha256}, actual sha256 {sha}"
    if entry.sha256 is None and entry.md5 is not None and md5 != entry.md5:
        return f"expected md5 {entry.md5}, actual md5 {md5}"
    return None


def _verified(path: Path, entry: WeightsFile, origin: str) -> WeightsSource:
    """Check a file found under the official name; raise WeightsHashMismatch if wrong."""
    md5, sha = _hashes(path)
    problem = _mismatch(entry, md5, sha)
    if problem is not None:
        raise WeightsHashMismatch(
            f"{origin}: file {path} ({entry.file_name}) is not the official {entry.backbone} "
            f"ImageNet weight file: {problem}. Replace it with the file from {entry.url}."
        )
    if entry.md5 is None and entry.sha256 is None:
        log.warning("No official hash is known for %s; using %s unverified (sha256 %s)",
                       entry.file_name, path, sha)
    return WeightsSource(str(path), origin, entry.file_name, sha)


def _host_reachable(url: str, timeout: float = PROBE_TIMEOUT_S) -> bool:
    """True if a TCP connection to the URL's host succeeds quickly (or a proxy is set)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme in urllib.request.getproxies():
        return True
    try:
        with socket.create_connection((parts.hostname, parts.port or 443), timeout=timeout):
            return True
    except OSError:
        return False


def _download(entry: WeightsFile) -> tuple[WeightsSource | None, str]:
    """Download into the Keras cache; return (source, "") or (None, why it failed)."""
    if not _host_reachable(entry.url):
        return None, f"download skipped: {urllib.parse.urlsplit(entry.url).hostname} unreachable"
    try:
        path = keras.utils.get_file(
            entry.file_name, entry.url, cache_subdir="models",
            cache_dir=str(keras_cache_dir().parent), file_hash=entry.sha256 or entry.md5,
        )
    except Exception as exc:  # noqa: BLE001 - any failure becomes WeightsUnavailable
        return None, f"download failed: {exc}"
    return WeightsSource(path, "download", entry.file_name, _hashes(Path(path))[1]), ""


def _unavailable_message(entry: WeightsFile, why: str) -> str:
    """Tell exactly which file to place in which directory and where to get it."""
    env_dir = os.environ.get(WEIGHTS_DIR_ENV)
    env_text = (f"{WEIGHTS_DIR_ENV}={env_dir}" if env_dir
                else f"the directory named by {WEIGHTS_DIR_ENV} (unset)")
    hash_text = (f"sha256 {entry.sha256}" if entry.sha256
                 else f"md5 {entry.md5}" if entry.md5 else "no official hash known")
    return (
        f"ImageNet weights for {entry.backbone}"
        f"{'' if entry.alpha is None else f' alpha={entry.alpha}'} are unavailable ({why}). "
        f"Place the file '{entry.file_name}' in {env_text} or in the Keras cache "
        f"'{keras_cache_dir()}'. On a machine with internet get it from {entry.url} "
        f"({hash_text}) and save it under that exact name."
    )


def resolve_imagenet_weights(
    backbone: str,
    alpha: float | None,
    allow_download: bool = True,
    user_path: str | None = None,
) -> WeightsSource:
    """Find a verified no-top ImageNet weight file for ``backbone`` (see module docstring).

    Raises FileNotFoundError for a missing ``user_path``, WeightsHashMismatch for a wrong file
    under the official name, WeightsUnavailable when no file is found or downloadable.
    """
    entry = weights_file(backbone, alpha)
    if user_path is not None:
        path = Path(user_path)
        if not path.is_file():
            raise FileNotFoundError(f"weights_path {user_path} does not exist")
        md5, sha = _hashes(path)
        problem = _mismatch(entry, md5, sha)
        if problem is not None:
            log.warning("%s is not the official %s: %s", path, entry.file_name, problem)
        return WeightsSource(str(path), "user_path", entry.file_name, sha)
    env_dir = os.environ.get(WEIGHTS_DIR_ENV)
    if env_dir and (Path(env_dir) / entry.file_name).is_file():
        return _verified(Path(env_dir) / entry.file_name, entry, "weights_dir")
    cached = keras_cache_dir() / entry.file_name
    if cached.is_file():
        return _verified(cached, entry, "keras_cache")
    why = "not found locally; downloads disabled"
    if allow_download:
        source, why = _download(entry)
        if source is not None:
            return source
    raise WeightsUnavailable(_unavailable_message(entry, why))


def imagenet_weights_available(
    backbone: str, alpha: float | None = None, user_path: str | None = None
) -> bool:
    """True if a verified weight file is present locally (never downloads)."""
    try:
        resolve_imagenet_weights(backbone, alpha, allow_download=False, user_path=user_path)
    except (WeightsUnavailable, WeightsHashMismatch, FileNotFoundError):
        return False
    return True


# ----------------------------------------------------------------------------- a preset's discriminator

FOUND, NOT_NEEDED, FALLBACK = "found", "not needed", "fallback"


def discriminator_weights(config) -> tuple[str, str]:
    """What a run of ``config`` will use as its discriminator's backbone, looked up as training does
    (a download when online): ``(FOUND, where)``, ``(NOT_NEEDED, why)`` for a discriminator without an
    ImageNet backbone, or ``(FALLBACK, why)`` when mode "auto" finds no file and so trains the backbone
    from random weights. Mode "transfer" without a file raises WeightsUnavailable; a wrong file
    under the official name raises WeightsHashMismatch (as training would)."""
    from .backbones import check_pretrained_alpha, parse_backbone

    if config.discriminator in ("dcgan", "conv") or config.d_mode == "scratch":
        return NOT_NEEDED, f"the {config.preset} preset's discriminator ({config.discriminator}, {config.d_mode}) uses no ImageNet file"
    name, alpha = parse_backbone(config.backbone)
    check_pretrained_alpha(name, alpha)
    try:
        source = resolve_imagenet_weights(name, alpha)
    except WeightsUnavailable as exc:
        if config.d_mode == "transfer":
            raise
        return FALLBACK, str(exc)
    return FOUND, f"ImageNet {config.backbone} weights for the {config.preset} preset's discriminator: {source.path}"


def main(argv: list[str] | None = None) -> int:
    """``python -m medgan_lib.pretrained --preset NAME``: one line saying what the preset's discriminator
    will use; exit status 0 (weights found, or none needed), 1 (mode "auto" without weights: the
    scratch fallback) or 2 (an ``error:`` line: "transfer" without weights, a wrong file)."""
    import argparse

    from .config import PRESETS, preset
    from .errors import run_command

    parser = argparse.ArgumentParser(
        prog="python -m medgan_lib.pretrained",
        description="Say whether a preset's discriminator finds its ImageNet weights (as training looks for "
                    f"them: ${WEIGHTS_DIR_ENV}, the Keras cache, a download when online).",
        epilog="example: python -m medgan_lib.pretrained --preset cpu   # exit 1: no file, 'auto' trains from scratch")
    parser.add_argument("--preset", required=True, choices=sorted(PRESETS))
    args = parser.parse_args(argv)

    def check() -> int:
        status, text = discriminator_weights(preset(args.preset))
        print(f"{status}: {text}")
        return 1 if status == FALLBACK else 0

    return run_command(check)


if __name__ == "__main__":
    raise SystemExit(main())
