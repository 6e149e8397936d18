"""GPUs to plan for without having them: published dense figures (no sparsity), one entry each.

Matrix rates are the tensor-core peaks for bfloat16/float16 (float32 matrix products count at the CUDA-core
rate: torch does not use TF32 for them by default); memory in GB as the datasheets give it. A device of
your own is the same figures in a JSON file (`profiler.schema.DeviceSpec`).
"""

from __future__ import annotations

from pathlib import Path

from profiler.errors import ProfileError
from profiler.jsontext import JsonTextError, loads
from profiler.schema import DeviceSpec


def _gpu(name: str, half: float, fp32: float, bandwidth: float, memory: float, source: str) -> DeviceSpec:
    return DeviceSpec(name=name, matrix_tflops={"float32": fp32, "bfloat16": half, "float16": half},
                      vector_tflops={"float32": fp32}, bandwidth_gbs=bandwidth, memory_gb=memory, source=source)


DEVICES: dict[str, DeviceSpec] = {d.name: d for d in (
    _gpu("h100-sxm", 989.4, 66.9, 3350, 80, "NVIDIA H100 Tensor Core GPU datasheet (SXM5)"),
    _gpu("h200", 989.4, 66.9, 4800, 141, "NVIDIA H200 Tensor Core GPU datasheet (SXM)"),
    _gpu("a100-80g", 312, 19.5, 2039, 80, "NVIDIA A100 datasheet (80GB SXM)"),
    _gpu("a100-40g", 312, 19.5, 1555, 40, "NVIDIA A100 datasheet (40GB)"),
    _gpu("l40s", 362.05, 91.6, 864, 48, "NVIDIA L40S datasheet"),
    _gpu("l4", 121, 30.3, 300, 24, "NVIDIA L4 datasheet"),
    _gpu("rtx-4090", 165.2, 82.6, 1008, 24, "NVIDIA Ada GPU architecture whitepaper (RTX 4090, FP32 accumulate)"),
)}


def device_named(name: str) -> DeviceSpec:
    """The table's device `name`; ProfileError listing the known devices if there is none."""
    device = DEVICES.get(name)
    if device is None:
        raise ProfileError(f"unknown device {name!r}; known: {', '.join(DEVICES)} (or a JSON file of its figures)")
    return device


def resolve_device_spec(target: str | DeviceSpec) -> DeviceSpec:
    """A target device: its figures as given, a table name, or a JSON file of figures (ProfileError if bad)."""
    if isinstance(target, DeviceSpec):
        return target
    path = Path(target)
    if target.endswith(".json") or path.is_file():
        try:
            return DeviceSpec.model_validate(loads(path.read_bytes()))
        except OSError as exc:
            raise ProfileError(f"cannot read device file {path.name}: {exc.strerror}") from None
        except (JsonTextError, ValueError) as exc:
            raise ProfileError(f"device file {path.name}: {' '.join(str(exc).split())[:300]}") from None
    return device_named(target)
