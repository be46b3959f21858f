"""``Config`` on the command line: one option per field, ``--set field=value`` and ``--config FILE.json``.

Every field of :class:`~medgan_lib.config.Config` except ``preset`` becomes a named option
(``--batch-size``, ``--g-learning-rate``, ``--[no-]diff-augment``, ...) whose type, choices and
per-preset defaults are read from the dataclass, and can also be given as ``--set field=value``
(repeatable) or in a JSON file (a full ``config.json`` of a run or a partial one). The resolved
configuration is: the preset, then the file, then the named options, then ``--set`` in order;
``Config`` itself validates the result.

Bad input raises :class:`OptionError` naming the option (``--epochs``, ``--set epochs=0`` or the
file), so the caller can print one ``error:`` line.
"""
from __future__ import annotations

import argparse
import dataclasses
import difflib
import functools
import inspect
import json
import re
import types
import typing
from pathlib import Path
from typing import Any, Callable

from .config import (D_MODES, DISCRIMINATORS, G_LOSSES, G_STEP_D_BATCHES, GENERATORS, PRESETS, UPDATE_ORDERS, Config,
                     preset)
from .errors import MedganError

CHOICES: dict[str, tuple[str, ...]] = {
    "d_mode": D_MODES,
    "discriminator": DISCRIMINATORS,
    "generator": GENERATORS,
    "g_loss": G_LOSSES,
    "g_step_d_batch": G_STEP_D_BATCHES,
    "update_order": UPDATE_ORDERS,
}
NOT_OPTIONS = ("preset",)  # chosen by --preset; the base every other field overrides
DERIVED_KEYS = ("image_size",)  # written into config.json for readers; checked, not set, when read back

FIELD_HELP: dict[str, str] = {
    "data": "training images: phantom[:N] | npz:PATH[#split] | folder:PATH | medmnist:NAME[@SIZE]",
    "n_images": "phantom size, or a cap on a loaded set (none: all images)",
    "channels": "image channels: 1 (grayscale) or 3 (RGB)",
    "holdout": ("share of a folder/npz/MedMNIST set held out of training, for evaluate (e.g. 0.2; 0: none); "
                "the phantom's held-out images are another phantom seed whatever the value"),
    "latent_dim": "generator latent vector length",
    "start_size": "side of the generator's first feature map (image side = start_size * 2**levels)",
    "start_channels": "channels of the generator's first feature map",
    "levels": "generator upsampling levels (each doubles the side)",
    "width": "multiplier on every generator level's filters (the paper: 1)",
    "dropout": "dropout rate after the generator's Dense layer",
    "gn_groups": "GroupNormalization groups (capped by each level's channels)",
    "d_mode": "discriminator backbone weights: transfer = frozen ImageNet (the paper), scratch = random and "
              "trained, auto = transfer if the weights are found, else scratch",
    "backbone": "discriminator backbone: Xception, ResNet50, ..., MobileNet@0.25, MobileNetV2@0.35",
    "d_minibatch_std": "minibatch standard deviation as one more input to D's head (not in the paper)",
    "d_input_size": "resize images to this side before the backbone (none: the image size)",
    "discriminator": "architecture: paper (backbone + the paper's head), dcgan (small trainable conv net + head), "
                     "projected (Projected GAN on the frozen backbone) or conv (trainable conv net without "
                     "BatchNorm, the medgan preset's)",
    "d_spectral_norm": "spectral normalisation of the conv discriminator's kernels (Miyato et al. 2018)",
    "diff_augment": "DiffAugment on every image D sees (operations: --diff-augment-policy)",
    "diff_augment_policy": "DiffAugment's operations, a comma-separated subset of color,translation,cutout",
    "generator": "generator architecture: paper (the literal Table 1 levels) or resize_conv (nearest upsampling "
                 "+ 3x3 conv per level: no checkerboard)",
    "g_noise_levels": "resize_conv generator: per-pixel noise injection in its last N levels (0: none)",
    "g_noise_modulated": "noise injection: the strength also scaled per image by exp(Dense(z)), so images differ in grain",
    "epochs": "training epochs",
    "batch_size": "images per training step",
    "g_loss": "generator loss: non_saturating -log D(G(z)), or saturating log(1 - D(G(z))) (the paper's eq. 3)",
    "g_step_d_batch": "how D sees the generated batch in the G step: inference (moving statistics) or joint "
                      "(training mode on real + generated)",
    "update_order": "alternating = the paper's D step then G step on new noise; simultaneous = both updates "
                    "from one generated batch",
    "cache_real_features": "compute a frozen backbone's features of the real images once per run",
    "mixed_precision": "bfloat16 mixed precision (losses and output layer in float32); pays off on CPUs with "
                       "AMX/AVX512-BF16 and large models",
    "g_learning_rate": "generator Adam learning rate",
    "d_learning_rate": "discriminator Adam learning rate",
    "adam_beta_1": "Adam beta_1 of both optimizers",
    "adam_beta_2": "Adam beta_2 of both optimizers",
    "fused_adam": "Adam's update as TensorFlow's fused kernel (same formula as Keras')",
    "real_label": "target of real images in D's loss; < 1 is one-sided label smoothing",
    "seed": "seed of weights, noise and data order",
    "n_fixed_samples": "fixed-noise samples saved at each snapshot epoch",
    "notes": "free-text notes recorded with the configuration (JSON list of strings, or one string)",
    "landmark_heatmaps": "labelled synthesis: the generator also outputs one heatmap channel per phantom landmark "
                         "and D sees image + heatmaps (phantom data only)",
    "data_repeats": "passes over the training images per epoch (for sets of a few dozen images)",
}

