"""Declarative search spaces for the Optuna sweeper, expanded into ordinary Hydra overrides.

A search space is a mapping from a config key (e.g. `preset.smoothing_alpha`) to a spec:

- a list: a categorical choice among its values;
- a mapping with `low`/`high` (optional `log`, `step`, `type: int|float`): a numeric range;
- a mapping with `choices` (a list, or a mapping of names to values, e.g. lists): a categorical;
- a plain value: fixed, passed to every trial;
- `type: dilations`: named schedules (`named: {name: [1, 2, 4, ...]}`) and/or a generated family
  (`family: {growth, max_dilation, repeats, odd}`, each itself a spec), see `dilation_family`;
- `type: kernel_sizes`: named per-layer patterns (`patterns: {name: [6, 15]}`) repeated over the
  layers of the dilation schedule named by `layers_of` (default `preset.dilations`), see `kernel_schedule`;
- `null`: the key is not searched (lets a sweep config switch off an entry it inherited).

Every trial becomes a `TrialPoint`: the Optuna parameter values and the `key=value` overrides that
reproduce it with `rtnt-train <overrides>`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from rtnt.errors import ConfigError

FAMILY_CHOICE = "family"
_PLAIN_STRING = re.compile(r"[A-Za-z_][A-Za-z0-9_\-./]*")
_HYDRA_KEYWORDS = {"true", "false", "null", "inf", "nan"}


class SuggestingTrial(Protocol):
    """The part of `optuna.trial.Trial` a search space uses."""

    def suggest_float(
        self, name: str, low: float, high: float, *, step: float | None = None, log: bool = False
    ) -> float: ...

    def suggest_int(self, name: str, low: int, high: int, *, step: int = 1, log: bool = False) -> int: ...

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any: ...


@dataclass(frozen=True)
class TrialPoint:
    """One sampled configuration: Optuna's parameter values and the Hydra overrides they expand to."""

    params: dict[str, Any]
    overrides: list[str]
    values: dict[str, Any]  # config key -> value passed to the job


def dilation_family(growth: float, max_dilation: int, repeats: int = 1, odd: bool = False) -> list[int]:
    """A generated dilation schedule: 1, then each dilation `growth` times the previous, rounded.

    Rounding is to the nearest integer (halves up), or with `odd=True` to the nearest odd integer
    (halves up), and every step grows by at least 1 (2 when odd). The block stops before exceeding
    `max_dilation` and is repeated `repeats` times. Examples: growth 2 gives 1, 2, 4, 8, ...;
    growth 2 with odd gives 1, 3, 7, 15, 31, ...; growth 1+sqrt(2) with odd gives the non-power-of-two
    sequence 1, 3, 7, 17, 41, 99, 239, ...
    """
    if not (math.isfinite(growth) and growth > 1.0):
        raise ConfigError(
            f"dilation family growth={growth!r} is invalid: must be a finite number > 1; fix the sweep config"
        )
    if max_dilation < 1:
        raise ConfigError(
            f"dilation family max_dilation={max_dilation!r} is invalid: must be >= 1; fix the sweep config"
        )
    if repeats < 1:
        raise ConfigError(f"dilation family repeats={repeats!r} is invalid: must be >= 1; fix the sweep config")
    block = [1]
    while True:
        scaled = block[-1] * growth
        if odd:
            nxt = 2 * math.floor((scaled - 1.0) / 2.0 + 0.5) + 1
            nxt = max(nxt, block[-1] + 2)
        else:
            nxt = max(math.floor(scaled + 0.5), block[-1] + 1)
        if nxt > max_dilation:
            break
        block.append(nxt)
    return block * repeats


def kernel_schedule(pattern: Sequence[int], dilations: Sequence[int]) -> list[int]:
    """Kernel size per layer: `pattern` repeated over each block of the dilation schedule.

    A block starts wherever the dilation does not increase (so a repeated schedule restarts the
    pattern, as in the a2 preset). A one-element pattern is returned as is (one size for all layers).
    """
    if not pattern or any(int(k) < 1 for k in pattern):
        raise ConfigError(f"kernel pattern {list(pattern)!r} is invalid: needs kernel sizes >= 1; fix the sweep config")
    if len(pattern) == 1:
        return [int(pattern[0])]
    out: list[int] = []
    position = 0
    for i, d in enumerate(dilations):
        if i > 0 and d <= dilations[i - 1]:
            position = 0
        out.append(int(pattern[position % len(pattern)]))
        position += 1
    return out


