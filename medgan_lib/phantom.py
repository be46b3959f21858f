"""Procedural phantom of X-ray aortography frames acquired during TAVI.

This module draws **synthetic phantom images, not patient data**.  It is the
project's embedded offline default dataset: every frame is rendered from a
handful of random numbers, deterministically for a given seed, so that the
GAN notebooks can run without downloading any clinical images.

Display convention: like a real angiogram monitor, dense material (iodinated
contrast, catheters, the metal valve frame, bone) is DARK on a lighter
background.  Intensities are float32 in [0, 1].

Geometry is sampled in normalised image coordinates (x to the right, y down,
both in [0, 1]), so the same parameters render at any size.  Each frame shows:

* soft tissue: a base attenuation with a linear gradient, two broad gaussian
  blobs (denser tissue or lung) and an ellipsoidal heart shadow, plus
  image-intensifier vignetting;
* a faint spine (vertebral bodies separated by discs, with pedicles) and faint
  curved rib bands;
* the contrast-filled aortic root (three overlapping sinus lobes above the
  annulus), the ascending aorta, the arch and the descending aorta, rendered
  as the projected thickness of a tube with smooth edges; contrast washes out
  towards the descending aorta;
* the left and right coronary arteries leaving the sinuses;
* a pigtail catheter that runs up the descending aorta, over the arch, down
  the ascending aorta and ends in a curled loop (the pigtail) in one sinus;
* with probability ``valve_probability`` (default 0.5): the TAVI delivery
  system, i.e. a radiopaque valve frame (a diamond-cell lattice on a short,
  possibly tapered, crimped or expanded cylinder, tilted in and out of plane
  and projected in 3-D), its delivery shaft following the aorta, a nosecone
  and a guidewire curling into the left ventricle;
* a slight system blur and quantum noise whose variance is proportional to
  the transmitted intensity (gaussian approximation of Poisson counting),
  then an auto-window that maps the 0.5th/99.5th intensity percentiles to
  ``window_low``/``window_high``.

Parameter ranges: uniform draws from ``PARAM_RANGES`` (floats) and
``INT_PARAM_RANGES`` (integers, inclusive), listed here as [low, high].
Positions and lengths are in image widths, ``*_ratio`` values are relative to
the annulus half-width, ``*_density`` values are peak attenuations and
``*_width`` values are gaussian line sigmas::

    soft tissue  tissue_base [0.4, 0.8], tissue_grad_x [-0.3, 0.3],
                 tissue_grad_y [-0.1, 0.4], blob_{1,2}_x/_y [0, 1],
                 blob_{1,2}_radius [0.15, 0.35], blob_{1,2}_density [-0.2, 0.2],
                 heart_x [0.15, 0.45], heart_y [0.85, 1.05], heart_rx [0.25, 0.4],
                 heart_ry [0.2, 0.35], heart_density [0.1, 0.3], vignette [0, 0.35]
    spine        spine_x [0.55, 0.8], spine_half_width [0.06, 0.09],
                 spine_tilt [-0.08, 0.08] (x shift per unit y),
                 vertebra_period [0.13, 0.2], vertebra_phase [0, 1],
                 disc_fraction [0.18, 0.3], spine_density [0.12, 0.3]
    ribs         rib_spacing [0.11, 0.17], rib_phase [0, 1],
                 rib_curvature [0.8, 2], rib_density [0.02, 0.07]
    aortic root  annulus_x [0.3, 0.45], annulus_y [0.6, 0.75],
                 root_angle_deg [-10, 35] (axis tilt from vertical, + = right),
                 annulus_half_width [0.07, 0.1], sinus_radius_ratio [0.8, 1],
                 sinus_offset_ratio [0.45, 0.6], stj_ratio [0.8, 0.95]
    aorta        ascending_ratio [0.95, 1.25], descending_ratio [0.6, 0.85],
                 ascending_length [0.25, 0.45], ascending_curvature [-1, 2],
                 arch_radius [0.1, 0.18], descending_angle_deg [-15, 15],
                 descending_curvature [-0.5, 0.5], contrast_density [0.8, 1.6],
                 contrast_washout [0.5, 0.95] (descending / root density)
    coronaries   {left,right}_coronary_length [0.1, 0.3],
                 {left,right}_coronary_angle_deg [10, 60],
                 {left,right}_coronary_curvature [-4, 4],
                 coronary_width [0.005, 0.008], coronary_density [0.3, 0.7]
                 (relative to contrast_density)
    catheter     catheter_offset [-0.5, 0.5] and catheter_wave_amp [0, 0.25]
                 (in aortic radii), catheter_wave_length [0.4, 1],
                 catheter_wave_phase [0, 2 pi], catheter_width [0.003, 0.005],
                 catheter_density [0.6, 1.1], pigtail_radius_ratio [0.3, 0.45],
                 pigtail_turn_deg [300, 420], pigtail_jitter_x/_y [-1, 1],
                 pigtail_sinus {0: left, 1: right, 2: central lobe},
                 pigtail_clockwise {0, 1}
    valve        valve_present (bool, probability valve_probability),
                 valve_position [0, 0.45] (frame-centre height above the
                 annulus, in frame heights), valve_tilt_deg [-10, 10],
                 valve_out_of_plane_deg [0, 25], valve_radius_ratio [0.95, 1.1],
                 valve_height_ratio [0.75, 1] (height / diameter),
                 valve_taper [0.9, 1.15] (top / bottom radius),
                 valve_expansion [0.5, 1] (1 = fully deployed),
                 valve_rotation [0, 1] (in cells), valve_cells {9..13},
                 valve_rows {3..5}, strut_width [0.0012, 0.0025],
                 strut_density [0.35, 0.7], delivery_offset [-0.4, 0.4],
                 delivery_width [0.006, 0.01], delivery_density [0.4, 0.8],
                 nosecone_length [0.03, 0.05], guidewire_radius [0.06, 0.12],
                 guidewire_turn_deg [120, 300], guidewire_clockwise {0, 1}
    imaging      blur_sigma [0.002, 0.006], photons [120, 800] (counts per
                 pixel at full transmission), window_low [0.02, 0.1],
                 window_high [0.85, 0.98], noise_seed (int)

The shapes are cartoons chosen to look like an aortogram; they are not
anatomically calibrated and carry no clinical information.

Landmarks are returned in pixel coordinates (x, y), with (0, 0) the centre of
the top-left pixel: ``pigtail_tip`` (distal end of the catheter),
``valve_center`` (centre of the projected frame, NaN without a valve),
``aortic_root_center`` (centre of the sinus lobes) and ``annulus_left`` /
``annulus_right`` (the two annulus hinge points, ordered by image x).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np

LANDMARK_NAMES: tuple[str, ...] = (
    "pigtail_tip",
    "valve_center",
    "aortic_root_center",
    "annulus_left",
    "annulus_right",
)

PARAM_RANGES: dict[str, tuple[float, float]] = {
    "tissue_base": (0.4, 0.8),
    "tissue_grad_x": (-0.3, 0.3),
    "tissue_grad_y": (-0.1, 0.4),
    "blob_1_x": (0.0, 1.0),
    "blob_1_y": (0.0, 1.0),
    "blob_1_radius": (0.15, 0.35),
    "blob_1_density": (-0.2, 0.2),
    "blob_2_x": (0.0, 1.0),
    "blob_2_y": (0.0, 1.0),
    "blob_2_radius": (0.15, 0.35),
    "blob_2_density": (-0.2, 0.2),
    "heart_x": (0.15, 0.45),
    "heart_y": (0.85, 1.05),
    "heart_rx": (0.25, 0.4),
    "heart_ry": (0.2, 0.35),
    "heart_density": (0.1, 0.3),
    "vignette": (0.0, 0.35),
    "spine_x": (0.55, 0.8),
    "spine_half_width": (0.06, 0.09),
    "spine_tilt": (-0.08, 0.08),
    "vertebra_period": (0.13, 0.2),
    "vertebra_phase": (0.0, 1.0),
    "disc_fraction": (0.18, 0.3),
    "spine_density": (0.12, 0.3),
    "rib_spacing": (0.11, 0.17),
    "rib_phase": (0.0, 1.0),
    "rib_curvature": (0.8, 2.0),
    "rib_density": (0.02, 0.07),
    "annulus_x": (0.3, 0.45),
    "annulus_y": (0.6, 0.75),
    "root_angle_deg": (-10.0, 35.0),
    "annulus_half_width": (0.07, 0.1),
    "sinus_radius_ratio": (0.8, 1.0),
    "sinus_offset_ratio": (0.45, 0.6),
    "stj_ratio": (0.8, 0.95),
    "ascending_ratio": (0.95, 1.25),
    "descending_ratio": (0.6, 0.85),
    "ascending_length": (0.25, 0.45),
    "ascending_curvature": (-1.0, 2.0),
    "arch_radius": (0.1, 0.18),
    "descending_angle_deg": (-15.0, 15.0),
    "descending_curvature": (-0.5, 0.5),
    "contrast_density": (0.8, 1.6),
    "contrast_washout": (0.5, 0.95),
    "left_coronary_length": (0.1, 0.3),
    "left_coronary_angle_deg": (10.0, 60.0),
    "left_coronary_curvature": (-4.0, 4.0),
    "right_coronary_length": (0.1, 0.3),
    "right_coronary_angle_deg": (10.0, 60.0),
    "right_coronary_curvature": (-4.0, 4.0),
    "coronary_width": (0.005, 0.008),
    "coronary_density": (0.3, 0.7),
    "catheter_offset": (-0.5, 0.5),
    "catheter_wave_amp": (0.0, 0.25),
    "catheter_wave_length": (0.4, 1.0),
    "catheter_wave_phase": (0.0, 2.0 * math.pi),
    "catheter_width": (0.003, 0.005),
    "catheter_density": (0.6, 1.1),
    "pigtail_radius_ratio": (0.3, 0.45),
    "pigtail_turn_deg": (300.0, 420.0),
    "pigtail_jitter_x": (-1.0, 1.0),
    "pigtail_jitter_y": (-1.0, 1.0),
    "valve_position": (0.0, 0.45),
    "valve_tilt_deg": (-10.0, 10.0),
    "valve_out_of_plane_deg": (0.0, 25.0),
    "valve_radius_ratio": (0.95, 1.1),
    "valve_height_ratio": (0.75, 1.0),
    "valve_taper": (0.9, 1.15),
    "valve_expansion": (0.5, 1.0),
    "valve_rotation": (0.0, 1.0),
    "strut_width": (0.0012, 0.0025),
    "strut_density": (0.35, 0.7),
    "delivery_offset": (-0.4, 0.4),
    "delivery_width": (0.006, 0.01),
    "delivery_density": (0.4, 0.8),
    "nosecone_length": (0.03, 0.05),
    "guidewire_radius": (0.06, 0.12),
    "guidewire_turn_deg": (120.0, 300.0),
    "blur_sigma": (0.002, 0.006),
    "photons": (120.0, 800.0),
    "window_low": (0.02, 0.1),
    "window_high": (0.85, 0.98),
}

INT_PARAM_RANGES: dict[str, tuple[int, int]] = {  # inclusive bounds
    "pigtail_sinus": (0, 2),  # 0 left, 1 right, 2 central (posterior) lobe
    "pigtail_clockwise": (0, 1),
    "valve_cells": (9, 13),
    "valve_rows": (3, 5),
    "guidewire_clockwise": (0, 1),
}

_STEP = 0.004  # arc-length step of centre lines, in image widths
_MIN_SIGMA_PX = 0.35  # narrowest gaussian line profile, in pixels


@dataclass(frozen=True)
class PhantomSet:
    """A batch of phantom frames with their generating parameters and landmarks."""

    images: np.ndarray  # float32, (n, size, size), values in [0, 1]
    params: list[dict]  # per image: every generating parameter
    landmarks: dict[str, np.ndarray]  # name -> (n, 2) float32 pixel (x, y), NaN where absent


def sample_phantom_params(rng: np.random.Generator, valve_probability: float = 0.5) -> dict:
    """Draw one frame's parameters (normalised geometry, JSON-serialisable)."""
    if not 0.0 <= valve_probability <= 1.0:
        raise ValueError(f"valve_probability must be in [0, 1], got {valve_probability}")
    lo, hi = np.array(list(PARAM_RANGES.values())).T
    params: dict = dict(zip(PARAM_RANGES, rng.uniform(lo, hi).tolist()))
    params.update({name: int(rng.integers(lo, hi + 1)) for name, (lo, hi) in INT_PARAM_RANGES.items()})
    params["valve_present"] = bool(rng.random() < valve_probability)
    params["noise_seed"] = int(rng.integers(0, 2**31 - 1))
    return params


