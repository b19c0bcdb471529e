"""Native benchmark and the rtnt-bench command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rtnt.cli.bench import main
from rtnt.config import shared_dir
from rtnt.native import native_available
from rtnt.validate.bench import benchmark_native, benchmark_table_markdown, random_conv_stack

pytestmark = pytest.mark.skipif(not native_available(), reason="rtnt._native is not built (pip install -e .)")


@pytest.fixture(scope="module")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bench") / "tcn.json"
    path.write_text(json.dumps(random_conv_stack(8, [1, 2, 4, 8], seed=1)))
    return path


def test_benchmark_native_keys_and_values(model_path: Path) -> None:
    res = benchmark_native(model_path, block_sizes=(1, 64), seconds=0.1)
    assert res.macs_per_sample == 3 * 8 + 3 * 3 * 8 * 8 + 8
    for key in ("rtf", "rtf_p99", "gmacs", "efficiency", "block_ms_p99", "stability", "cost_stability"):
        assert set(getattr(res, key)) == {1, 64}
        assert all(v > 0 for v in getattr(res, key).values())
    assert res.rtf_worst == min(res.rtf_p99.values())
    assert res.cost_stability_worst == min(res.cost_stability.values()) <= 1.0
    assert res.stability[64] == pytest.approx(res.rtf_p99[64] / res.rtf[64])
    assert res.sgemm_gmacs > 0
    assert res.efficiency[64] == pytest.approx(res.gmacs[64] / res.sgemm_gmacs)
    assert min(res.blocks_timed.values()) >= 200
    table = benchmark_table_markdown(res)
    assert "| 64 |" in table and "efficiency" in table


def test_cli_json(model_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(model_path), "--json", "--seconds", "0.1", "--blocks", "1,32"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"rtf", "rtf_worst", "gmacs", "efficiency", "sgemm_gmacs"} <= set(out)
    assert set(out["rtf"]) == {"1", "32"}
    assert out["self_check"]["passed"]


def test_cli_table(model_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(model_path), "--seconds", "0.1", "--blocks", "16"]) == 0
    assert "self-check passed" in capsys.readouterr().out


NAM_MODELS = shared_dir() / "conformance" / "nam" / "models"


@pytest.mark.skipif(not (NAM_MODELS / "A2.nam").exists(), reason="NAM conformance models not found")
def test_cli_nam_with_slim(capsys: pytest.CaptureFixture[str]) -> None:
    """A .nam file benchmarks like any model; --slim 0 runs A2.nam's A2-Lite submodel."""
    assert main([str(NAM_MODELS / "A2.nam"), "--slim", "0", "--json", "--seconds", "0.1", "--blocks", "64"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["self_check"]["passed"] and out["slim"] == 0.0
    assert "channels 3" in out["description"] and out["macs_per_sample"] == 1731
    assert main([str(NAM_MODELS / "wavenet.nam"), "--slim", "0.5", "--seconds", "0.1"]) == 2
    assert "is not slimmable" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("content", "args", "fragment"),
    [
        (None, [], "does not exist"),
        ('{"in_shape": [1], "layers": [', [], "the file is truncated"),
        ('{"in_shape": [1], "layers": [{"type": "rnn", "shape": [1]}]}', [], "layers[0] (rnn): unknown layer type"),
        (None, ["--blocks", "0,64"], "block sizes must be in"),
    ],
)
def test_cli_errors(
    tmp_path: Path,
    model_path: Path,
    capsys: pytest.CaptureFixture[str],
    content: str | None,
    args: list[str],
    fragment: str,
) -> None:
    path = tmp_path / "m.json"
    if content is not None:
        path.write_text(content)
    elif args:
        path = model_path
    assert main([str(path), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and fragment in err and err.count("\n") == 1


def test_cli_refuses_a_model_that_overflows(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dense = {"type": "dense", "activation": "", "shape": [None, None, 1], "weights": [[[2e19]], [0.0]]}
    path = tmp_path / "overflow.json"
    path.write_text(json.dumps({"in_shape": [None, None, 1], "layers": [dense, dense]}))
    assert main([str(path), "--seconds", "0.1", "--blocks", "32"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "the output holds NaN or inf" in err


def test_cli_refuses_duplicate_keys(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A second "layers" used to win silently: rtnt-bench benchmarked an empty, 0-MAC model."""
    path = tmp_path / "dup.json"
    path.write_text(json.dumps(random_conv_stack(4, [1, 2]))[:-1] + ', "layers": []}')
    assert main([str(path), "--seconds", "0.1", "--blocks", "32"]) == 2
    assert 'duplicate member name "layers"' in capsys.readouterr().err
