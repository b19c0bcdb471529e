"""`rtnt-evaluate MODEL.{json,nam} [capture=...] [export.*=...] [tracking.*=...]`: thin entry point of
`rtnt.evaluate.evaluate_model_file`. Overrides use rtnt-train's config groups."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

USAGE = (
    "usage: rtnt-evaluate MODEL.{json,nam} [capture=NAME | capture=files capture.input=DI capture.target=AMP] "
    "[key=value ...]"
)


def main(argv: list[str] | None = None) -> int:
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from rtnt.cli import run_command
    from rtnt.cli.train import check_group_choices, describe_compose_error, parse_overrides
    from rtnt.config import CONF_DIR, register_configs, register_resolvers, validate_config
    from rtnt.errors import RtntError

    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if args else 2
    model, overrides = Path(args[0]), args[1:]
    register_configs()
    register_resolvers()

    def evaluate() -> None:
        from rtnt.evaluate import check_model_file, evaluate_model_file

        check_model_file(model)
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            try:
                check_group_choices(parse_overrides(overrides))
                cfg = compose(config_name="config", overrides=overrides)
                validate_config(cfg, training=False)
            except (HydraException, OmegaConfBaseException, ValueError) as exc:
                raise RtntError(describe_compose_error(exc)) from None
        out_dir = Path("outputs") / "evaluate" / time.strftime("%Y-%m-%d/%H-%M-%S") / model.stem
        evaluate_model_file(cfg, model, out_dir)

    return run_command(evaluate, interrupted="interrupted; the MLflow run is marked KILLED")


if __name__ == "__main__":
    sys.exit(main())