def make_phantom(n: int, size: int = 64, seed: int = 0, *, valve_probability: float = 0.5) -> PhantomSet:
    """Render ``n`` phantom frames of ``size`` x ``size``.

    Frame i is drawn from ``np.random.default_rng([seed, i])``, so it does not depend on ``n``;
    ``valve_probability`` is the chance that a frame shows the valve frame and delivery system.
    """
    if n < 0 or size < 8:
        raise ValueError(f"need n >= 0 and size >= 8, got n={n}, size={size}")
    images = np.empty((n, size, size), dtype=np.float32)
    params: list[dict] = []
    landmarks = {name: np.full((n, 2), np.nan, dtype=np.float32) for name in LANDMARK_NAMES}
    for i in range(n):
        p = sample_phantom_params(np.random.default_rng([seed, i]), valve_probability)
        images[i], marks = _render(p, size)
        params.append(p)
        for name, xy in marks.items():
            landmarks[name][i] = xy
    return PhantomSet(images=images, params=params, landmarks=landmarks)


def render_phantom_image(params: dict, size: int) -> np.ndarray:
    """Render one float32 (size, size) frame in [0, 1] from its parameters."""
    return _render(params, size)[0]


def phantom_landmarks(params: dict, size: int) -> dict[str, np.ndarray]:
    """Landmark pixel coordinates (x, y) of one frame; NaN where the structure is absent."""
    geo = _Geometry(params)
    return {name: _to_pixels(xy, size) for name, xy in geo.landmarks().items()}


