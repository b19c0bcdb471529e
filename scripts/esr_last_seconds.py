"""ESR of an exported model file over the last N seconds of a capture (NAM's validation span is the last 12 s
of the shared captures: rtnt's validation plus test regions), rendered natively with the preceding audio as history.

    python scripts/esr_last_seconds.py MODEL.{json,nam} CAPTURE_NAME [--seconds 12]
"""

from __future__ import annotations

import argparse

import numpy as np
from hydra import compose, initialize_config_dir

from rtnt.capture.prepare import prepare_capture
from rtnt.config import REPO_DIR, register_configs, register_resolvers
from rtnt.metrics.esr import esr
from rtnt.native import NativeModel


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("capture")
    ap.add_argument("--seconds", type=float, default=12.0)
    args = ap.parse_args()
    register_configs()
    register_resolvers()
    with initialize_config_dir(config_dir=str(REPO_DIR / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=[f"capture={args.capture}"])
    cap = prepare_capture(cfg.capture)
    model = NativeModel.from_file(args.model)
    model.prepare(4096)
    model.reset()
    y_hat = np.asarray(model.process(cap.x.astype(np.float32)), dtype=np.float64)  # the whole capture, one pass
    n = int(args.seconds * cap.sample_rate)
    print(f"ESR over the last {args.seconds:g} s of {args.capture}: {esr(cap.y[-n:], y_hat[-n:]):.5g}")


if __name__ == "__main__":
    main()