def format_value(value: Any) -> str:
    """A value in Hydra's override grammar: `true`, `3`, `0.004`, `[1,3,7]`, `'a b'`, `{k:v}`."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        if _PLAIN_STRING.fullmatch(value) and value.lower() not in _HYDRA_KEYWORDS:
            return value
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{k}:{format_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, Sequence):
        return "[" + ",".join(format_value(v) for v in value) + "]"
    raise ConfigError(f"cannot write {value!r} ({type(value).__name__}) as a Hydra override value")


def format_override(key: str, value: Any) -> str:
    """`key=value` in Hydra's override grammar."""
    return f"{key}={format_value(value)}"


# --- parsing -----------------------------------------------------------------------------------


def _fail(path: str, spec: Any, rule: str) -> ConfigError:
    return ConfigError(
        f"search space entry {path}={spec!r} is invalid: {rule}; fix hydra.sweeper.search_space in conf/sweep/"
    )


def _number(path: str, spec: Any, value: Any, kind: str) -> float | int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _fail(
            path, spec, f"low/high/step must be numbers (write floats as 0.001 or 1.0e-3, not 1e-3), got {value!r}"
        )
    return int(value) if kind == "int" else float(value)


@dataclass(frozen=True)
class ScalarParam:
    """One searched (or fixed) scalar: a float or int range, a categorical, or a fixed value."""

    kind: str  # float | int | categorical | fixed
    low: float | int = 0
    high: float | int = 0
    log: bool = False
    step: float | int | None = None
    choices: tuple[Any, ...] = ()  # categorical: the Optuna choices (names or scalar values)
    mapping: tuple[tuple[str, Any], ...] = ()  # categorical by name: name -> value passed on
    fixed: Any = None

    @classmethod
    def parse(cls, path: str, spec: Any, kind: str | None = None) -> ScalarParam:
        """Parse a scalar spec; `kind` forces float/int/bool interpretation (used by families)."""
        if isinstance(spec, Sequence) and not isinstance(spec, str):
            return cls._categorical(path, spec, list(spec), kind)
        if isinstance(spec, Mapping):
            declared = spec.get("type")
            if "choices" in spec:
                if declared not in (None, "categorical"):
                    raise _fail(path, spec, "choices go with type: categorical")
                return cls._categorical(path, spec, spec["choices"], kind)
            if "low" in spec or "high" in spec:
                return cls._range(path, spec, declared or kind)
            raise _fail(path, spec, "give a list of choices, choices:, or low:/high:")
        if spec is None:
            raise _fail(path, spec, "a value is required here")
        return cls(kind="fixed", fixed=cls._coerce(path, spec, spec, kind))

    @classmethod
    def _coerce(cls, path: str, spec: Any, value: Any, kind: str | None) -> Any:
        if kind == "bool":
            if not isinstance(value, bool):
                raise _fail(path, spec, f"expected true/false, got {value!r}")
            return value
        if kind in ("int", "float"):
            number = _number(path, spec, value, kind)
            if kind == "int" and number != value:
                raise _fail(path, spec, f"expected a whole number, got {value!r}")
            return number
        return value

    @classmethod
    def _categorical(cls, path: str, spec: Any, choices: Any, kind: str | None) -> ScalarParam:
        if isinstance(choices, Mapping):
            if not choices:
                raise _fail(path, spec, "needs at least one choice")
            names = tuple(str(k) for k in choices)
            mapping = tuple((str(k), v) for k, v in choices.items())
            return cls(kind="categorical", choices=names, mapping=mapping)
        values = list(choices)
        if not values:
            raise _fail(path, spec, "needs at least one choice")
        coerced = [cls._coerce(path, spec, v, kind) for v in values]
        for v in coerced:
            if not (v is None or isinstance(v, (bool, int, float, str))):
                raise _fail(path, spec, "list choices must be scalars; give list values as choices: {name: [..]}")
        return cls(kind="categorical", choices=tuple(coerced))

    @classmethod
    def _range(cls, path: str, spec: Mapping[str, Any], declared: str | None) -> ScalarParam:
        if "low" not in spec or "high" not in spec:
            raise _fail(path, spec, "a range needs both low and high")
        unknown = set(spec) - {"type", "low", "high", "log", "step"}
        if unknown:
            raise _fail(path, spec, f"unknown keys {sorted(unknown)} (allowed: type, low, high, log, step)")
        raw = [spec["low"], spec["high"]] + ([spec["step"]] if spec.get("step") is not None else [])
        if declared is None:
            declared = "int" if all(isinstance(v, int) and not isinstance(v, bool) for v in raw) else "float"
        if declared not in ("int", "float"):
            raise _fail(path, spec, f"a range has type int or float, not {declared!r}")
        low = _number(path, spec, spec["low"], declared)
        high = _number(path, spec, spec["high"], declared)
        step = _number(path, spec, spec["step"], declared) if spec.get("step") is not None else None
        log = bool(spec.get("log", False))
        if not (math.isfinite(low) and math.isfinite(high) and low <= high):
            raise _fail(path, spec, "needs finite low <= high")
        if log and low <= 0:
            raise _fail(path, spec, "a log range needs low > 0")
        if log and step is not None:
            raise _fail(path, spec, "log and step cannot be combined")
        if step is not None and step <= 0:
            raise _fail(path, spec, "step must be > 0")
        return cls(kind=declared, low=low, high=high, log=log, step=step)

    def suggest(self, trial: SuggestingTrial, name: str) -> tuple[Any, Any]:
        """Ask the trial for this parameter; return (Optuna's value, the value passed to the job)."""
        if self.kind == "fixed":
            return None, self.fixed
        if self.kind == "float":
            value = trial.suggest_float(name, float(self.low), float(self.high), step=self.step, log=self.log)
            return value, value
        if self.kind == "int":
            int_value = trial.suggest_int(name, int(self.low), int(self.high), step=int(self.step or 1), log=self.log)
            return int_value, int_value
        chosen = trial.suggest_categorical(name, list(self.choices))
        if self.mapping:
            return chosen, dict(self.mapping)[chosen]
        return chosen, chosen