# ---------------------------------------------------------------- geometry


def _unit(angle_deg: float) -> np.ndarray:
    """Unit vector at ``angle_deg`` clockwise from 'up' (y points down)."""
    a = math.radians(angle_deg)
    return np.array([math.sin(a), -math.cos(a)])


def _heading_of(d: np.ndarray) -> float:
    """Inverse of :func:`_unit`, in radians."""
    return math.atan2(d[0], -d[1])


def _integrate_path(start: np.ndarray, heading: float, curvature: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Points and headings of a curve given its curvature per ``_STEP`` (positive turns clockwise)."""
    headings = heading + np.concatenate([[0.0], np.cumsum(curvature * _STEP)])
    steps = np.stack([np.sin(headings[:-1]), -np.cos(headings[:-1])], axis=1) * _STEP
    points = start + np.concatenate([np.zeros((1, 2)), np.cumsum(steps, axis=0)])
    return points, headings


def _bezier(p0: np.ndarray, t0: np.ndarray, p1: np.ndarray, t1: np.ndarray) -> np.ndarray:
    """Cubic Bezier from p0 (leaving along t0) to p1 (arriving along t1)."""
    reach = 0.4 * float(np.linalg.norm(p1 - p0))
    c = np.stack([p0, p0 + reach * t0, p1 - reach * t1, p1])
    t = np.linspace(0.0, 1.0, max(8, int(np.linalg.norm(p1 - p0) / _STEP)))[:, None]
    return (1 - t) ** 3 * c[0] + 3 * (1 - t) ** 2 * t * c[1] + 3 * (1 - t) * t**2 * c[2] + t**3 * c[3]


class _Geometry:
    """All normalised-coordinate geometry derived from one parameter dict."""

    def __init__(self, p: dict) -> None:
        self.p = p
        w = p["annulus_half_width"]
        self.annulus = np.array([p["annulus_x"], p["annulus_y"]])
        self.u = _unit(p["root_angle_deg"])  # root axis, pointing up the aorta
        self.v = np.array([-self.u[1], self.u[0]])  # perpendicular, to the image right
        r_s = w * p["sinus_radius_ratio"]
        off = w * p["sinus_offset_ratio"]
        h = math.sqrt(r_s**2 - (w - off) ** 2)  # lobe circles pass through the hinge points
        self.root_center = self.annulus + h * self.u
        self.lobes = np.stack([self.root_center - off * self.v, self.root_center + off * self.v,
                               self.root_center + 0.15 * w * self.u])
        self.lobe_radii = np.array([r_s, r_s, 0.95 * r_s])
        self.hinges = (self.annulus - w * self.v, self.annulus + w * self.v)
        self._build_centerline(r_s)

    def _build_centerline(self, r_s: float) -> None:
        p, w = self.p, self.p["annulus_half_width"]
        heading0 = math.radians(p["root_angle_deg"])
        n_asc = int(p["ascending_length"] / _STEP)
        turn_asc = p["ascending_curvature"] * n_asc * _STEP
        arch_turn = math.pi + math.radians(p["descending_angle_deg"]) - heading0 - turn_asc
        n_arch = max(1, int(arch_turn * p["arch_radius"] / _STEP))
        n_desc = int(1.5 / _STEP)
        curvature = np.concatenate([np.full(n_asc, p["ascending_curvature"]),
                                    np.full(n_arch, arch_turn / (n_arch * _STEP)),
                                    np.full(n_desc, p["descending_curvature"])])
        self.center, headings = _integrate_path(self.root_center, heading0, curvature)
        self.tangent = np.stack([np.sin(headings), -np.cos(headings)], axis=1)
        self.normal = np.stack([-self.tangent[:, 1], self.tangent[:, 0]], axis=1)
        self.s = np.arange(len(self.center)) * _STEP
        s_arch_end = (n_asc + n_arch) * _STEP
        knots = [0.0, r_s, r_s + 0.5 * (n_asc * _STEP - r_s), s_arch_end, self.s[-1]]
        self.radius = np.interp(self.s, knots, [0.8 * w, p["stj_ratio"] * w, p["ascending_ratio"] * w,
                                                p["descending_ratio"] * w, p["descending_ratio"] * w])
        self.contrast = np.interp(self.s, [0.0, n_asc * _STEP, s_arch_end + 0.1],
                                  [1.0, 1.0, p["contrast_washout"]])
        self.join_catheter = int(1.5 * r_s / _STEP)
        self.join_delivery = int(2.0 * r_s / _STEP)

    def _along_aorta(self, start: int, offset: np.ndarray) -> np.ndarray:
        """Centre line from index ``start`` on, shifted by ``offset`` radii along the normal."""
        return self.center[start:] + (offset * self.radius)[start:, None] * self.normal[start:]

    @cached_property
    def catheter(self) -> np.ndarray:
        """Pigtail catheter polyline from the image border to its tip."""
        p = self.p
        wave = p["catheter_wave_amp"] * np.sin(2 * math.pi * self.s / p["catheter_wave_length"]
                                               + p["catheter_wave_phase"])
        shaft = self._along_aorta(self.join_catheter, np.clip(p["catheter_offset"] + wave, -0.7, 0.7))
        rho = p["pigtail_radius_ratio"] * p["annulus_half_width"]
        k = p["pigtail_sinus"]
        slack = max(0.0, self.lobe_radii[k] - rho) * 0.4
        loop_center = self.lobes[k] + slack * np.array([p["pigtail_jitter_x"], p["pigtail_jitter_y"]])
        t_in = loop_center - shaft[0]
        t_in /= np.linalg.norm(t_in)
        sg = 1.0 if p["pigtail_clockwise"] else -1.0
        a0 = math.atan2(-sg * t_in[0], sg * t_in[1])  # loop tangent at entry equals t_in
        turn = math.radians(p["pigtail_turn_deg"])
        alpha = a0 + sg * np.linspace(0.0, turn, max(16, int(turn * rho / _STEP * 2)))
        radii = rho * np.linspace(1.0, 0.6, len(alpha))
        loop = loop_center + radii[:, None] * np.stack([np.cos(alpha), np.sin(alpha)], axis=1)
        bridge = _bezier(shaft[0], -self.tangent[self.join_catheter], loop[0], t_in)
        return np.concatenate([shaft[::-1], bridge[1:-1], loop])

    def coronaries(self) -> list[np.ndarray]:
        """Left and right coronary artery centre lines, leaving the lateral lobes."""
        p, paths = self.p, []
        for side, lobe, sign in (("left", 0, -1.0), ("right", 1, 1.0)):
            out = sign * self.v
            ostium = self.lobes[lobe] + 0.8 * self.lobe_radii[lobe] * out
            heading = _heading_of(out) + sign * math.radians(p[f"{side}_coronary_angle_deg"])
            n = int(p[f"{side}_coronary_length"] / _STEP)
            wiggle = 10.0 * np.sin(np.arange(n) * _STEP * 20.0 + lobe)
            path, _ = _integrate_path(ostium, heading, p[f"{side}_coronary_curvature"] + wiggle)
            paths.append(path)
        return paths

    def valve_size(self) -> tuple[float, float]:
        """Bottom radius and height of the frame; crimping narrows it and makes it longer."""
        p, w = self.p, self.p["annulus_half_width"]
        e = p["valve_expansion"]
        full = w * p["valve_radius_ratio"]
        return full * e, 2 * full * p["valve_height_ratio"] * (1 + 0.4 * (1 - e))

    def valve_frame(self) -> tuple[np.ndarray, np.ndarray, float]:
        """Strut sample points (m, 2), their 3-D arc-length spacing (m,), and the projected axis length."""
        p = self.p
        radius, height = self.valve_size()
        cells, rows = p["valve_cells"], p["valve_rows"]
        j = np.arange(rows)[:, None, None]
        k = np.arange(cells)[None, :, None]
        side = np.array([-1.0, 1.0])[None, None, :]
        phi0 = 2 * math.pi * (k + 0.5 * (j % 2) + p["valve_rotation"]) / cells
        phi1 = phi0 + side * math.pi / cells
        z0 = -height / 2 + j * height / rows
        z1 = z0 + height / rows
        strut = math.hypot(height / rows, 2 * math.pi * radius / (2 * cells))
        t = np.linspace(0.0, 1.0, max(4, int(strut / 0.0015)))
        phi = phi0 + (phi1 - phi0) * t[:, None, None, None]
        z = np.broadcast_to(z0 + (z1 - z0) * t[:, None, None, None], phi.shape).ravel()
        phi = phi.ravel()
        r = radius * (1 + (p["valve_taper"] - 1) * (z / height + 0.5))
        beta = math.radians(p["valve_out_of_plane_deg"])
        lateral = r * np.cos(phi)
        axial = z * math.cos(beta) - r * np.sin(phi) * math.sin(beta)
        ax, lat = self.valve_axes()
        points = self.valve_center() + axial[:, None] * ax + lateral[:, None] * lat
        spacing = np.full(len(points), strut / (len(t) - 1))
        spacing.reshape(len(t), -1)[[0, -1]] *= 0.5  # shared end points of consecutive struts
        return points, spacing, height * math.cos(beta)

    def valve_axes(self) -> tuple[np.ndarray, np.ndarray]:
        """Projected valve axis (towards the aorta) and its in-plane perpendicular."""
        ax = _unit(self.p["root_angle_deg"] + self.p["valve_tilt_deg"])
        return ax, np.array([-ax[1], ax[0]])

    def valve_center(self) -> np.ndarray:
        """Centre of the projected valve frame."""
        axial = self.valve_size()[1] * math.cos(math.radians(self.p["valve_out_of_plane_deg"]))
        return self.annulus + self.p["valve_position"] * axial * self.valve_axes()[0]

    def delivery(self, axial: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Delivery shaft (nosecone tip to image border), nosecone, and guidewire polylines."""
        p = self.p
        ax, _ = self.valve_axes()
        top = self.valve_center() + 0.5 * axial * ax
        bottom = self.valve_center() - 0.5 * axial * ax
        nose_tip = bottom - p["nosecone_length"] * ax
        shaft = self._along_aorta(self.join_delivery, np.full(len(self.s), p["delivery_offset"]))
        bridge = _bezier(top, ax, shaft[0], self.tangent[self.join_delivery])
        inner = np.stack([nose_tip, top])
        nose = np.stack([nose_tip, bottom])
        turn = math.radians(p["guidewire_turn_deg"])
        n = int(turn * p["guidewire_radius"] / _STEP)
        sg = 1.0 if p["guidewire_clockwise"] else -1.0
        curvature = np.linspace(0.5, 1.5, n) * sg / p["guidewire_radius"]  # tightening curl
        wire, _ = _integrate_path(nose_tip, _heading_of(-ax), curvature)
        return np.concatenate([inner, bridge[1:], shaft]), nose, wire

    def landmarks(self) -> dict[str, np.ndarray]:
        """Normalised landmark coordinates."""
        left, right = sorted(self.hinges, key=lambda xy: float(xy[0]))
        valve = self.valve_center() if self.p["valve_present"] else np.full(2, np.nan)
        return {"pigtail_tip": self.catheter[-1], "valve_center": valve,
                "aortic_root_center": self.root_center, "annulus_left": left, "annulus_right": right}


def _to_pixels(xy: np.ndarray, size: int) -> np.ndarray:
    """Normalised (x, y) -> pixel coordinates with (0, 0) at the top-left pixel centre."""
    return (np.asarray(xy, dtype=np.float64) * size - 0.5).astype(np.float32)


# ---------------------------------------------------------------- rendering


def _smoothstep(t: np.ndarray) -> np.ndarray:
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3 - 2 * t)


