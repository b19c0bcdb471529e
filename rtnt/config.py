"""Typed schema of rtnt's Hydra configuration and the checks run before any training starts.

The dataclasses below are registered in Hydra's ConfigStore as the schema of each config group,
so a misspelled key or a value of the wrong type stops composition with a message naming the key.
`validate_config` adds the range checks that types cannot express. Nothing here imports TensorFlow.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

from rtnt.config_graybox import GrayBoxPresetConfig, validate_graybox, validate_graybox_conditioning
from rtnt.constants import BENCH_BLOCK_SIZES, GEAR_TYPES, TONE_TYPES
from rtnt.errors import ConfigError

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_DIR = PACKAGE_DIR.parent
# A source checkout (pip install -e .) reads conf/ and native/ beside the package; a regular install
# (pip install .) carries copies inside the package (CMakeLists.txt installs them).
IN_CHECKOUT = (REPO_DIR / "conf" / "config.yaml").exists()
CONF_DIR = REPO_DIR / "conf" if IN_CHECKOUT else PACKAGE_DIR / "conf"
NATIVE_DIR = REPO_DIR / "native" if IN_CHECKOUT else PACKAGE_DIR / "native"

ARCHITECTURES = ("tcn", "wavenet", "graybox", "dense", "gru", "lstm", "conv", "conv_bn_prelu", "conv_gru")
LEGACY_ARCHITECTURES = ("dense", "gru", "lstm", "conv", "conv_bn_prelu", "conv_gru")  # test fixtures
ACTIVATIONS = ("tanh", "prelu", "relu", "linear")
# Hidden activations of `wavenet` layer arrays, in NAM's spelling (NAM Core computes the same functions).
WAVENET_ACTIVATIONS = ("Tanh", "ReLU", "LeakyReLU", "Sigmoid", "SiLU", "Softsign", "Hardtanh")
SCHEDULES = ("cosine", "exponential")
TRAIN_DEVICES = ("auto", "cpu", "gpu")


@dataclass
class GearConfig:
    """The captured device, as NAM's metadata describes it; written into every exported model's metadata."""

    make: Optional[str] = None  # e.g. "Fender"
    model: Optional[str] = None  # e.g. "Deluxe Reverb"
    type: Optional[str] = None  # one of NAM's gear types: amp, pedal, amp_cab, amp_pedal_cab, preamp, studio
    tone_type: Optional[str] = None  # one of NAM's tone types: clean, overdrive, crunch, hi_gain, fuzz


@dataclass
class KnobConfig:
    """A knob of a capture set: its name and the range its values are declared in (the device's own scale)."""

    name: str = "???"
    minimum: float = 0.0
    maximum: float = 1.0


@dataclass
class CaptureTargetConfig:
    """One target of a capture set: the device's output for the set's dry input at one knob setting."""

    target: str = "???"
    knobs: dict[str, float] = field(default_factory=dict)  # a value for every knob of the set, by name


@dataclass
class CaptureConfig:
    """A paired capture: dry input and the device's output, 48 kHz mono. A capture set (`capture=parametric_amp`)
    gives `knobs` and `targets` (one per knob setting, all from the same dry `input`) instead of `target`."""

    name: str = "demo"
    input: str = "???"
    target: str = ""  # the device's output; empty in a capture set
    knobs: list[KnobConfig] = field(default_factory=list)  # a capture set's knobs, in the model's control order
    targets: list[CaptureTargetConfig] = field(default_factory=list)  # a capture set's settings
    holdout: list[float] = field(default_factory=list)  # knob values whose settings are kept out of training
    latency: Any = "auto"  # "auto" or a whole number of samples the target lags the input
    latency_nudge: int = 0  # added to the automatic estimate
    max_latency_ms: float = 100.0  # the automatic estimate searches +-this window
    min_seconds: float = 3.0  # shortest usable capture after alignment and trimming
    channel: Optional[int] = None  # channel to take from a multi-channel file
    resample: bool = False  # opt in to polyphase resampling of files not at 48 kHz
    length_tolerance_s: float = 0.5  # allowed length difference before the pair is refused
    trim_silence: bool = True
    silence_threshold_db: float = -60.0
    cold_peak_dbfs: float = -30.0  # warn when a file's peak is below this
    long_silence_s: float = 2.0  # warn about silences longer than this
    low_information_warn: float = 0.25  # warn when more of the input than this is silence or near the noise floor
    description: str = ""
    gear: GearConfig = field(default_factory=GearConfig)


@dataclass
class LayerArrayConfig:
    """One layer array of NAM's residual WaveNet (`arch: wavenet`), with NAM's field names.

    A 1x1 rechannel (input_size -> channels, no bias), then per layer a dilated causal conv (channels ->
    bottleneck, or 2 x bottleneck when gated) plus a bias-free 1x1 mix-in of the raw input, the activation
    (gated: act(z[:B]) * sigmoid(z[B:])), a 1x1 residual update (layer1x1, with bias) and the activation
    output summed into the head; after the last layer the head rechannel, a causal conv of
    `head_kernel_size` (bottleneck -> head_size). Array i > 0 takes array i - 1's residual stream as input
    and its head output as the start of its head sum.
    """

    input_size: int = 1  # array 0: 1 (the mono input); array i > 0: channels of array i - 1
    condition_size: int = 1  # the raw mono input is the condition
    channels: int = 16
    bottleneck: int = 0  # width of the activation and the head sum; 0 = channels
    kernel_sizes: list[int] = field(default_factory=lambda: [3])  # one for all layers, or one per layer
    dilations: list[int] = field(default_factory=lambda: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512])
    activation: list[str] = field(default_factory=lambda: ["Tanh"])  # one for all layers, or one per layer
    negative_slope: float = 0.01  # of LeakyReLU
    gated: bool = False
    layer1x1: bool = True  # residual 1x1 update; off: the residual stream passes unchanged (bottleneck = channels)
    head_size: int = 1  # array i < last: bottleneck of array i + 1; last array: 1 (the output)
    head_kernel_size: int = 1  # > 1 is NAM's A2 head (a causal conv over the head sum)
    head_bias: bool = False


