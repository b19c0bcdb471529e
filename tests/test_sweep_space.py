"""Search-space expansion: dilation families, kernel schedules, Hydra override formatting, and every
sampled point of conf/sweep/dilations_smoothing.yaml composing into a valid rtnt config."""

from __future__ import annotations

import math
import sys

import optuna
import pytest
import yaml
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser

from rtnt.config import REPO_DIR, register_configs, register_resolvers, validate_config
from rtnt.errors import ConfigError
from rtnt.sweep.space import FAMILY_CHOICE, SearchSpace, dilation_family, format_override, format_value, kernel_schedule
from rtnt.sweep.trial import bookkeeping_overrides, is_bookkeeping_override, trial_run_context

SWEEP_FILE = REPO_DIR / "conf" / "sweep" / "dilations_smoothing.yaml"


def test_growth_two_is_powers_of_two() -> None:
    assert dilation_family(2.0, 512) == [1, 2, 4, 8, 16, 32, 64, 128, 256, 512]


def test_odd_growth_two_is_mersenne() -> None:
    assert dilation_family(2.0, 255, odd=True) == [1, 3, 7, 15, 31, 63, 127, 255]


def test_odd_silver_ratio_gives_the_non_power_of_two_sequence() -> None:
    assert dilation_family(1.0 + math.sqrt(2.0), 600, odd=True) == [1, 3, 7, 17, 41, 99, 239, 577]


def test_family_repeats_and_respects_the_maximum() -> None:
    schedule = dilation_family(3.0, 100, repeats=2)
    assert schedule == [1, 3, 9, 27, 81] * 2
    assert max(schedule) <= 100


@pytest.mark.parametrize("growth", [1.05, 1.3, 1.8, 2.2, 2.9])
@pytest.mark.parametrize("odd", [False, True])
def test_family_strictly_increases_within_a_block(growth: float, odd: bool) -> None:
    block = dilation_family(growth, 512, odd=odd)
    assert block[0] == 1
    assert all(b > a for a, b in zip(block, block[1:]))
    if odd:
        assert all(d % 2 == 1 for d in block)


@pytest.mark.parametrize(
    ("growth", "max_dilation", "repeats"), [(1.0, 64, 1), (math.nan, 64, 1), (2.0, 0, 1), (2.0, 64, 0)]
)
def test_family_rejects_bad_arguments(growth: float, max_dilation: int, repeats: int) -> None:
    with pytest.raises(ConfigError, match="dilation family"):
        dilation_family(growth, max_dilation, repeats)


def test_kernel_pattern_restarts_at_each_dilation_block() -> None:
    dilations = [1, 3, 7, 1, 3, 7]
    assert kernel_schedule([6, 15], dilations) == [6, 15, 6, 6, 15, 6]
    assert kernel_schedule([3], dilations) == [3]
    with pytest.raises(ConfigError):
        kernel_schedule([], dilations)


@pytest.mark.parametrize(
    "value",
    [
        3,
        -2,
        0.004,
        1e-05,
        2.5e10,
        True,
        False,
        None,
        "tanh",
        "two words",
        "it's",
        "[x]",
        [1, 3, 7],
        [0.5, 1.0],
        {"a": 1},
    ],
)
def test_override_values_parse_back_through_hydra(value: object) -> None:
    parsed = OverridesParser.create().parse_override(format_override("some.key", value)).value()
    assert parsed == value


def test_override_values_refuse_what_hydra_cannot_express() -> None:
    with pytest.raises(ConfigError):
        format_value(object())


def test_bookkeeping_overrides_round_trip_into_trial_tags() -> None:
    overrides = bookkeeping_overrides("abc123", 7, "my study")
    assert all(is_bookkeeping_override(o) for o in overrides)
    assert not is_bookkeeping_override("preset.channels=8")
    parsed = {o.key_or_group: o.value() for o in OverridesParser.create().parse_overrides(overrides)}
    parent, tags = trial_run_context({k.split(".", 1)[1]: v for k, v in parsed.items()})
    assert parent == "abc123"
    assert tags == {"trial": "7", "sweep.study": "my study"}
    assert trial_run_context({}) == (None, {})
    assert trial_run_context({"name": "x"}) == (None, {})


def _space_from_file() -> SearchSpace:
    spec = yaml.safe_load(SWEEP_FILE.read_text())["hydra"]["sweeper"]["search_space"]
    return SearchSpace.from_config(spec)


def test_fixed_trial_expands_a_family_into_overrides() -> None:
    trial = optuna.trial.FixedTrial(
        {
            "preset.dilations": FAMILY_CHOICE,
            "preset.dilations.growth": 2.414,
            "preset.dilations.odd": True,
            "preset.dilations.max_dilation": 256,
            "preset.dilations.repeats": 2,
            "preset.kernel_sizes": "mix_6_15",
            "preset.channels": 12,
            "preset.smoothing_alpha": 2.0,
            "train.learning_rate": 0.004,
        }
    )
    point = _space_from_file().suggest(trial)
    assert point.values["preset.dilations"] == [1, 3, 7, 17, 41, 99, 239] * 2
    assert point.values["preset.kernel_sizes"] == [6, 15, 6, 15, 6, 15, 6] * 2
    assert "preset.dilations=[1,3,7,17,41,99,239,1,3,7,17,41,99,239]" in point.overrides
    assert "preset.smoothing_alpha=2.0" in point.overrides
    assert point.params["preset.dilations.growth"] == 2.414


