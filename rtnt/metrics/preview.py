"""Preview evidence for a listener: error metrics, a representative window, WAVs and a residual plot."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rtnt.metrics.esr import esr, esr_preemph
from rtnt.metrics.levels import dc_offset, loudness_difference_db
from rtnt.metrics.stft import mrstft_distance

_ENV_HOP_S = 0.01  # envelope resolution of the window picker
_ATTACK_RISE_DB = 9.0  # rise above the minimum of the preceding 100 ms that counts as an attack
_ACTIVE_RANGE_DB = 40.0  # attacks must reach within this range of the loudest envelope frame
_DECAY_DROP_DB = 12.0  # fall below the post-attack peak that counts as a decay
_DECAY_SPAN_S = (0.3, 3.0)  # the fall must happen this long after the attack, with no attack between


def preview_metrics(y_true: np.ndarray, y_pred: np.ndarray, sample_rate: int) -> dict[str, float]:
    """esr, esr_preemph (coeff 0.85), mrstft (512/1024/2048), dc_offset of the prediction,
    loudness_diff_db (BS.1770-4 integrated loudness, prediction minus target)."""
    return {
        "esr": esr(y_true, y_pred),
        "esr_preemph": esr_preemph(y_true, y_pred),
        "mrstft": mrstft_distance(y_true, y_pred, sample_rate),
        "dc_offset": dc_offset(y_pred),
        "loudness_diff_db": loudness_difference_db(y_true, y_pred, sample_rate),
    }


def _envelope_db(x: np.ndarray, sample_rate: int) -> np.ndarray:
    hop = max(1, int(round(_ENV_HOP_S * sample_rate)))
    frames = np.asarray(x, dtype=np.float64)[: x.size // hop * hop].reshape(-1, hop)
    with np.errstate(divide="ignore"):  # digital silence is -inf dB
        return 10.0 * np.log10(np.mean(frames**2, axis=1))


def _attacks_and_decays(env: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Envelope frame indices of attacks, and of the attacks followed by a decay."""
    look_back = int(round(0.1 / _ENV_HOP_S))
    active = env > env.max() - _ACTIVE_RANGE_DB
    attacks: list[int] = []
    for i in range(look_back, env.size):
        if active[i] and env[i] - env[i - look_back : i].min() >= _ATTACK_RISE_DB:
            if not attacks or i - attacks[-1] > look_back:
                attacks.append(i)
    lo, hi = (int(round(s / _ENV_HOP_S)) for s in _DECAY_SPAN_S)
    decays = []
    for j, a in enumerate(attacks):
        end = min(attacks[j + 1] if j + 1 < len(attacks) else env.size, a + hi)
        peak_at = a + int(np.argmax(env[a : min(end, a + look_back + 1)]))
        if end > peak_at + lo and env[peak_at + lo : end].min() <= env[peak_at] - _DECAY_DROP_DB:
            decays.append(a)
    return np.array(attacks, dtype=int), np.array(decays, dtype=int)


def pick_preview_window(x: np.ndarray, sample_rate: int, seconds: float = 10.0) -> slice:
    """A `seconds`-long window of `x` that contains attacks and at least one decay.

    Heuristic on the 10 ms RMS envelope (dB): an attack is a frame within 40 dB of the loudest
    frame that rises >= 9 dB above the minimum of the preceding 100 ms; a decay is an attack
    whose level falls >= 12 dB below its peak 0.3–3 s later before the next attack. Candidate
    windows start every 0.5 s; the best contains a decaying attack at least 0.3 s before its end,
    then the most attacks (at most 10 count), then starts earliest. A signal no longer than `seconds` is returned whole.
    """
    length = int(round(seconds * sample_rate))
    if np.asarray(x).size <= length:
        return slice(0, int(np.asarray(x).size))
    env = _envelope_db(np.asarray(x), sample_rate)
    attacks, decays = _attacks_and_decays(env)
    win = int(round(seconds / _ENV_HOP_S))
    tail = int(round(_DECAY_SPAN_S[0] / _ENV_HOP_S))
    step = int(round(0.5 / _ENV_HOP_S))
    last_start = (np.asarray(x).size - length) / sample_rate / _ENV_HOP_S
    best, best_score = 0, (-1, -1)
    for start in range(0, int(last_start) + 1, step):
        n_attacks = int(np.count_nonzero((attacks >= start) & (attacks < start + win)))
        has_decay = int(np.count_nonzero((decays >= start) & (decays < start + win - tail)) > 0)
        score = (has_decay, min(n_attacks, 10))
        if score > best_score:
            best, best_score = start, score
    begin = int(round(best * _ENV_HOP_S * sample_rate))
    return slice(begin, begin + length)


def write_preview_wavs(
    out_dir: str | Path,
    x: np.ndarray,
    y: np.ndarray,
    y_pred: np.ndarray,
    sample_rate: int,
    window: slice,
) -> list[Path]:
    """Write input.wav, target.wav, prediction.wav and residual.wav (target - prediction) of `window`.

    32-bit float WAV, so levels above full scale are kept rather than clipped.
    """
    import soundfile as sf

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    y_win = np.asarray(y, dtype=np.float32)[window]
    p_win = np.asarray(y_pred, dtype=np.float32)[window]
    signals = {
        "input": np.asarray(x, dtype=np.float32)[window],
        "target": y_win,
        "prediction": p_win,
        "residual": y_win - p_win,
    }
    paths = []
    for name, sig in signals.items():
        path = out / f"{name}.wav"
        sf.write(path, sig, sample_rate, subtype="FLOAT")
        paths.append(path)
    return paths
