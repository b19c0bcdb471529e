"""`rtnt-evaluate`: the exported-file evidence of any model file (RTNeural JSON or `.nam`, rtnt's or anyone's)
on any capture: ESR per split, ASR, native validation and benchmark, preview WAVs and the gate report, logged
as an MLflow run beside rtnt's training runs.

Without a Keras model to compare against, the native runtime's one-pass render is the expected output: the
`parity` criterion then compares the independent numpy reference runtime with it, and native validation checks
the native runtime against itself over block sizes and two interleaved instances.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import mlflow
from omegaconf import DictConfig, OmegaConf

from rtnt.data.splits import split_by_time
from rtnt.errors import ConfigError
from rtnt.pipeline import job_result, prepare_training_data, print_summary
from rtnt.sweep.contract import JobResult
from rtnt.tracking.record import record_evidence, stage
from rtnt.tracking.run import flatten, git_commit, log_params_flat, tracked_run
from rtnt.tracking.uri import resolve_artifact_location, resolve_tracking_uri
from rtnt.validate.evidence import Renderer, measure_exported

MODEL_SUFFIXES = (".json", ".nam")


def model_family(path: Path) -> str:
    """`nam` for a `.nam` file, `nam-envelope-gain` for a `.nam` with an envelope gain
    (docs/envelope_gain_format.md), `graybox` for rtnt gray-box JSON (docs/graybox_format.md), `rtneural` for an
    RTNeural JSON."""
    from rtnt.runtime.envelope_gain import is_envelope_gain_file
    from rtnt.runtime.graybox import is_graybox_file

    if path.suffix == ".nam":
        return "nam"
    if is_envelope_gain_file(path):
        return "nam-envelope-gain"
    return "graybox" if is_graybox_file(path) else "rtneural"


def file_size_metrics(model_path: Path, macs_per_sample: float, receptive_field: int) -> dict[str, float]:
    """params (weight values in the file), macs_per_sample and the receptive field, as rtnt-train logs them."""
    from rtnt.model.geometry import samples_to_ms
    from rtnt.runtime.model_file import count_weights, read_model_document

    return {
        "params": float(count_weights(read_model_document(model_path))),
        "macs_per_sample": float(macs_per_sample),
        "receptive_field": float(receptive_field),
        "receptive_field_ms": samples_to_ms(receptive_field),
    }


def check_model_file(path: Path) -> Path:
    """The model file, or a one-line ConfigError saying what is wrong with the path."""
    if path.suffix not in MODEL_SUFFIXES:
        raise ConfigError(
            f"model file {path} is neither an RTNeural .json nor a .nam; pass a model file as the first argument"
        )
    if not path.is_file():
        raise ConfigError(f"model file {path} does not exist; check the path")
    return path.resolve()


def check_controls_match(model_path: Path, file_controls: int, capture: DictConfig) -> None:
    """A one-line ConfigError unless the file takes exactly the capture's knobs (none for a single capture)."""
    capture_knobs = len(capture.knobs) if capture.targets else 0
    if file_controls == capture_knobs:
        return
    if capture_knobs == 0:
        raise ConfigError(
            f"model file {model_path} takes {file_controls} knob(s) but capture {capture.name} is a single capture; "
            "evaluate it on its capture set (e.g. capture=parametric_amp)"
        )
    raise ConfigError(
        f"model file {model_path} takes {file_controls} knob(s) but capture set {capture.name} has {capture_knobs}; "
        "evaluate a knob-conditioned file of that set"
    )


def evaluate_model_file(cfg: DictConfig, model_path: Path, out_dir: Path) -> JobResult:
    """Measure one model file on `cfg.capture` (a capture set: at every setting, as rtnt-train measures a knob
    model) with `cfg.validate`'s probes and `cfg.gate`, tracked in MLflow."""
    from rtnt.native import native_available

    if not native_available():
        raise ConfigError("rtnt-evaluate needs the native runtime (rtnt._native); reinstall rtnt with `pip install .`")
    model_path = check_model_file(model_path)
    out_dir.mkdir(parents=True, exist_ok=True)
    tracking_uri = resolve_tracking_uri(cfg.tracking.uri)
    digest = hashlib.sha1(model_path.read_bytes()).hexdigest()[:8]
    tags = {
        "preset": model_path.stem,
        "capture": cfg.capture.name,
        "family": model_family(model_path),
        "git_commit": git_commit(),
        "sweep": "none",
        "experiment": cfg.experiment_name or "none",
        "rtnt.evaluated_file": str(model_path),
        "rtnt.evaluated_sha1": digest,
        "rtnt.output_dir": str(out_dir.resolve()),
    }
    zero_state = Renderer(model_path, prefer_native=True, prewarm=False)  # what validation compares against
    native = zero_state.model  # the file parsed once for its figures and the expected output
    check_controls_match(model_path, len(native.controls), cfg.capture)
    name = f"{model_path.stem}@{cfg.capture.name}#eval-{digest}"
    with tracked_run(
        tracking_uri,
        cfg.tracking.experiment,
        name,
        tags,
        artifact_location=resolve_artifact_location(tracking_uri, cfg.tracking.artifact_root),
    ) as run:
        log_params_flat(
            flatten(
                {
                    "capture": OmegaConf.to_container(cfg.capture, resolve=True),
                    "validate": OmegaConf.to_container(cfg.validate, resolve=True),
                    "gate": OmegaConf.to_container(cfg.gate, resolve=True),
                }
            )
        )
        mlflow.log_artifact(str(model_path))
        with stage("capture"):
            data = prepare_training_data(cfg, out_dir)
        rf = max(1, int(native.receptive_field))
        size_metrics = file_size_metrics(model_path, native.macs_per_sample, rf)
        mlflow.log_metrics(size_metrics)
        x, sr = data.x, data.sample_rate
        splits = split_by_time(len(x), cfg.train.val_fraction, cfg.train.test_fraction, rf)
        evidence = measure_exported(cfg, model_path, zero_state, rf, x, data.settings, splits, sr)
        record_evidence(evidence, out_dir)
        result = job_result(run.info.run_id, evidence, size_metrics, [])
        print_summary(result, evidence, command="rtnt-evaluate")
        return result