_TRUE, _FALSE = ("true", "yes", "1", "on"), ("false", "no", "0", "off")
_NONE = ("none", "null")


class OptionError(MedganError, ValueError):
    """A command-line or configuration-file value that cannot be used; ``option`` names where it came from."""

    def __init__(self, option: str, message: str) -> None:
        super().__init__(f"{option}: {message}")
        self.option = option
        self.message = message


def option_fields() -> list[dataclasses.Field]:
    """The Config fields that can be set on the command line (all but ``preset``), in declaration order."""
    return [f for f in dataclasses.fields(Config) if f.name not in NOT_OPTIONS]


def option_name(field_name: str) -> str:
    """``batch_size`` -> ``--batch-size``."""
    return "--" + field_name.replace("_", "-")


def field_type(name: str) -> Any:
    """The resolved type annotation of Config field ``name`` (``int | None``, ``tuple[str, ...]``, ...)."""
    return typing.get_type_hints(Config)[name]


def _optional_inner(annotation: Any) -> Any | None:
    """``X`` for ``X | None`` (or ``Optional[X]``), else None."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(annotation)) == 2:
            return args[0]
    return None


def describe_type(name: str) -> str:
    """A short name of what field ``name`` accepts, for help and error texts."""
    annotation = field_type(name)
    if name in CHOICES:
        return "{" + ",".join(CHOICES[name]) + "}"
    inner = _optional_inner(annotation)
    if inner is not None:
        return f"{inner.__name__} or none"
    if typing.get_origin(annotation) is tuple:
        return "list of str"
    return annotation.__name__


def parse_text(name: str, text: str) -> Any:
    """The value of field ``name`` written as command-line text; ValueError says what was expected."""
    return _parse(field_type(name), name, text.strip())


def _parse(annotation: Any, name: str, text: str) -> Any:
    inner = _optional_inner(annotation)
    if inner is not None:
        return None if text.lower() in _NONE else _parse(inner, name, text)
    if annotation is bool:
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise ValueError(f"expected true or false, got {text!r}")
    if annotation is int:
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"expected an integer, got {text!r}") from None
    if annotation is float:
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"expected a number, got {text!r}") from None
    if typing.get_origin(annotation) is tuple:
        if text.startswith("["):
            try:
                items = json.loads(text)
            except json.JSONDecodeError as error:
                raise ValueError(f"expected a JSON list of strings, got {text!r} ({error.msg})") from None
            return _check_json(annotation, name, items)
        return (text,)
    if annotation is str:
        if name in CHOICES and text not in CHOICES[name]:
            raise ValueError(f"must be one of {', '.join(CHOICES[name])}; got {text!r}")
        return text
    raise TypeError(f"no command-line parser for Config.{name}: {annotation!r}")


def check_json_value(name: str, value: Any) -> Any:
    """A JSON value (from a config file) for field ``name``, type-checked; lists become tuples."""
    return _check_json(field_type(name), name, value)


def _check_json(annotation: Any, name: str, value: Any) -> Any:
    inner = _optional_inner(annotation)
    if inner is not None:
        return None if value is None else _check_json(inner, name, value)
    if typing.get_origin(annotation) is tuple:
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise ValueError(f"expected a list of strings, got {value!r}")
        return tuple(value)
    if annotation is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if annotation in (bool, int, float, str) and (type(value) is not annotation):
        raise ValueError(f"expected {describe_type(name)}, got {json.dumps(value)}")
    if name in CHOICES and value not in CHOICES[name]:
        raise ValueError(f"must be one of {', '.join(CHOICES[name])}; got {value!r}")
    return value


def _argparse_type(name: str) -> Callable[[str], Any]:
    def convert(text: str) -> Any:
        try:
            return parse_text(name, text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    convert.__name__ = describe_type(name)  # argparse names the type in its messages
    return convert


def preset_defaults(name: str) -> str:
    """``"paper 600, cpu 600, smoke 3"`` (or ``"0.5 in every preset"``) for field ``name``."""
    values = {key: getattr(config, name) for key, config in sorted(PRESETS.items())}
    shown = {key: "none" if v is None else json.dumps(list(v)) if isinstance(v, tuple) and len(v) < 2
             else f"{len(v)} notes" if isinstance(v, tuple) else str(v) for key, v in values.items()}
    if len(set(shown.values())) == 1:
        return f"{next(iter(shown.values()))} in every preset"
    return ", ".join(f"{key} {value}" for key, value in shown.items())


@functools.cache
def field_comments() -> dict[str, str]:
    """The comment beside each Config field in its source, or the comment block right above it
    (not a one-line section title): the help of fields that ``FIELD_HELP`` does not describe (yet)."""
    comments, block = {}, []
    for line in inspect.getsource(Config).splitlines():
        text = line.strip()
        field_line = re.match(r"(\w+): [^#]*?(?:#\s*(.*))?$", text)
        if text.startswith("#"):
            block.append(text.lstrip("# "))
        elif field_line:
            sentence = len(block) > 1 or bool(block) and block[0].endswith(".")  # not a section title
            comments[field_line.group(1)] = field_line.group(2) or (" ".join(block) if sentence else "")
            block = []
        else:
            block = []
    return {name: text for name, text in comments.items() if text}


def field_help(name: str) -> str:
    """What field ``name`` means, for its option's help."""
    return FIELD_HELP.get(name) or field_comments().get(name) or name.replace("_", " ")


