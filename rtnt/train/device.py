"""Which device trains the model: `train.device=cpu` (the default), `gpu`, or `auto` (a GPU when TensorFlow finds
one, else the CPU).

TensorFlow's Linux wheel is built with CUDA, so importing it and creating its devices probes for CUDA; on a
machine without a GPU that probe writes lines such as "Could not find cuda drivers on your machine" and "failed
call to cuInit" to stderr, even with `TF_CPP_MIN_LOG_LEVEL=2` (the first is logged before absl's logging starts)
and even with `CUDA_VISIBLE_DEVICES` cleared. `select_device` therefore imports TensorFlow and lists its GPUs
with the process's stderr (file descriptor 2, where TensorFlow's C++ log goes) redirected to a temporary file:
the probe's lines go to rtnt's debug log, or back to stderr when the probe itself fails. A CUDA-less TensorFlow
build is recognised before any GPU is listed (`tf.sysconfig.get_build_info()["is_cuda_build"]`).

`cpu` also hides every GPU from TensorFlow (`CUDA_VISIBLE_DEVICES=""` before TensorFlow loads, and
`tf.config.set_visible_devices([], "GPU")`), as rtnt has always trained. The choice must be made before
TensorFlow creates its devices, i.e. before the first model is built in the process.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from rtnt.errors import ConfigError
from rtnt.tracking.machine import cpu_model

log = logging.getLogger("rtnt")

GPU_INSTALL_HINT = "install TensorFlow's CUDA libraries with pip install 'rtnt[gpu]' (= 'tensorflow[and-cuda]')"


@dataclass(frozen=True)
class TrainingDevice:
    """The device a run trains on: `kind` is "cpu" or "gpu", `name` the CPU model or the GPU's name,
    `requested` the `train.device` value that chose it."""

    kind: str
    name: str
    requested: str


@dataclass(frozen=True)
class GpuProbe:
    """What TensorFlow reports: whether it was built with CUDA, and the names of the GPUs it can use."""

    cuda_build: bool
    gpus: tuple[str, ...]


@contextmanager
def quiet_stderr() -> Iterator[None]:
    """Redirect file descriptor 2 (C++ logs included) to a temporary file for the block; its lines go to the
    debug log, or back to stderr when the block raises."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 2)
        failed = True
        try:
            yield
            failed = False
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            text = sink.read().decode("utf-8", "replace")
            if failed:
                sys.stderr.write(text)
            for line in text.splitlines():
                log.debug("tensorflow: %s", line)


def probe_gpus() -> GpuProbe:
    """Import TensorFlow and list the GPUs it can use, with its CUDA probe's stderr silenced."""
    with quiet_stderr():
        import tensorflow as tf

        if not tf.sysconfig.get_build_info().get("is_cuda_build", False):
            return GpuProbe(cuda_build=False, gpus=())
        gpus = tf.config.list_physical_devices("GPU")
        names = tuple(str(tf.config.experimental.get_device_details(g).get("device_name", g.name)) for g in gpus)
    return GpuProbe(cuda_build=True, gpus=names)


def select_device(requested: str) -> TrainingDevice:
    """Make TensorFlow train on the device `train.device` asks for, quietly; return it.

    `gpu` without a usable GPU raises ConfigError (one line: what TensorFlow reported and how to fix it).
    """
    if requested == "cpu":
        if "tensorflow" not in sys.modules:
            os.environ["CUDA_VISIBLE_DEVICES"] = ""
        probe_gpus()  # loads TensorFlow quietly; with CUDA_VISIBLE_DEVICES="" it finds no GPU
        _hide_gpus()
        return TrainingDevice("cpu", cpu_model(), requested)
    probe = probe_gpus()
    if probe.gpus:
        return TrainingDevice("gpu", probe.gpus[0], requested)
    if requested == "gpu":
        raise ConfigError(
            f"train.device=gpu: {_no_gpu_reason(probe)}; {GPU_INSTALL_HINT}, or train on the CPU with train.device=cpu"
        )
    return TrainingDevice("cpu", cpu_model(), requested)  # auto without a GPU


def _no_gpu_reason(probe: GpuProbe) -> str:
    if not probe.cuda_build:
        return "this TensorFlow build has no CUDA support"
    hidden = os.environ.get("CUDA_VISIBLE_DEVICES")
    where = f"; CUDA_VISIBLE_DEVICES={hidden!r} hides devices" if hidden is not None else ""
    return f"TensorFlow finds no GPU (no NVIDIA driver, CUDA libraries or visible device{where})"


def _hide_gpus() -> None:
    """Keep TensorFlow off every GPU for `cpu` (a no-op when it sees none, as with CUDA_VISIBLE_DEVICES="")."""
    import tensorflow as tf

    if not tf.config.list_physical_devices("GPU"):
        return
    try:
        tf.config.set_visible_devices([], "GPU")
    except RuntimeError:
        raise ConfigError(
            "train.device=cpu: TensorFlow already placed work on a GPU in this process; start a new process "
            "(or set CUDA_VISIBLE_DEVICES='' before it starts)"
        ) from None