@dataclass
class TcnPresetConfig:
    """`arch: tcn`: the sequential WaveNet-family stack of dilated causal convolutions (RTNeural JSON)."""

    name: str = "???"
    arch: str = "tcn"
    channels: int = 16
    kernel_sizes: list[int] = field(default_factory=lambda: [3])  # one per layer, or one for all
    dilations: list[int] = field(default_factory=lambda: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512])
    activation: str = "tanh"
    smoothing_alpha: float = 1.0  # hidden activation tanh(x/alpha)
    scaled_smoothing: bool = False  # alpha * tanh(x/alpha) instead
    description: str = ""

    CONDITIONING: ClassVar[tuple[str, ...]] = ("none", "concat", "film")  # concat: the knobs widen the first conv's
    # input; film: a conditioning MLP modulates every hidden conv (rtnt.model.film)


@dataclass
class LegacyPresetConfig(TcnPresetConfig):
    """The RTNeural test fixtures (`arch` dense, gru, lstm, conv, conv_bn_prelu, conv_gru): a conv stack where the
    arch has one, then a recurrent layer of `hidden_size` or `num_layers` dense layers."""

    arch: str = "dense"
    dilations: list[int] = field(default_factory=list)  # the conv layers of conv, conv_bn_prelu and conv_gru
    hidden_size: int = 0  # recurrent state size for gru, lstm, conv_gru
    num_layers: int = 0  # hidden layers of the dense fixture

    CONDITIONING: ClassVar[tuple[str, ...]] = ("none",)  # test fixtures of RTNeural's mono layer types


ENVELOPE_GAIN_FIT_REGIONS = ("validation", "train")


@dataclass
class EnvelopeGainConfig:
    """An envelope gain after the network (rtnt.runtime.envelope_gain; docs/envelope_gain_format.md): its time
    constants and bounds, and the region its 3 weights are fitted on once the `.nam` is exported. `validation`:
    the network never trained there, so its error there is the kind the stage must correct; on `train` the
    network's residual is in-sample."""

    enabled: bool = False
    attack_ms: float = 1.0
    release_ms: float = 300.0
    level_ms: float = 100.0
    floor_db: float = -80.0
    max_gain_db: float = 12.0
    fit_region: str = "validation"  # ENVELOPE_GAIN_FIT_REGIONS