def _blur_matrix(size: int, sigma_px: float) -> np.ndarray:
    """Row-normalised gaussian matrix B so that B @ img @ B.T blurs ``img``."""
    i = np.arange(size, dtype=np.float32)
    g = np.exp(-0.5 * ((i[:, None] - i[None, :]) / max(sigma_px, _MIN_SIGMA_PX)) ** 2)
    return (g / g.sum(axis=1, keepdims=True)).astype(np.float32)


def _resample(path: np.ndarray, step: float) -> tuple[np.ndarray, float]:
    """Resample a polyline at (about) uniform arc-length ``step``; returns points and actual step."""
    cum = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(path, axis=0).T))])
    n = max(2, int(math.ceil(cum[-1] / step)) + 1)
    s = np.linspace(0.0, cum[-1], n)
    return np.stack([np.interp(s, cum, path[:, 0]), np.interp(s, cum, path[:, 1])], axis=1), cum[-1] / (n - 1)


class _LineLayer:
    """Accumulates thin radiopaque lines (splatted points) to be blurred to a gaussian profile."""

    def __init__(self, size: int, sigma: float) -> None:
        self.size = size
        self.sigma_px = max(sigma * size, _MIN_SIGMA_PX)
        # peak of a unit-density line after bilinear splatting and gaussian blur
        self.gain = math.sqrt(2 * math.pi * (self.sigma_px**2 + 1.0 / 6.0))
        self.points: list[np.ndarray] = []
        self.weights: list[np.ndarray] = []

    def add_points(self, points: np.ndarray, spacing: np.ndarray, density: np.ndarray | float) -> None:
        """Add samples of a line with 3-D arc-length ``spacing`` and peak attenuation ``density``."""
        self.points.append(points)
        self.weights.append(spacing * self.size * self.gain * density)

    def add_path(self, path: np.ndarray, density: float, taper: float = 1.0) -> None:
        """Add a polyline whose density fades linearly to ``taper`` times ``density`` at its end."""
        pts, step = _resample(path, 0.4 / self.size)
        self.add_points(pts, np.full(len(pts), step), density * np.linspace(1.0, taper, len(pts)))

    def render(self) -> np.ndarray:
        """Attenuation image of all added lines."""
        size, pad = self.size, self.size + 4  # 2-pixel margin collects off-image samples
        pts = np.concatenate(self.points) * size - 0.5
        wts = np.concatenate(self.weights)
        base = np.floor(pts)
        fx, fy = (pts - base).T
        bx, by = np.clip(base, -2, size).astype(np.int64).T + 2
        corner = by * pad + bx
        idx = np.concatenate([corner, corner + 1, corner + pad, corner + pad + 1])
        val = np.concatenate([wts * (1 - fx) * (1 - fy), wts * fx * (1 - fy), wts * (1 - fx) * fy, wts * fx * fy])
        grid = np.bincount(idx, val, minlength=pad * pad).reshape(pad, pad)[2:-2, 2:-2]
        b = _blur_matrix(size, self.sigma_px)
        return b @ grid.astype(np.float32) @ b.T


