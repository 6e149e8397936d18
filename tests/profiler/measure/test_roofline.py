"""The roofline against hand calculations: a GEMM (compute-bound) and an element-wise op (memory-bound) on two
devices of the table; a target device profiles without timing anything locally."""

from __future__ import annotations

import pytest
import torch

from profiler import ModelSpec, ProfileOptions, profile_model
from profiler.devices import DEVICES, device_named, resolve_device_spec
from profiler.errors import ProfileError
from profiler.measure.roofline import predicted_ms, record_ops
from tests.tiny import TINY_LLAMA

M, K, N = 4096, 4096, 4096


A = torch.empty(M, K, device="meta", dtype=torch.bfloat16)
B = torch.empty(K, N, device="meta", dtype=torch.bfloat16)
X = torch.empty(64, 1024, 1024, device="meta", dtype=torch.bfloat16)


def gemm() -> torch.Tensor:
    return A @ B


def add() -> torch.Tensor:
    return X + X


@pytest.mark.parametrize("name", ["h100-sxm", "a100-80g"])
def test_a_gemm_is_flops_over_the_tensor_core_peak(name: str) -> None:
    device = DEVICES[name]
    (op,) = record_ops(gemm)
    assert op.flops == 2 * M * K * N and op.matrix and op.dtype == "bfloat16"
    assert op.bytes == 2 * (M * K + K * N + M * N)
    compute_s = 2 * M * K * N / (device.matrix_tflops["bfloat16"] * 1e12)
    memory_s = 2 * (M * K + K * N + M * N) / (device.bandwidth_gbs * 1e9)
    assert compute_s > memory_s  # a square bf16 GEMM this large is compute-bound on both
    assert predicted_ms(gemm, device) == pytest.approx(1e3 * compute_s + device.launch_us / 1e3, rel=1e-12)


@pytest.mark.parametrize("name", ["h100-sxm", "a100-80g"])
def test_an_element_wise_add_is_bytes_over_the_bandwidth(name: str) -> None:
    device = DEVICES[name]
    (op,) = record_ops(add)
    elements = 64 * 1024 * 1024
    assert not op.matrix and op.flops == elements and op.bytes == 3 * 2 * elements  # two reads, a write
    assert op.flops / (device.vector_tflops["float32"] * 1e12) < op.bytes / (device.bandwidth_gbs * 1e9)
    expected_ms = 1e3 * 3 * 2 * elements / (device.bandwidth_gbs * 1e9) + device.launch_us / 1e3
    assert predicted_ms(add, device) == pytest.approx(expected_ms, rel=1e-12)


def test_views_launch_nothing() -> None:
    def view() -> torch.Tensor:
        return X.transpose(1, 2).unsqueeze(0)

    assert record_ops(view) == []


def test_unknown_and_custom_devices(tmp_path) -> None:
    with pytest.raises(ProfileError, match="known: h100-sxm, h200"):
        device_named("h300")
    custom = tmp_path / "mygpu.json"
    custom.write_text('{"name": "mygpu", "matrix_tflops": {"float32": 10, "bfloat16": 100}, '
                      '"vector_tflops": {"float32": 10}, "bandwidth_gbs": 500, "memory_gb": 16}')
    assert resolve_device_spec(str(custom)).bandwidth_gbs == 500
    custom.write_text('{"name": "bad", "matrix_tflops": {"bfloat16": 100}, "vector_tflops": {"float32": 10}, '
                      '"bandwidth_gbs": 500, "memory_gb": 16}')
    with pytest.raises(ProfileError, match="float32 among them"):
        resolve_device_spec(str(custom))


def test_a_target_device_profile_times_nothing_locally() -> None:
    options = ProfileOptions(methods=["lora"], ranks=[4], batch_size=2, seq_len=16, target_device="h100-sxm")
    profile = profile_model(ModelSpec(config=TINY_LLAMA), options)
    assert profile.timing_kind == "roofline:h100-sxm" and profile.device == "meta" and not profile.timed
    assert profile.memory.fixed.overhead > 0  # a CUDA device: its context counts
    assert all(c.latency_ms > 0 and c.train_step_ms > 0 and not c.estimated for c in profile.candidates)
    assert all(layer.forward_ms > 0 for layer in profile.layers)