@dataclass(frozen=True)
class FamilySpec:
    """The generated dilation family: a spec for each argument of `dilation_family`."""

    growth: ScalarParam
    max_dilation: ScalarParam
    repeats: ScalarParam
    odd: ScalarParam

    @classmethod
    def parse(cls, path: str, spec: Any) -> FamilySpec:
        if not isinstance(spec, Mapping):
            raise _fail(path, spec, "family is a mapping with growth, max_dilation, repeats, odd")
        unknown = set(spec) - {"growth", "max_dilation", "repeats", "odd"}
        if unknown:
            raise _fail(
                path, spec, f"unknown family keys {sorted(unknown)} (allowed: growth, max_dilation, repeats, odd)"
            )
        if "growth" not in spec or "max_dilation" not in spec:
            raise _fail(path, spec, "family needs growth and max_dilation")
        return cls(
            growth=ScalarParam.parse(f"{path}.growth", spec["growth"], "float"),
            max_dilation=ScalarParam.parse(f"{path}.max_dilation", spec["max_dilation"], "int"),
            repeats=ScalarParam.parse(f"{path}.repeats", spec.get("repeats", 1), "int"),
            odd=ScalarParam.parse(f"{path}.odd", spec.get("odd", False), "bool"),
        )


def _int_list(path: str, spec: Any, values: Any) -> list[int]:
    if not isinstance(values, Sequence) or isinstance(values, str) or not values:
        raise _fail(path, spec, f"expected a non-empty list of whole numbers >= 1, got {values!r}")
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise _fail(path, spec, f"expected whole numbers >= 1, got {v!r}")
        out.append(int(v))
    return out