def _ball_union(centers: np.ndarray, radii: np.ndarray, weights: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Projected thickness max_k w_k sqrt(r_k^2 - d^2) of weighted balls on the pixel grid ``g``.

    Consecutive balls are handled in groups, each only inside its bounding box.
    """
    keep = np.all((centers > -radii[:, None]) & (centers < 1 + radii[:, None]), axis=1)
    c, r, w2 = centers[keep], radii[keep], weights[keep] ** 2
    a = (w2 * (r**2 - (g[:, None] - c[:, 1]) ** 2)).astype(np.float32)  # (y, k)
    b = (w2 * (g[:, None] - c[:, 0]) ** 2).astype(np.float32)  # (x, k)
    lo = np.searchsorted(g, c - r[:, None])
    hi = np.searchsorted(g, c + r[:, None])
    e = np.zeros((len(g), len(g)), dtype=np.float32)
    for k in range(0, len(c), 12):
        x0, y0 = lo[k : k + 12].min(axis=0)
        x1, y1 = hi[k : k + 12].max(axis=0)
        part = (a[y0:y1, None, k : k + 12] - b[None, x0:x1, k : k + 12]).max(axis=2)
        np.maximum(e[y0:y1, x0:x1], part, out=e[y0:y1, x0:x1])
    return np.sqrt(e)


def _anatomy(p: dict, g: np.ndarray) -> np.ndarray:
    """Soft tissue, heart, spine and ribs attenuation (size, size)."""
    x, y = g[None, :], g[:, None]
    att = p["tissue_base"] + p["tissue_grad_x"] * (x - 0.5) + p["tissue_grad_y"] * (y - 0.5)
    for b in ("blob_1", "blob_2"):
        att = att + p[f"{b}_density"] * np.exp(-((x - p[f"{b}_x"]) ** 2 + (y - p[f"{b}_y"]) ** 2)
                                               / (2 * p[f"{b}_radius"] ** 2))
    q = ((x - p["heart_x"]) / p["heart_rx"]) ** 2 + ((y - p["heart_y"]) / p["heart_ry"]) ** 2
    att = att + p["heart_density"] * np.sqrt(np.maximum(1.0 - q, 0.0))
    hw = p["spine_half_width"]
    dx = x - (p["spine_x"] + p["spine_tilt"] * (y - 0.5))
    body = np.sqrt(np.maximum(1.0 - (dx / hw) ** 2, 0.0))
    phase = ((y - p["vertebra_phase"] * p["vertebra_period"]) / p["vertebra_period"]) % 1.0
    disc = p["disc_fraction"] / 2
    edge = np.minimum(phase - disc, 1 - disc - phase) / 0.04
    level = 0.35 + 0.65 * _smoothstep(edge + 0.5)
    from_center = np.abs(phase - 0.5) * p["vertebra_period"]
    pedicles = np.exp(-((np.abs(dx) - 0.65 * hw) / (0.18 * hw)) ** 2
                      - (from_center / (0.2 * p["vertebra_period"])) ** 2)
    att = att + p["spine_density"] * (body * level + 0.6 * pedicles)
    lateral = np.abs(dx)
    rib_phase = (y - p["rib_curvature"] * lateral**2) / p["rib_spacing"] + p["rib_phase"]
    bands = (0.5 + 0.5 * np.cos(2 * math.pi * rib_phase)) ** 4
    mask = _smoothstep((lateral - 0.5 * hw) / hw) * (1 - _smoothstep((lateral - 0.45) / 0.2))
    return att + p["rib_density"] * bands * mask


def _render(p: dict, size: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Render one frame and its pixel landmarks."""
    geo = _Geometry(p)
    g = ((np.arange(size) + 0.5) / size).astype(np.float32)
    att = _anatomy(p, g)

    # contrast-filled root and aorta: balls along the centre line, spaced well below their radius
    stride = max(1, int(0.35 * geo.radius.min() / _STEP))
    centers = np.concatenate([geo.lobes, geo.center[::stride]])
    radii = np.concatenate([geo.lobe_radii, geo.radius[::stride]])
    weights = np.concatenate([np.ones(3), geo.contrast[::stride]])
    r_ref = p["ascending_ratio"] * p["annulus_half_width"]
    att = att + (p["contrast_density"] / r_ref) * _ball_union(centers, radii, weights, g)

    mid = _LineLayer(size, p["catheter_width"])
    mid.add_path(geo.catheter, p["catheter_density"])
    thick = _LineLayer(size, p["delivery_width"])
    for path in geo.coronaries():
        thick.add_path(path, p["coronary_density"] * p["contrast_density"], taper=0.3)
    layers = [mid, thick]
    if p["valve_present"]:
        thin = _LineLayer(size, p["strut_width"])
        struts, spacing, axial = geo.valve_frame()
        thin.add_points(struts, spacing, p["strut_density"])
        shaft, nose, wire = geo.delivery(axial)
        thin.add_path(wire, p["strut_density"])
        thick.add_path(shaft, p["delivery_density"])
        thick.add_path(nose, 1.5 * p["delivery_density"], taper=0.3)
        layers.append(thin)
    for layer in layers:
        att = att + layer.render()

    r2 = (g[None, :] - 0.5) ** 2 + (g[:, None] - 0.5) ** 2
    transmitted = np.exp(-att) * (1.0 - p["vignette"] * r2 / 0.5)
    b = _blur_matrix(size, p["blur_sigma"] * size)
    clean = b @ transmitted.astype(np.float32) @ b.T
    noise = np.random.default_rng(p["noise_seed"]).standard_normal((size, size), dtype=np.float32)
    noisy = clean + np.sqrt(np.maximum(clean, 0.0) / p["photons"]) * noise
    flat = clean.ravel()
    order = [int(0.005 * (flat.size - 1)), int(0.995 * (flat.size - 1))]
    lo, hi = np.partition(flat, order)[order].tolist()  # 0.5th / 99.5th percentiles
    image = p["window_low"] + (noisy - lo) * ((p["window_high"] - p["window_low"]) / max(hi - lo, 1e-6))
    marks = {name: _to_pixels(xy, size) for name, xy in geo.landmarks().items()}
    return np.clip(image, 0.0, 1.0).astype(np.float32), marks