@dataclass
class WaveNetPresetConfig:
    """`arch: wavenet`: NAM's residual WaveNet (exported as `.nam`)."""

    name: str = "???"
    arch: str = "wavenet"
    layer_arrays: list[LayerArrayConfig] = field(default_factory=list)  # in order
    head_scale: float = 0.02  # fixed output scale, as in NAM's trainer
    envelope_gain: EnvelopeGainConfig = field(default_factory=EnvelopeGainConfig)  # enabled: file is rtnt JSON
    description: str = ""

    CONDITIONING: ClassVar[tuple[str, ...]] = ("none", "concat", "film")  # concat: NAM's multi-channel condition, the
    # knobs join the audio as array 0's input and every array's condition (`.nam` in_channels 1 + K); film: that, plus
    # NAM's activation_pre_film in every layer (rtnt.model.wavenet.TRAINED_FILMS)


PresetConfig = TcnPresetConfig | LegacyPresetConfig | WaveNetPresetConfig | GrayBoxPresetConfig
"""A model architecture: one schema per family, chosen by `arch` (`preset_schema`)."""


@dataclass
class TrainConfig:
    """How long and how to train. The budget is `minutes` of wall time or `steps`, whichever ends first;
    when both are 0, `epochs` passes over the training region (`steps_per_epoch` batches each)."""

    minutes: float = 0.0  # wall-clock budget of the fit, validation and checkpoints included; 0 = none
    steps: int = 0  # optimizer steps; 0 = none
    epochs: int = 60  # used only when minutes and steps are both 0
    batch_size: int = 16
    segment_seconds: float = 0.5  # output samples per training segment (plus the receptive field)
    learning_rate: float = 4e-3  # peak learning rate of the schedule
    schedule: str = "cosine"  # cosine (warm-up, cosine to lr_floor) | exponential (lr_decay per epoch)
    warmup_fraction: float = 0.02  # share of the budget spent warming up (cosine)
    lr_floor: float = 0.02  # final learning rate as a fraction of the peak (cosine)
    lr_decay: float = 0.98  # multiplied into the learning rate after every epoch (exponential)
    early_stopping_patience: int = 0  # validations without improvement before stopping; 0 = never
    validate_every_s: float = 0.0  # validate and checkpoint every this many seconds of wall time; 0 = off
    validate_every_steps: int = 0  # ... or every this many steps; both 0 = once per epoch
    jit_compile: bool = True  # XLA; falls back to graph mode with a warning when the model cannot compile
    pre_emphasis: float = 0.0  # first-order pre-emphasis coefficient of the ESR loss; 0 disables
    stft_weight: float = 0.0  # weight of the multi-resolution STFT term in the loss; 0 disables
    dc_weight: float = 0.0  # weight of the DC term in the loss; 0 disables
    level_balance: float = 0.0  # 0: batch ESR (loud segments dominate) ... 1: mean per-segment ESR (losses.py)
    clipnorm: float = 0.0  # clip the global gradient norm to this; 0 disables
    seed: int = 0
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    max_train_seconds: float = 0.0  # 0 uses all training audio
    max_seconds: float = 0.0  # 0 uses the whole capture; else crop it before splitting
    steps_per_epoch: int = 0  # 0 is one pass over the training segments
    verbose: bool = True  # progress display (live on a terminal, one line per validation otherwise)
    device: str = "cpu"  # cpu | gpu | auto (a GPU when TensorFlow finds one, else the CPU): rtnt/train/device.py


@dataclass
class GateConfig:
    """Thresholds of the multi-objective export gate."""

    parity_tolerance: float = 1e-4  # max abs, exported JSON (reference runtime) vs Keras
    native_tolerance: float = 1e-4  # max abs, native runtime vs Keras
    rtf_headroom: float = 4.0  # worst-case native real-time factor at least this
    esr_max: float = 0.03
    asr_mean_db_max: float = -30.0  # calibrated on the shared captures: docs/asr_calibration.md