@dataclass(frozen=True)
class Entry:
    """One key of the search space and how to sample and expand it."""

    key: str
    type: str  # scalar | dilations | kernel_sizes
    scalar: ScalarParam | None = None
    named: tuple[tuple[str, tuple[int, ...]], ...] = ()
    family: FamilySpec | None = None
    layers_of: str = "preset.dilations"

    @classmethod
    def parse(cls, key: str, spec: Any) -> Entry:
        path = key
        declared = spec.get("type") if isinstance(spec, Mapping) else None
        if declared == "dilations":
            unknown = set(spec) - {"type", "named", "family"}
            if unknown:
                raise _fail(path, spec, f"unknown keys {sorted(unknown)} (allowed: named, family)")
            named_spec = spec.get("named") or {}
            if not isinstance(named_spec, Mapping):
                raise _fail(path, spec, "named is a mapping of schedule names to dilation lists")
            if FAMILY_CHOICE in named_spec:
                raise _fail(path, spec, f"'{FAMILY_CHOICE}' is reserved for the generated family; rename that schedule")
            named = tuple((str(n), tuple(_int_list(f"{path}.named.{n}", spec, v))) for n, v in named_spec.items())
            family = FamilySpec.parse(f"{path}.family", spec["family"]) if spec.get("family") is not None else None
            if not named and family is None:
                raise _fail(path, spec, "give named schedules, a family, or both")
            return cls(key=key, type="dilations", named=named, family=family)
        if declared == "kernel_sizes":
            unknown = set(spec) - {"type", "patterns", "layers_of"}
            if unknown:
                raise _fail(path, spec, f"unknown keys {sorted(unknown)} (allowed: patterns, layers_of)")
            patterns = spec.get("patterns")
            if not isinstance(patterns, Mapping) or not patterns:
                raise _fail(path, spec, "patterns is a non-empty mapping of names to kernel-size lists")
            named = tuple((str(n), tuple(_int_list(f"{path}.patterns.{n}", spec, v))) for n, v in patterns.items())
            return cls(
                key=key, type="kernel_sizes", named=named, layers_of=str(spec.get("layers_of", "preset.dilations"))
            )
        return cls(key=key, type="scalar", scalar=ScalarParam.parse(path, spec))


class SearchSpace:
    """An ordered set of entries; `suggest` samples one trial and expands it into overrides."""

    def __init__(self, entries: Sequence[Entry]) -> None:
        self.entries = list(entries)

    @classmethod
    def from_config(cls, spec: Mapping[str, Any]) -> SearchSpace:
        """Parse `hydra.sweeper.search_space` (a plain mapping); raise ConfigError on any mistake."""
        if not isinstance(spec, Mapping):
            raise ConfigError(f"hydra.sweeper.search_space must be a mapping of config keys to specs, got {spec!r}")
        entries = [Entry.parse(str(key), value) for key, value in spec.items() if value is not None]
        if not entries:
            raise ConfigError(
                "hydra.sweeper.search_space is empty; select a sweep config (sweep=...) or give search_space"
            )
        # Kernel sizes depend on the dilation schedule, so they are expanded after everything else.
        entries.sort(key=lambda e: e.type == "kernel_sizes")
        return cls(entries)

    def suggest(self, trial: SuggestingTrial, base: Callable[[str], Any] | None = None) -> TrialPoint:
        """Sample every entry; `base(key)` (a lookup in the composed config) supplies keys the space leaves out."""
        params: dict[str, Any] = {}
        values: dict[str, Any] = {}
        for entry in self.entries:
            if entry.type == "scalar":
                assert entry.scalar is not None
                param, value = entry.scalar.suggest(trial, entry.key)
                if entry.scalar.kind != "fixed":
                    params[entry.key] = param
                values[entry.key] = value
            elif entry.type == "dilations":
                values[entry.key] = self._suggest_dilations(trial, entry, params)
            else:
                layers = (
                    values[entry.layers_of] if entry.layers_of in values else (base(entry.layers_of) if base else None)
                )
                if layers is None:
                    raise ConfigError(
                        f"search space entry {entry.key} needs the layer list {entry.layers_of}, which is neither "
                        "searched nor in the config; set layers_of: to the dilations key"
                    )
                name = trial.suggest_categorical(entry.key, [n for n, _ in entry.named])
                params[entry.key] = name
                values[entry.key] = kernel_schedule(dict(entry.named)[name], [int(d) for d in layers])
        overrides = [format_override(k, v) for k, v in values.items()]
        return TrialPoint(params=params, overrides=overrides, values=values)

    @staticmethod
    def _suggest_dilations(trial: SuggestingTrial, entry: Entry, params: dict[str, Any]) -> list[int]:
        choices = [n for n, _ in entry.named] + ([FAMILY_CHOICE] if entry.family is not None else [])
        choice = choices[0] if len(choices) == 1 else trial.suggest_categorical(entry.key, choices)
        if len(choices) > 1:
            params[entry.key] = choice
        if choice != FAMILY_CHOICE:
            return list(dict(entry.named)[choice])
        family = entry.family
        assert family is not None
        args: dict[str, Any] = {}
        for arg in ("growth", "max_dilation", "repeats", "odd"):
            spec: ScalarParam = getattr(family, arg)
            name = f"{entry.key}.{arg}"
            param, args[arg] = spec.suggest(trial, name)
            if spec.kind != "fixed":
                params[name] = param
        return dilation_family(
            float(args["growth"]), int(args["max_dilation"]), int(args["repeats"]), bool(args["odd"])
        )
