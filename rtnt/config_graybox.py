"""Typed schema of gray-box presets (`arch: graybox`, conf/preset/graybox/) and their range checks.

A gray-box preset is a chain of differentiable DSP blocks applied in order to the mono signal (NablAFx's
gray-box models: Comunità et al., "NablAFx: a framework for differentiable black-box and gray-box modeling of
audio effects", 2025). Each block is one `GrayBoxBlockConfig` whose `type` says which of its fields apply.
Nothing here imports TensorFlow; `rtnt.config` registers the schema.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, ClassVar

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from rtnt.constants import SAMPLE_RATE
from rtnt.errors import ConfigError

BLOCK_TYPES = ("gain", "dc_blocker", "peq", "fir", "waveshaper", "mlp", "conv_stack", "parallel")
MAX_PARALLEL_DEPTH = 8  # nested parallel blocks; the native loader refuses deeper files
BIQUAD_KINDS = ("peaking", "low_shelf", "high_shelf", "lowpass", "highpass")
MLP_ACTIVATIONS = ("tanh", "relu")
CONV_ACTIVATIONS = ("tanh", "prelu", "relu", "linear")
STATIC_NONLINEARITIES = ("waveshaper", "mlp")  # the blocks `oversampling` applies to
OVERSAMPLING_FACTORS = (1, 2, 4)
OVERSAMPLING_TAPS = {2: 48, 4: 96}  # minimum-phase filter length per factor (rtnt.model.graybox.oversampling)


def oversampling_span(factor: int) -> int:
    """Base-rate history the polyphase filter pair of `factor` adds: the interpolator reads ceil(L / F) input
    samples (ceil(L / F) - 1 of history), the decimator reads the L high-rate samples up to the kept one, i.e.
    ceil((L - 1) / F) earlier base-rate frames; 0 for factor 1."""
    if factor == 1:
        return 0
    taps = OVERSAMPLING_TAPS[factor]
    return -(-taps // factor) - 1 + -(-(taps - 1) // factor)


# The block parameters a knob controller may set (`preset.controlled`), by block type; a peq's are per section.
CONTROLLABLE = {"waveshaper": ("drive_db", "bias", "gain_db"), "gain": ("gain_db",), "peq": ("freq_hz", "q", "gain_db")}


@dataclass
class BiquadSectionConfig:
    """One RBJ cookbook biquad of a `peq` block: its kind and initial frequency, Q and gain (shelves, peaking)."""

    kind: str = "peaking"
    freq_hz: float = 1000.0
    q: float = 0.707
    gain_db: float = 0.0


@dataclass
class GrayBoxBlockConfig:
    """One block of a gray-box chain. Fields by `type`:

    - `gain`: `gain_db` (initial), bounded to +-`max_gain_db`.
    - `dc_blocker`: first-order high-pass (1 - z^-1) / (1 - pole z^-1); `pole` in [min_pole, max_pole]
      (`warmup` as for `peq`).
    - `peq`: cascade of `sections`; frequency in [min_freq_hz, max_freq_hz] (log scale), Q in [min_q, max_q]
      (log scale), gain in +-`max_gain_db`; `warmup` samples of history let its recursion settle in training.
    - `fir`: causal FIR of `taps` taps, initialised to a unit impulse (exported as conv1d up to `conv1d_max_taps`).
    - `waveshaper`: gain * (tanh(drive * x + bias) - tanh(bias)); `drive_db` in [min_drive_db, max_drive_db],
      `bias` in +-`max_bias`, output `gain_db` in +-`max_gain_db`.
    - `mlp`: memoryless Dense layers of sizes `hidden` with `activation`, then Dense(1), per sample.
    - `conv_stack`: rtnt's causal conv stack (`arch: tcn`): `channels`, `kernel_sizes`, `dilations`,
      `activation`, `smoothing_alpha`, `scaled_smoothing`, then a 1x1 conv to one channel.
    - `parallel`: `branches`, a list of branches, each a list of blocks (any type, nested `parallel` included, up
      to MAX_PARALLEL_DEPTH levels) run on the block's input; the output is the sum of the branch outputs, and an
      empty branch `[]` is the identity (the dry path). Its receptive span is the longest branch's, its cost the
      sum of its branches'. It has no parameters of its own (`trainable` applies to the blocks inside).
    `trainable: false` freezes a block's parameters at their initial values (a `conv_stack` is always trainable).
    """

    type: str = "???"
    trainable: bool = True
    gain_db: float = 0.0
    max_gain_db: float = 24.0
    pole: float = 0.995
    min_pole: float = 0.9
    max_pole: float = 0.9999
    sections: list[BiquadSectionConfig] = field(default_factory=list)
    min_freq_hz: float = 20.0
    max_freq_hz: float = 20000.0
    min_q: float = 0.1
    max_q: float = 10.0
    warmup: int = 2048
    taps: int = 2048
    conv1d_max_taps: int = 64
    drive_db: float = 12.0
    min_drive_db: float = -24.0
    max_drive_db: float = 48.0
    bias: float = 0.0
    max_bias: float = 1.0
    hidden: list[int] = field(default_factory=lambda: [16, 16])
    activation: str = "tanh"
    channels: int = 8
    kernel_sizes: list[int] = field(default_factory=lambda: [3])
    dilations: list[int] = field(default_factory=lambda: [1, 2, 4, 8, 16, 32, 64])
    smoothing_alpha: float = 1.0
    scaled_smoothing: bool = False
    branches: list[Any] = field(default_factory=list)  # untyped: OmegaConf does not type nested lists of blocks


@dataclass
class GrayBoxPresetConfig:
    """`arch: graybox`: a chain of DSP blocks in order (exported as rtnt's gray-box JSON, docs/graybox_format.md)."""

    CONDITIONING: ClassVar[tuple[str, ...]] = ("none", "concat")  # concat feeds the knob controllers

    name: str = "???"
    arch: str = "graybox"
    blocks: list[GrayBoxBlockConfig] = field(default_factory=list)
    oversampling: int = 1  # 1, 2 or 4: every static nonlinearity (waveshaper, mlp) runs at this multiple of the rate
    # Block parameters set by a knob controller under conditioning=concat (`resolve_controlled` reads the names):
    # `<block>.<parameter>` or, in a peq, `<block>.s<section>.<parameter>`; <block> is `b<index>` (the block's
    # index in `blocks`) or its type when the chain has one block of that type, e.g. `waveshaper.drive_db`,
    # `b2.s1.gain_db`. Parameters: CONTROLLABLE. Top-level blocks only: a block inside a parallel branch, or a
    # waveshaper when `oversampling` > 1, is refused (ConfigError).
    controlled: list[str] = field(default_factory=list)
    description: str = ""


@dataclass(frozen=True)
class ControlledParameter:
    """One knob-controlled block parameter: the block's index in the chain, the peq section (None for other
    blocks) and the parameter's name (CONTROLLABLE)."""

    block: int
    section: int | None
    parameter: str


_CONTROLLED_RE = re.compile(r"^(?P<block>[a-z_0-9]+)\.(?:s(?P<section>[0-9]+)\.)?(?P<parameter>[a-z_]+)$")


def resolve_controlled(p: Any) -> list[ControlledParameter]:
    """The preset's `controlled` names as ControlledParameters; a name that names no parameter of the chain, or
    one given twice, is a ConfigError."""
    blocks = list(p.blocks)
    resolved: list[ControlledParameter] = []
    for name in p.controlled:
        resolved.append(_resolve_one(str(name), blocks))
    _check(len(set(resolved)) == len(resolved), "preset.controlled", list(p.controlled), "names a parameter twice")
    return resolved


def _resolve_one(name: str, blocks: list[Any]) -> ControlledParameter:
    _check(".branches." not in name, "preset.controlled", name,
           "knob controllers reach top-level blocks only; a block inside a parallel branch (e.g. "
           "b0.branches.1.1.drive_db) cannot be controlled yet")  # fmt: skip
    m = _CONTROLLED_RE.match(name)
    rule = (
        "name a parameter as <block>.<parameter> or <block>.s<section>.<parameter> (peq), with <block> b<index> "
        "or a block type that occurs once, e.g. waveshaper.drive_db, b0.s1.gain_db"
    )
    _check(m is not None, "preset.controlled", name, rule)
    assert m is not None
    ref = m["block"]
    if re.fullmatch(r"b[0-9]+", ref):
        index = int(ref[1:])
        _check(index < len(blocks), "preset.controlled", name, f"the chain has blocks b0..b{len(blocks) - 1}")
    else:
        matches = [i for i, b in enumerate(blocks) if b.type == ref]
        _check(len(matches) == 1, "preset.controlled", name,
               f"the chain has {len(matches)} block(s) of type {ref!r} at the top level; "
               "name the block as b<index>")  # fmt: skip
        index = matches[0]
    b = blocks[index]
    allowed = CONTROLLABLE.get(b.type, ())
    _check(m["parameter"] in allowed, "preset.controlled", name,
           f"block b{index} ({b.type}) has controllable parameters {', '.join(allowed) or 'none'}")  # fmt: skip
    section = None
    if b.type == "peq":
        _check(m["section"] is not None and int(m["section"]) < len(b.sections), "preset.controlled", name,
               f"block b{index} (peq) has sections s0..s{len(b.sections) - 1}: name one")  # fmt: skip
        section = int(m["section"])
        kind = b.sections[section].kind
        _check(not (m["parameter"] == "gain_db" and kind in ("lowpass", "highpass")), "preset.controlled", name,
               f"section s{section} is a {kind}, which has no gain")  # fmt: skip
    else:
        _check(m["section"] is None, "preset.controlled", name, f"block b{index} ({b.type}) has no sections")
    return ControlledParameter(index, section, m["parameter"])


def _check(ok: bool, key: str, value: Any, rule: str) -> None:
    if not ok:
        raise ConfigError(
            f"config {key}={value!r} is invalid: {rule}; fix it on the command line ({key}=...) or in conf/"
        )


def validate_graybox(p: Any) -> None:
    """Check a gray-box preset's blocks: types, ranges and initial values inside them; ConfigError names the key."""
    blocks = list(p.blocks)
    _check(len(blocks) >= 1, "preset.blocks", len(blocks), "arch graybox needs at least one block")
    _validate_blocks(blocks, "preset.blocks", 0)
    _oversampling(p, blocks)
    controlled = resolve_controlled(p)
    nonlinear = [c for c in controlled if blocks[c.block].type in STATIC_NONLINEARITIES]
    _check(not (nonlinear and getattr(p, "oversampling", 1) > 1), "preset.controlled", list(p.controlled),
           "a knob-controlled waveshaper cannot run oversampled yet; control another block or pass "
           "preset.oversampling=1")  # fmt: skip


def _validate_blocks(blocks: list[Any], key: str, depth: int) -> None:
    for i, b in enumerate(blocks):
        bkey = f"{key}.{i}"
        _check(b.type in BLOCK_TYPES, f"{bkey}.type", b.type, f"must be one of {', '.join(BLOCK_TYPES)}")
        if b.type == "parallel":
            _check(depth < MAX_PARALLEL_DEPTH, f"{bkey}.type", b.type,
                   f"parallel blocks nest at most {MAX_PARALLEL_DEPTH} deep")  # fmt: skip
            for k, branch in enumerate(branch_blocks(b, bkey)):
                _validate_blocks(branch, f"{bkey}.branches.{k}", depth + 1)
        else:
            _VALIDATORS.get(b.type, lambda b, key: None)(b, bkey)


def _oversampling(p: Any, blocks: list[Any]) -> None:
    factor = getattr(p, "oversampling", 1)
    allowed = ", ".join(str(f) for f in OVERSAMPLING_FACTORS)
    _check(factor in OVERSAMPLING_FACTORS, "preset.oversampling", factor, f"must be one of {allowed}")
    if factor == 1:
        return
    types = _block_types(blocks, "preset.blocks")
    _check("conv_stack" not in types, "preset.oversampling", factor,
           "a conv_stack block has memory, and only static nonlinearities (waveshaper, mlp) are oversampled; "
           "use preset.oversampling=1 with a conv_stack")  # fmt: skip
    _check(any(t in STATIC_NONLINEARITIES for t in types), "preset.oversampling", factor,
           "the chain has no static nonlinearity (waveshaper, mlp) to oversample")  # fmt: skip


def _block_types(blocks: list[Any], key: str) -> list[str]:
    """The types of `blocks` and of every block inside their parallel blocks' branches."""
    types = []
    for i, b in enumerate(blocks):
        types.append(b.type)
        if b.type == "parallel":
            for k, branch in enumerate(branch_blocks(b, f"{key}.{i}")):
                types += _block_types(branch, f"{key}.{i}.branches.{k}")
    return types


def branch_blocks(b: Any, key: str) -> list[list[Any]]:
    """The branches of parallel block `b` (config key `key`), each block merged onto the block schema (its
    defaults filled in); ConfigError for no branches, a branch that is not a list, or an unknown block key."""
    branches = b.branches
    _check(len(branches) >= 1, f"{key}.branches", list(branches),
           "a parallel block needs at least one branch (a list of blocks; [] is the dry path)")  # fmt: skip
    typed = []
    for k, branch in enumerate(branches):
        _check(OmegaConf.is_list(branch) or isinstance(branch, list), f"{key}.branches.{k}", branch,
               "each branch must be a list of blocks ([] for the dry path)")  # fmt: skip
        blocks = []
        for j, block in enumerate(branch):
            try:
                blocks.append(OmegaConf.merge(OmegaConf.structured(GrayBoxBlockConfig), block))
            except OmegaConfBaseException as exc:
                problem = str(exc).splitlines()[0]
                _check(False, f"{key}.branches.{k}.{j}", block, f"not a gray-box block ({problem})")
        typed.append(blocks)
    return typed


def validate_graybox_conditioning(p: Any, method: str) -> None:
    """A gray-box chain takes knobs through its controllers: conditioning=concat needs at least one controlled
    parameter, and controlled parameters need conditioning=concat."""
    if method != "none" and not list(p.controlled):
        raise ConfigError(
            f"preset {p.name} has conditioning={method} but no knob-controlled parameter; name some in "
            "preset.controlled (e.g. 'preset.controlled=[waveshaper.drive_db]') or pass conditioning=none"
        )
    if method == "none" and list(p.controlled):
        raise ConfigError(
            f"preset {p.name} names controlled parameters {list(p.controlled)} but conditioning=none; train it on "
            "a capture set with conditioning=concat, or pass 'preset.controlled=[]'"
        )


def _gain(b: Any, key: str) -> None:
    _check(b.max_gain_db > 0, f"{key}.max_gain_db", b.max_gain_db, "must be > 0")
    _check(abs(b.gain_db) < b.max_gain_db, f"{key}.gain_db", b.gain_db, f"must be inside +-{b.max_gain_db:g}")


def _dc_blocker(b: Any, key: str) -> None:
    _check(0 < b.min_pole < b.max_pole < 1, f"{key}.min_pole", b.min_pole, "need 0 < min_pole < max_pole < 1")
    _check(b.min_pole < b.pole < b.max_pole, f"{key}.pole", b.pole, "must be strictly inside (min_pole, max_pole)")


def _peq(b: Any, key: str) -> None:
    nyquist = SAMPLE_RATE / 2
    _check(len(b.sections) >= 1, f"{key}.sections", len(b.sections), "a peq needs at least one section")
    _check(0 < b.min_freq_hz < b.max_freq_hz < nyquist, f"{key}.max_freq_hz", b.max_freq_hz,
           f"need 0 < min_freq_hz < max_freq_hz < {nyquist:g}")  # fmt: skip
    _check(0 < b.min_q < b.max_q, f"{key}.max_q", b.max_q, "need 0 < min_q < max_q")
    _check(b.max_gain_db > 0, f"{key}.max_gain_db", b.max_gain_db, "must be > 0")
    _check(b.warmup >= 0, f"{key}.warmup", b.warmup, "must be >= 0")
    for j, s in enumerate(b.sections):
        skey = f"{key}.sections.{j}"
        _check(s.kind in BIQUAD_KINDS, f"{skey}.kind", s.kind, f"must be one of {', '.join(BIQUAD_KINDS)}")
        _check(b.min_freq_hz < s.freq_hz < b.max_freq_hz, f"{skey}.freq_hz", s.freq_hz,
               f"must be strictly inside ({b.min_freq_hz:g}, {b.max_freq_hz:g})")  # fmt: skip
        _check(b.min_q < s.q < b.max_q, f"{skey}.q", s.q, f"must be strictly inside ({b.min_q:g}, {b.max_q:g})")
        _check(abs(s.gain_db) < b.max_gain_db, f"{skey}.gain_db", s.gain_db, f"must be inside +-{b.max_gain_db:g}")


def _fir(b: Any, key: str) -> None:
    _check(b.taps >= 1, f"{key}.taps", b.taps, "must be >= 1")
    _check(b.conv1d_max_taps >= 1, f"{key}.conv1d_max_taps", b.conv1d_max_taps, "must be >= 1")


def _waveshaper(b: Any, key: str) -> None:
    _check(b.min_drive_db < b.drive_db < b.max_drive_db, f"{key}.drive_db", b.drive_db,
           f"must be strictly inside ({b.min_drive_db:g}, {b.max_drive_db:g})")  # fmt: skip
    _check(b.max_bias > 0 and abs(b.bias) < b.max_bias, f"{key}.bias", b.bias, "must be inside +-max_bias (> 0)")
    _gain(b, key)


def _mlp(b: Any, key: str) -> None:
    _check(all(h >= 1 for h in b.hidden), f"{key}.hidden", list(b.hidden), "every layer size must be >= 1")
    _check(b.activation in MLP_ACTIVATIONS, f"{key}.activation", b.activation,
           f"must be one of {', '.join(MLP_ACTIVATIONS)}")  # fmt: skip


def _conv_stack(b: Any, key: str) -> None:
    _check(b.activation in CONV_ACTIVATIONS, f"{key}.activation", b.activation,
           f"must be one of {', '.join(CONV_ACTIVATIONS)}")  # fmt: skip
    _check(b.channels >= 1, f"{key}.channels", b.channels, "must be >= 1")
    _check(len(b.dilations) >= 1 and all(d >= 1 for d in b.dilations), f"{key}.dilations", list(b.dilations),
           "needs at least one layer, every dilation >= 1")  # fmt: skip
    _check(len(b.kernel_sizes) in (1, len(b.dilations)) and all(k >= 1 for k in b.kernel_sizes),
           f"{key}.kernel_sizes", list(b.kernel_sizes), "give one kernel size >= 1, or one per layer")  # fmt: skip
    _check(b.smoothing_alpha > 0, f"{key}.smoothing_alpha", b.smoothing_alpha, "must be > 0")
    _check(b.trainable, f"{key}.trainable", b.trainable, "a conv_stack block is always trainable")


_VALIDATORS = {
    "gain": _gain,
    "dc_blocker": _dc_blocker,
    "peq": _peq,
    "fir": _fir,
    "waveshaper": _waveshaper,
    "mlp": _mlp,
    "conv_stack": _conv_stack,
}


def graybox_receptive_field(p: Any) -> int:
    """1 + the history each block needs: FIR taps - 1, conv spans, and `warmup` for each recursive block (`peq`,
    `dc_blocker`), plus `oversampling_span` for each static nonlinearity when `oversampling` > 1; a `parallel` block
    needs its longest branch's. Recursive blocks have unbounded memory; `warmup` is the history training gives them
    to settle."""
    return 1 + _blocks_span(list(p.blocks), "preset.blocks", getattr(p, "oversampling", 1))


def _blocks_span(blocks: list[Any], key: str, factor: int) -> int:
    span = 0
    for i, b in enumerate(blocks):
        if b.type in STATIC_NONLINEARITIES:
            span += oversampling_span(factor)
        elif b.type == "fir":
            span += b.taps - 1
        elif b.type in ("peq", "dc_blocker"):
            span += b.warmup
        elif b.type == "conv_stack":
            ks = list(b.kernel_sizes) * (len(b.dilations) if len(b.kernel_sizes) == 1 else 1)
            span += sum((k - 1) * d for k, d in zip(ks, b.dilations))
        elif b.type == "parallel":
            bkey = f"{key}.{i}"
            span += max(_blocks_span(br, f"{bkey}.branches.{k}", factor) for k, br in enumerate(branch_blocks(b, bkey)))
    return span
