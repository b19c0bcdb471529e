"""`rtnt-train`: the Hydra app. Thin: compose, check, run the pipeline, report.

Overrides are checked before Hydra starts (unknown config choices, misspelled keys, bad values),
so every such error is one line and appears before TensorFlow is imported.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import hydra  # noqa: E402
from hydra import compose, initialize_config_dir  # noqa: E402
from hydra.core.global_hydra import GlobalHydra  # noqa: E402
from hydra.core.hydra_config import HydraConfig  # noqa: E402
from hydra.core.override_parser.overrides_parser import OverridesParser  # noqa: E402
from hydra.core.override_parser.types import Override  # noqa: E402
from hydra.errors import HydraException  # noqa: E402
from hydra.types import RunMode  # noqa: E402
from omegaconf import DictConfig  # noqa: E402
from omegaconf.errors import (  # noqa: E402
    ConfigAttributeError,
    ConfigKeyError,
    OmegaConfBaseException,
    ValidationError,
)

from rtnt.config import CONF_DIR, register_configs, register_resolvers, validate_config  # noqa: E402
from rtnt.errors import ConfigError, RtntError, exception_summary  # noqa: E402

HYDRA_FLAGS_WITH_VALUE = {
    "--config-path",
    "-cp",
    "--config-name",
    "-cn",
    "--config-dir",
    "-cd",
    "--experimental-rerun",
    "--cfg",
    "-c",
    "--package",
    "-p",
}


def describe_compose_error(exc: BaseException) -> str:
    """One actionable line for a composition failure, told apart by OmegaConf's exception types and their
    `full_key` (a misspelled key, a value of the wrong type), never by the wording of a message."""
    cause = _omegaconf_cause(exc)
    if isinstance(cause, (ConfigKeyError, ConfigAttributeError)) and cause.full_key:
        return (
            f"config key '{cause.full_key}' does not exist; check its spelling (rtnt-train --cfg job lists every key)"
        )
    if isinstance(cause, ValidationError) and cause.full_key:
        return f"config key '{cause.full_key}' has a value of the wrong type: {exception_summary(cause, max_lines=1)}"
    return f"invalid configuration: {exception_summary(exc, max_lines=3)}"


def _omegaconf_cause(exc: BaseException) -> BaseException:
    """The OmegaConf error that Hydra wrapped (the first one in the `__cause__` chain), else `exc`."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OmegaConfBaseException):
            return seen
        seen = seen.__cause__
    return exc


def parse_overrides(overrides: list[str]) -> list[Override]:
    """The command line's overrides parsed once by Hydra's grammar (HydraException on a syntax error)."""
    return OverridesParser.create().parse_overrides(overrides)


def _config_groups() -> list[str]:
    """The config groups: the folders of conf/."""
    return sorted(p.name for p in CONF_DIR.iterdir() if p.is_dir())


def check_group_choices(parsed: list[Override]) -> None:
    """Refuse a config-group choice that has no file under conf/ (e.g. `preset=nope`), naming the choices."""
    groups = _config_groups()
    for o in parsed:
        group = o.key_or_group.split("@")[0]
        if group not in groups or o.is_delete():
            continue
        values = list(o.sweep_string_iterator()) if o.is_discrete_sweep() else [o.get_value_element_as_str()]
        for value in values:
            if not (CONF_DIR / group / f"{value}.yaml").is_file():
                options = sorted(f.stem for f in (CONF_DIR / group).glob("*.yaml"))
                raise ConfigError(
                    f"unknown config choice '{group}/{value}' (available: {', '.join(options)}); "
                    f"pick an existing file under conf/{group}/"
                )


def _job_overrides(args: list[str]) -> list[str]:
    """The command line's config overrides (no flags, no hydra.* settings)."""
    out, skip = [], False
    for arg in args:
        if skip:
            skip = False
            continue
        if arg in HYDRA_FLAGS_WITH_VALUE:
            skip = True
            continue
        if arg.startswith("-") or arg.split("=")[0].lstrip("+~").startswith("hydra"):
            continue
        out.append(arg)
    return out