def add_config_options(parser: argparse.ArgumentParser) -> None:
    """``--preset``, ``--config``, ``--set`` and one named option per Config field, with help and defaults."""
    parser.add_argument("--preset", choices=sorted(PRESETS), help="the configuration every option overrides "
                        "(default: the --config file's preset, else cpu)")
    parser.add_argument("--config", type=Path, metavar="FILE.json",
                        help="a full or partial configuration (e.g. a run's config.json), applied over the preset")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", dest="set_fields",
                        help="set any configuration field (repeatable, applied last), e.g. --set discriminator=dcgan")
    group = parser.add_argument_group("configuration fields (override the preset; default: the preset's value)")
    for f in option_fields():
        description = f"{field_help(f.name)} (presets: {preset_defaults(f.name)})"
        if field_type(f.name) is bool:
            group.add_argument(option_name(f.name), dest=f.name, action=argparse.BooleanOptionalAction,
                               default=None, help=description)
        else:
            group.add_argument(option_name(f.name), dest=f.name, type=_argparse_type(f.name), default=None,
                               metavar=_metavar(f.name), help=description)


def _metavar(name: str) -> str:
    """How an option's value is shown in the help: ``{a,b}``, ``N``, ``N|none``, ``X``, ``TEXT``."""
    annotation = _optional_inner(field_type(name)) or field_type(name)
    shown = "{" + ",".join(CHOICES[name]) + "}" if name in CHOICES else {int: "N", float: "X", str: "TEXT"}.get(
        annotation, "JSON")
    return f"{shown}|none" if _optional_inner(field_type(name)) else shown