def test_named_schedule_has_no_family_params() -> None:
    trial = optuna.trial.FixedTrial(
        {
            "preset.dilations": "a2_1_239",
            "preset.kernel_sizes": "k3",
            "preset.channels": 8,
            "preset.smoothing_alpha": 1.0,
            "train.learning_rate": 0.002,
        }
    )
    point = _space_from_file().suggest(trial)
    assert point.values["preset.dilations"] == [1, 3, 7, 17, 41, 101, 239]
    assert point.values["preset.kernel_sizes"] == [3]
    assert not any(name.startswith("preset.dilations.") for name in point.params)


def test_kernel_sizes_use_the_config_schedule_when_dilations_are_not_searched() -> None:
    space = SearchSpace.from_config({"preset.kernel_sizes": {"type": "kernel_sizes", "patterns": {"m": [2, 5]}}})
    point = space.suggest(optuna.trial.FixedTrial({"preset.kernel_sizes": "m"}), base=lambda key: [1, 2, 1, 2])
    assert point.values["preset.kernel_sizes"] == [2, 5, 2, 5]
    with pytest.raises(ConfigError, match="layers_of"):
        space.suggest(optuna.trial.FixedTrial({"preset.kernel_sizes": "m"}), base=lambda key: None)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"a": {"low": 1}}, "both low and high"),
        ({"a": {"low": 2.0, "high": 1.0}}, "low <= high"),
        ({"a": {"low": 0.0, "high": 1.0, "log": True}}, "low > 0"),
        ({"a": {"low": "1e-3", "high": 1.0}}, "numbers"),
        ({"a": []}, "at least one choice"),
        ({"a": [[1, 2], [3]]}, "must be scalars"),
        ({"a": {"type": "dilations"}}, "named schedules, a family"),
        ({"a": {"type": "dilations", "named": {"x": [0, 1]}}}, "whole numbers >= 1"),
        ({"a": {"type": "dilations", "family": {"growth": 2.0}}}, "growth and max_dilation"),
        ({"a": {"type": "dilations", "named": {"family": [1]}}}, "reserved"),
        ({"a": {"type": "kernel_sizes", "patterns": {}}}, "non-empty"),
        ({"a": {"lo": 1, "hi": 2}}, "give a list of choices"),
        ({}, "empty"),
    ],
)
def test_bad_specs_are_one_line_config_errors(spec: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        SearchSpace.from_config(spec)
    assert "\n" not in str(info.value)


def test_every_sampled_point_composes_into_a_valid_rtnt_config() -> None:
    """30 random draws of the shipped search space, each composed and validated like rtnt-train does."""
    register_configs()
    register_resolvers()
    space = _space_from_file()
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3), directions=["minimize"])
    GlobalHydra.instance().clear()
    families = 0
    with initialize_config_dir(config_dir=str(REPO_DIR / "conf"), version_base="1.3"):
        for _ in range(30):
            trial = study.ask()
            point = space.suggest(trial)
            families += point.params["preset.dilations"] == FAMILY_CHOICE
            cfg = compose(config_name="config", overrides=["sweep=dilations_smoothing", *point.overrides])
            validate_config(cfg)
            assert list(cfg.preset.dilations) == point.values["preset.dilations"]
            assert cfg.sweep.name == "dilations_smoothing"
            study.tell(trial, 0.0)
    GlobalHydra.instance().clear()
    assert families > 0


def test_a_postgres_storage_without_its_driver_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from hydra_plugins.rtnt_optuna_sweeper._core import make_storage

    monkeypatch.setitem(sys.modules, "psycopg2", None)  # as if `rtnt[postgres]` were not installed
    with pytest.raises(
        ConfigError,
        match=r"needs the database driver 'psycopg2', which is not installed \(pip install 'rtnt\[postgres\]'\)",
    ):
        make_storage("postgresql+psycopg2://user@localhost:1/db", "unused.log")


def test_an_unreachable_storage_is_one_line_without_its_password() -> None:
    from hydra_plugins.rtnt_optuna_sweeper._core import make_storage

    with pytest.raises(ConfigError) as info:
        make_storage("postgresql+psycopg2://user:Planted-Secret-4711@127.0.0.1:9/db", "unused.log")
    message = str(info.value)
    assert message.startswith("cannot open hydra.sweeper.storage=postgresql+psycopg2://user:***@127.0.0.1:9/db: ")
    assert "Planted-Secret-4711" not in message and "\n" not in message