@dataclass
class AsrConfig:
    """Sine probes of the aliasing-to-signal ratio."""

    midi_notes: list[int] = field(default_factory=lambda: [40, 52, 64, 76, 88, 100])
    levels_dbfs: list[float] = field(default_factory=lambda: [-24.0, -12.0, -3.0])
    settle_seconds: float = 0.25
    analysis_seconds: float = 0.5


@dataclass
class ValidateConfig:
    """How the exported file is validated and measured: native validation, benchmark, aliasing probes."""

    native: bool = True  # validate and benchmark in the native runtime
    validation_block_sizes: list[int] = field(default_factory=lambda: [1, 32, 64, 128, 256, 1024, 77])
    bench_block_sizes: list[int] = field(default_factory=lambda: list(BENCH_BLOCK_SIZES))
    bench_seconds: float = 2.0
    asr: AsrConfig = field(default_factory=AsrConfig)


CONDITIONING_METHODS = ("none", "concat", "film")


@dataclass
class ConditioningConfig:
    """How a model of a capture set takes its knobs: `none` (no knobs: a single capture), `concat` (the knob
    values as extra input channels, constant over each setting's audio) or `film` (feature-wise affine modulation
    of every hidden conv from a conditioning MLP of `film_layers` tanh layers of `film_hidden` units; Perez et al.
    2018)."""

    method: str = "none"
    film_hidden: int = 16  # units of each conditioning-MLP layer (film only)
    film_layers: int = 2  # tanh layers of the conditioning MLP (film only)


@dataclass
class TrackingConfig:
    uri: str = ""  # empty: $MLFLOW_TRACKING_URI, else sqlite:///<repo>/mlruns/mlflow.db
    experiment: str = "rtnt"
    artifact_root: str = ""  # empty: <repo>/mlruns/artifacts for the local store