def _unknown_field(option: str, key: str) -> OptionError:
    names = [f.name for f in option_fields()]
    close = difflib.get_close_matches(key, names, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else f"; fields: {', '.join(names)}"
    return OptionError(option, f"unknown configuration field {key!r}{hint}")


def read_config_file(path: Path) -> dict[str, Any]:
    """The fields of a JSON configuration file, type-checked (``preset`` included when present)."""
    option = f"--config {path}"
    try:
        raw = json.loads(Path(path).read_text())
    except OSError as error:
        raise OptionError(option, f"cannot read: {error.strerror or error}") from None
    except json.JSONDecodeError as error:
        raise OptionError(option, f"not valid JSON: {error.msg} at line {error.lineno}") from None
    if not isinstance(raw, dict):
        raise OptionError(option, "expected a JSON object of configuration fields")
    fields = {}
    for key, value in raw.items():
        if key in DERIVED_KEYS:
            continue
        if key == "preset":
            if value not in PRESETS:
                raise OptionError(option, f"preset: must be one of {', '.join(sorted(PRESETS))}; got {value!r}")
            fields[key] = value
            continue
        if key not in {f.name for f in option_fields()}:
            raise _unknown_field(option, key)
        try:
            fields[key] = check_json_value(key, value)
        except ValueError as error:
            raise OptionError(f"{option}: {key}", str(error)) from None
    return fields


def parse_set(item: str) -> tuple[str, Any]:
    """``"field=value"`` -> (field, typed value)."""
    key, sep, text = item.partition("=")
    key = key.strip().replace("-", "_")
    if not sep:
        raise OptionError(f"--set {item}", "expected FIELD=VALUE")
    if key not in {f.name for f in option_fields()}:
        raise _unknown_field(f"--set {item}", key)
    try:
        return key, parse_text(key, text)
    except ValueError as error:
        raise OptionError(f"--set {item}", str(error)) from None


def resolve_config(args: argparse.Namespace) -> Config:
    """The configuration the options in ``args`` describe (see the module docstring); validated by Config."""
    from_file = read_config_file(args.config) if args.config else {}
    base = preset(args.preset or from_file.pop("preset", "cpu"))
    from_file.pop("preset", None)
    changes: dict[str, tuple[str, Any]] = {key: (f"--config {args.config}: {key}", v) for key, v in from_file.items()}
    for f in option_fields():
        value = getattr(args, f.name, None)
        if value is not None:
            changes[f.name] = (option_name(f.name), value)
    for item in args.set_fields:
        key, value = parse_set(item)
        changes[key] = (f"--set {item}", value)
    try:
        config = base.replace(**{key: value for key, (_, value) in changes.items()})
    except ValueError as error:
        raise _attributed(str(error), changes) from None
    if args.config:
        _check_derived(args.config, config)
    return config


def _attributed(message: str, changes: dict[str, tuple[str, Any]]) -> OptionError:
    """Config's validation message, attributed to the option that set the field it names."""
    for key, (option, _) in changes.items():
        match = re.match(rf"\W*{re.escape(key)}\b\W*(.*)", message, re.DOTALL)
        if match:
            return OptionError(option, match.group(1))
    named = [key for key in changes if re.search(rf"\b{re.escape(key)}\b", message)]
    return OptionError(changes[named[0]][0] if named else "configuration", message)


def _check_derived(path: Path, config: Config) -> None:
    """A full config.json also holds ``image_size``: it must agree with the fields it comes from."""
    raw = json.loads(Path(path).read_text())
    if "image_size" in raw and raw["image_size"] != config.image_size:
        raise OptionError(f"--config {path}: image_size",
                          f"{raw['image_size']} does not match start_size * 2**levels = {config.image_size} "
                          "(image_size is derived; set start_size or levels instead)")