def _override_variants(parsed: list[Override]) -> list[list[str]]:
    """Each sweep value tried once with the other overrides at their first value (a cheap precheck)."""
    first = []
    sweeps: list[tuple[int, list[str]]] = []
    for i, o in enumerate(parsed):
        key = o.get_key_element()
        if o.is_discrete_sweep():
            values = [f"{key}={v}" for v in o.sweep_string_iterator()]
            sweeps.append((i, values))
            first.append(values[0])
        elif o.is_sweep_override():
            return []  # interval/range sweeps belong to a sweeper; nothing cheap to check
        else:
            first.append(o.input_line)
    variants = [first]
    for i, values in sweeps:
        for v in values[1:]:
            variants.append(first[:i] + [v] + first[i + 1 :])
    return variants


def _refuse_added_keys(parsed: list[Override]) -> None:
    """`+name=...` may add a config group (`+experiment=...`); a key that no config defines would be
    accepted by Hydra and read by nothing, so it is refused."""
    groups = _config_groups()
    for o in parsed:
        if (o.is_add() or o.is_force_add()) and o.key_or_group.split("@")[0] not in groups:
            raise ConfigError(
                f"'{o.input_line}' adds a key that rtnt does not read; with + add only a config group "
                f"({', '.join(groups)}), and set existing keys without + (rtnt-train --cfg job lists them)"
            )


def _refuse_moved_keys(parsed: list[Override]) -> None:
    """The `export` config group was split into `validate` and `gate`: `export.gate.X` is `gate.X`, any other
    `export.X` is `validate.X`; name the new key."""
    for o in parsed:
        key = o.key_or_group
        if key == "export" or key.startswith("export."):
            rest = key.removeprefix("export").removeprefix(".")
            new = rest if rest.startswith("gate.") else f"validate.{rest}".rstrip(".")
            raise ConfigError(
                f"'{o.input_line}': the export group was split into validate and gate; "
                f"use {new}=... (gate thresholds: gate.*)"
            )


def precheck(args: list[str]) -> None:
    """Compose and validate the config the command line asks for; raise ConfigError with one line."""
    overrides = _job_overrides(args)
    try:
        parsed = parse_overrides(overrides)
        _refuse_added_keys(parsed)
        _refuse_moved_keys(parsed)
        check_group_choices(parsed)
        variants = _override_variants(parsed)
    except HydraException as exc:
        raise ConfigError(
            f"cannot parse overrides {' '.join(overrides)!r}: {exception_summary(exc, max_lines=3)}"
        ) from None
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        for variant in variants:
            try:
                cfg = compose(config_name="config", overrides=variant)
            except (HydraException, OmegaConfBaseException, ValueError) as exc:
                raise ConfigError(describe_compose_error(exc)) from None
            try:
                validate_config(cfg)
            except OmegaConfBaseException as exc:
                raise ConfigError(describe_compose_error(exc)) from None
    GlobalHydra.instance().clear()


def _on_sigterm(signum: int, _frame: Any) -> None:
    raise SystemExit(128 + signum)


@hydra.main(config_path=str(CONF_DIR), config_name="config", version_base="1.3")
def train_app(cfg: DictConfig) -> dict[str, Any] | None:
    """Hydra task function: one training run. Returns the sweeper contract dict."""
    from rtnt.pipeline import run_training

    multirun = HydraConfig.get().mode == RunMode.MULTIRUN
    try:
        validate_config(cfg)
        return run_training(cfg, Path(HydraConfig.get().runtime.output_dir))
    except RtntError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        if multirun:
            raise
        sys.exit(2)


def main() -> None:
    """Console entry point of `rtnt-train`."""
    register_configs()
    register_resolvers()
    signal.signal(signal.SIGTERM, _on_sigterm)
    args = sys.argv[1:]
    if not any(a in ("--help", "-h", "--hydra-help", "--info", "-i", "--shell-completion", "-sc") for a in args):
        try:
            precheck(args)
        except RtntError as exc:
            print(f"error: {exc}", file=sys.stderr)
            sys.exit(2)
    try:
        train_app()
    except KeyboardInterrupt:
        print(
            "error: interrupted; the last checkpoint is kept (continue with continue_from=<run id>) "
            "and the MLflow run is marked KILLED",
            file=sys.stderr,
        )
        sys.exit(130)


if __name__ == "__main__":
    main()