@dataclass
class RtntConfig:
    capture: CaptureConfig = field(default_factory=CaptureConfig)
    preset: Any = MISSING  # a Tcn-, Legacy-, WaveNet- or GrayBoxPresetConfig (the preset file's defaults)
    conditioning: ConditioningConfig = field(default_factory=ConditioningConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    validate: ValidateConfig = field(default_factory=ValidateConfig)
    gate: GateConfig = field(default_factory=GateConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    continue_from: str = ""  # MLflow run id or .keras checkpoint path
    experiment_name: str = ""  # set by +experiment=... configs; logged as the `experiment` tag
    sweep: dict[str, Any] = field(default_factory=dict)  # free-form sweep settings


def register_configs() -> None:
    """Register the schema of every config group with Hydra's ConfigStore."""
    cs = ConfigStore.instance()
    cs.store(name="rtnt_schema", node=RtntConfig)
    cs.store(group="capture", name="capture_schema", node=CaptureConfig)
    cs.store(group="preset", name="tcn_schema", node=TcnPresetConfig)
    cs.store(group="preset", name="wavenet_schema", node=WaveNetPresetConfig)
    cs.store(group="preset", name="legacy_schema", node=LegacyPresetConfig)
    cs.store(group="preset", name="graybox_schema", node=GrayBoxPresetConfig)
    cs.store(group="conditioning", name="conditioning_schema", node=ConditioningConfig)
    cs.store(group="train", name="train_schema", node=TrainConfig)
    cs.store(group="validate", name="validate_schema", node=ValidateConfig)
    cs.store(group="gate", name="gate_schema", node=GateConfig)
    cs.store(group="tracking", name="tracking_schema", node=TrackingConfig)


def register_resolvers() -> None:
    """`${rtnt.demo:FILE}` names a file of the embedded demo capture; `${rtnt.shared:PATH}` one under ../shared."""
    if not OmegaConf.has_resolver("rtnt.demo"):
        OmegaConf.register_new_resolver("rtnt.demo", lambda name: str(PACKAGE_DIR / "demo" / name))
    if not OmegaConf.has_resolver("rtnt.shared"):
        OmegaConf.register_new_resolver("rtnt.shared", lambda name: str(shared_dir() / name))
    if not OmegaConf.has_resolver("rtnt.capture_name"):
        OmegaConf.register_new_resolver("rtnt.capture_name", capture_name)


def capture_name(target: str) -> str:
    """`demo` for the embedded demo target, else the target file's stem (`AMP.wav` → `AMP`)."""
    path = Path(str(target))
    return "demo" if path.parent == PACKAGE_DIR / "demo" else path.stem


def project_dir() -> Path:
    """Where runs are stored (mlruns/) and `../shared` is looked for: the checkout, else the working directory."""
    return REPO_DIR if IN_CHECKOUT else Path.cwd()


def shared_dir() -> Path:
    """The shared material folder: $RTNT_SHARED, else `../shared` beside the repository."""
    import os

    env = os.environ.get("RTNT_SHARED")
    return Path(env) if env else project_dir().parent / "shared"


def _check(ok: bool, key: str, value: Any, rule: str) -> None:
    if not ok:
        raise ConfigError(
            f"config {key}={value!r} is invalid: {rule}; fix it on the command line ({key}=...) or in conf/"
        )


def preset_schema(arch: str) -> type:
    """The schema of a preset of architecture `arch`."""
    if arch == "wavenet":
        return WaveNetPresetConfig
    if arch == "graybox":
        return GrayBoxPresetConfig
    return LegacyPresetConfig if arch in LEGACY_ARCHITECTURES else TcnPresetConfig


def preset_config(values: Any) -> DictConfig:
    """A preset as the pipeline sees it: `values` (a mapping, e.g. a preset file's content without its `defaults`)
    merged onto the schema of its `arch`, so a key of another family is refused."""
    arch = str(values.get("arch", "tcn"))
    _check(arch in ARCHITECTURES, "preset.arch", arch, f"must be one of {', '.join(ARCHITECTURES)}")
    return OmegaConf.merge(OmegaConf.structured(preset_schema(arch)), values)


def load_preset(path: Path, **overrides: Any) -> DictConfig:
    """A preset file of conf/preset/ (its `defaults` line dropped) as `preset_config`, with optional overrides."""
    values = OmegaConf.load(path)
    values.pop("defaults", None)
    return OmegaConf.merge(preset_config(values), overrides)


def preset_family(preset: PresetConfig | DictConfig) -> str:
    """`legacy` for the RTNeural test-fixture architectures, `graybox` for DSP chains, else `wavenet` (the `tcn`
    stacks and NAM's WaveNet): the `family` tag of a run."""
    if preset.arch == "graybox":
        return "graybox"
    return "legacy" if preset.arch in LEGACY_ARCHITECTURES else "wavenet"


def validate_config(cfg: DictConfig, *, training: bool = True) -> None:
    """Check value ranges and cross-field rules; raise ConfigError naming the key and the fix.

    `training=False` (rtnt-evaluate: the model file exists) skips the rule that ties the conditioning group to
    the capture, since the file's own controls decide how it takes the knobs."""
    t, p, c, v = cfg.train, cfg.preset, cfg.capture, cfg.validate
    for leaf in ("input", "target", "knobs", "targets"):  # checked first: the capture's name interpolates its target
        if OmegaConf.is_missing(cfg.capture, leaf):
            raise ConfigError(f"config capture.{leaf} is not set; pass it on the command line (capture.{leaf}=...)")
    if not c.targets and not c.target:
        raise ConfigError("config capture.target is not set; pass it on the command line (capture.target=...)")
    for key in sorted(OmegaConf.missing_keys(cfg)):
        raise ConfigError(f"config {key} is not set; pass it on the command line ({key}=...)")
    _check(t.epochs >= 0, "train.epochs", t.epochs, "must be >= 0")
    _check(t.batch_size >= 1, "train.batch_size", t.batch_size, "must be >= 1")
    _check(t.segment_seconds > 0, "train.segment_seconds", t.segment_seconds, "must be > 0")
    _check(
        t.learning_rate > 0 and math.isfinite(t.learning_rate), "train.learning_rate", t.learning_rate, "must be > 0"
    )
    _check(0 < t.lr_decay <= 1, "train.lr_decay", t.lr_decay, "must be in (0, 1]")
    _check(0 <= t.pre_emphasis < 1, "train.pre_emphasis", t.pre_emphasis, "must be in [0, 1)")
    _check(0 <= t.level_balance <= 1, "train.level_balance", t.level_balance, "must be in [0, 1]")
    _check(t.early_stopping_patience >= 0, "train.early_stopping_patience", t.early_stopping_patience, "must be >= 0")
    for key in ("stft_weight", "dc_weight", "clipnorm"):
        _check(t[key] >= 0, f"train.{key}", t[key], "must be >= 0")
    _check(t.minutes >= 0 and math.isfinite(t.minutes), "train.minutes", t.minutes, "must be >= 0")
    _check(t.steps >= 0, "train.steps", t.steps, "must be >= 0")
    _check(t.schedule in SCHEDULES, "train.schedule", t.schedule, f"must be one of {', '.join(SCHEDULES)}")
    _check(0 <= t.warmup_fraction < 1, "train.warmup_fraction", t.warmup_fraction, "must be in [0, 1)")
    _check(0 <= t.lr_floor <= 1, "train.lr_floor", t.lr_floor, "must be in [0, 1]")
    _check(t.validate_every_s >= 0, "train.validate_every_s", t.validate_every_s, "must be >= 0")
    _check(t.validate_every_steps >= 0, "train.validate_every_steps", t.validate_every_steps, "must be >= 0")
    for key in ("val_fraction", "test_fraction"):
        _check(0 < t[key] < 0.5, f"train.{key}", t[key], "must be in (0, 0.5)")
    _check(t.max_train_seconds >= 0, "train.max_train_seconds", t.max_train_seconds, "must be >= 0")
    _check(t.max_seconds >= 0, "train.max_seconds", t.max_seconds, "must be >= 0")
    _check(t.steps_per_epoch >= 0, "train.steps_per_epoch", t.steps_per_epoch, "must be >= 0")
    _check(t.device in TRAIN_DEVICES, "train.device", t.device, f"must be one of {', '.join(TRAIN_DEVICES)}")

    _check(p.arch in ARCHITECTURES, "preset.arch", p.arch, f"must be one of {', '.join(ARCHITECTURES)}")
    if p.arch == "wavenet":
        validate_layer_arrays(p)
    elif p.arch == "graybox":
        validate_graybox(p)
    else:
        validate_conv_stack(p)

    lat = c.latency
    ok_latency = lat == "auto" or (isinstance(lat, int) and not isinstance(lat, bool))
    _check(ok_latency, "capture.latency", lat, "must be auto or a whole number of samples")
    _check(c.length_tolerance_s >= 0, "capture.length_tolerance_s", c.length_tolerance_s, "must be >= 0")
    for key, allowed in (("type", GEAR_TYPES), ("tone_type", TONE_TYPES)):  # NAM's enums
        value = c.gear[key]
        _check(value in (None, *allowed), f"capture.gear.{key}", value, f"must be one of {', '.join(allowed)}")
    validate_conditioning(cfg, training=training)

    for key in ("bench_block_sizes", "validation_block_sizes"):
        for b in v[key]:
            _check(b >= 1, f"validate.{key}", list(v[key]), "block sizes must be >= 1")
    _check(cfg.gate.rtf_headroom > 0, "gate.rtf_headroom", cfg.gate.rtf_headroom, "must be > 0")
    _check(len(v.asr.levels_dbfs) >= 1, "validate.asr.levels_dbfs", list(v.asr.levels_dbfs), "needs at least one level")
    for lvl in v.asr.levels_dbfs:
        _check(lvl <= 0, "validate.asr.levels_dbfs", list(v.asr.levels_dbfs), "levels are dBFS, <= 0")


def conditioning_methods(preset: PresetConfig | DictConfig) -> tuple[str, ...]:
    """The conditioning methods the preset's family supports (`CONDITIONING` of its schema)."""
    return preset_schema(str(preset.arch)).CONDITIONING


def validate_conditioning(cfg: DictConfig, *, training: bool = True) -> None:
    """The conditioning method is known, supported by the preset's family and, for training, matches the capture:
    `none` for a single capture, a knob-taking method for a capture set (whose own checks run in
    `rtnt.capture.capture_set`)."""
    method, p, c = cfg.conditioning.method, cfg.preset, cfg.capture
    _check(method in CONDITIONING_METHODS, "conditioning", method, f"must be one of {', '.join(CONDITIONING_METHODS)}")
    supported = conditioning_methods(p)
    if method not in supported:
        raise ConfigError(
            f"preset {p.name} (arch {p.arch}) does not support conditioning={method}; it supports "
            f"{', '.join(supported)}: choose a tcn preset (e.g. preset=wavenet_tcn_edge) or conditioning=none"
        )
    _check(cfg.conditioning.film_hidden >= 1, "conditioning.film_hidden", cfg.conditioning.film_hidden, "must be >= 1")
    _check(cfg.conditioning.film_layers >= 1, "conditioning.film_layers", cfg.conditioning.film_layers, "must be >= 1")
    if p.arch == "graybox":
        validate_graybox_conditioning(p, method)
    if method != "none" and has_envelope_gain(p):
        raise ConfigError(
            f"preset {p.name} has an envelope_gain, which follows a mono unconditioned network; "
            "use conditioning=none, or a preset without envelope_gain for a knob model"
        )
    if training and c.targets and method == "none":
        raise ConfigError(
            f"capture {c.name} is a capture set of {len(c.targets)} knob settings but conditioning=none; "
            "pass conditioning=concat or conditioning=film so that the model takes the knobs"
        )
    if c.targets:
        from rtnt.capture.capture_set import knob_settings

        knob_settings(c)
    if training and not c.targets and method != "none":
        raise ConfigError(
            f"conditioning={method} needs a capture set with knobs, but capture {c.name} is a single capture; "
            "choose capture=parametric_amp, capture=parametric_ts9 or capture=files_parametric, or conditioning=none"
        )


def validate_conv_stack(p: TcnPresetConfig | LegacyPresetConfig | DictConfig) -> None:
    """Check a `tcn` or legacy preset: activation, widths, kernels and dilations; ConfigError names the key."""
    _check(p.activation in ACTIVATIONS, "preset.activation", p.activation, f"must be one of {', '.join(ACTIVATIONS)}")
    _check(p.channels >= 1, "preset.channels", p.channels, "must be >= 1")
    _check(len(p.kernel_sizes) >= 1, "preset.kernel_sizes", list(p.kernel_sizes), "needs at least one kernel size")
    for k in p.kernel_sizes:
        _check(k >= 1, "preset.kernel_sizes", list(p.kernel_sizes), "every kernel size must be >= 1")
    for d in p.dilations:
        _check(d >= 1, "preset.dilations", list(p.dilations), "every dilation must be >= 1")
    if p.arch in ("tcn", "conv", "conv_bn_prelu", "conv_gru"):
        _check(len(p.dilations) >= 1, "preset.dilations", list(p.dilations), "needs at least one layer")
        _check(
            len(p.kernel_sizes) in (1, len(p.dilations)),
            "preset.kernel_sizes",
            list(p.kernel_sizes),
            f"give one kernel size or one per layer ({len(p.dilations)})",
        )
    if p.arch in ("gru", "lstm", "conv_gru"):
        _check(p.hidden_size >= 1, "preset.hidden_size", p.hidden_size, f"must be >= 1 for arch {p.arch}")
    if p.arch == "dense":
        _check(p.num_layers >= 1, "preset.num_layers", p.num_layers, "must be >= 1 for the dense fixture")
    _check(
        p.smoothing_alpha > 0 and math.isfinite(p.smoothing_alpha),
        "preset.smoothing_alpha",
        p.smoothing_alpha,
        "must be > 0",
    )


def has_envelope_gain(p: Any) -> bool:
    """Whether a preset (any family) runs an envelope gain after its network: `envelope_gain.enabled`."""
    stage = getattr(p, "envelope_gain", None)  # a DictConfig's missing key raises an AttributeError subclass
    return bool(stage is not None and stage.enabled)


def validate_envelope_gain(e: EnvelopeGainConfig | DictConfig) -> None:
    """Check `preset.envelope_gain` against the ranges both runtimes accept."""
    from rtnt.runtime.envelope_gain import BOUNDS

    for key, (lo, hi) in BOUNDS.items():
        _check(lo <= e[key] <= hi, f"preset.envelope_gain.{key}", e[key], f"must be in [{lo:g}, {hi:g}]")
    _check(
        e.fit_region in ENVELOPE_GAIN_FIT_REGIONS,
        "preset.envelope_gain.fit_region",
        e.fit_region,
        f"must be one of {', '.join(ENVELOPE_GAIN_FIT_REGIONS)}",
    )


def validate_layer_arrays(p: WaveNetPresetConfig | DictConfig) -> None:
    """Check a `wavenet` preset's layer arrays and head scale; ConfigError names the key and the rule."""
    arrays = list(p.layer_arrays)
    _check(len(arrays) >= 1, "preset.layer_arrays", len(arrays), "arch wavenet needs at least one layer array")
    _check(
        math.isfinite(p.head_scale) and p.head_scale != 0,
        "preset.head_scale",
        p.head_scale,
        "must be finite and non-zero",
    )
    if has_envelope_gain(p):
        validate_envelope_gain(p.envelope_gain)
    for i, a in enumerate(arrays):
        key = f"preset.layer_arrays.{i}"
        n = len(a.dilations)
        _check(n >= 1, f"{key}.dilations", list(a.dilations), "needs at least one layer")
        for d in a.dilations:
            _check(d >= 1, f"{key}.dilations", list(a.dilations), "every dilation must be >= 1")
        _check(
            len(a.kernel_sizes) in (1, n),
            f"{key}.kernel_sizes",
            list(a.kernel_sizes),
            f"give one kernel size or one per layer ({n})",
        )
        for k in a.kernel_sizes:
            _check(k >= 1, f"{key}.kernel_sizes", list(a.kernel_sizes), "every kernel size must be >= 1")
        _check(
            len(a.activation) in (1, n),
            f"{key}.activation",
            list(a.activation),
            f"give one activation or one per layer ({n})",
        )
        for act in a.activation:
            _check(
                act in WAVENET_ACTIVATIONS,
                f"{key}.activation",
                list(a.activation),
                f"each must be one of {', '.join(WAVENET_ACTIVATIONS)}",
            )
        _check(math.isfinite(a.negative_slope), f"{key}.negative_slope", a.negative_slope, "must be finite")
        _check(a.channels >= 1, f"{key}.channels", a.channels, "must be >= 1")
        _check(a.bottleneck >= 0, f"{key}.bottleneck", a.bottleneck, "must be >= 1, or 0 for the same as channels")
        bottleneck = a.bottleneck or a.channels
        _check(
            a.layer1x1 or bottleneck == a.channels,
            f"{key}.layer1x1",
            a.layer1x1,
            "may be false only when bottleneck equals channels",
        )
        _check(
            a.condition_size == 1,
            f"{key}.condition_size",
            a.condition_size,
            "must be 1 (the condition is the raw mono input)",
        )
        _check(a.head_kernel_size >= 1, f"{key}.head_kernel_size", a.head_kernel_size, "must be >= 1")
        expected_input = 1 if i == 0 else arrays[i - 1].channels
        _check(
            a.input_size == expected_input,
            f"{key}.input_size",
            a.input_size,
            "must be 1 for the first array"
            if i == 0
            else f"must equal the channels of layer array {i - 1} ({expected_input})",
        )
        if i + 1 < len(arrays):
            nxt = arrays[i + 1].bottleneck or arrays[i + 1].channels
            _check(
                a.head_size == nxt,
                f"{key}.head_size",
                a.head_size,
                f"must equal the bottleneck of layer array {i + 1} ({nxt})",
            )
        else:
            _check(a.head_size == 1, f"{key}.head_size", a.head_size, "must be 1 for the last array (the mono output)")


def kernel_size_per_layer(preset: PresetConfig | DictConfig) -> list[int]:
    """Kernel size of each conv layer: one value broadcast to all layers, or the given list."""
    ks = list(preset.kernel_sizes)
    return ks * len(preset.dilations) if len(ks) == 1 else ks
