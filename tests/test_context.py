"""Compute-context choice. This machine has no CUDA extension, so cuDNN itself cannot run
here: these tests check the fallback and the refusal, with the import simulated for the
device-count branch."""
import pytest

from metrics.lpips.engines import context


def test_auto_falls_back_to_cpu_without_the_extension():
    assert context.choose_context("auto").backend[0].startswith("cpu")


def test_explicit_cudnn_is_an_error_not_a_fallback():
    with pytest.raises(context.ContextError, match="cannot use cudnn.*-c cpu"):
        context.choose_context("cudnn")


def test_device_id_beyond_the_devices_found(monkeypatch):
    monkeypatch.setattr(context, "_cuda_devices", lambda: 1)
    with pytest.raises(context.ContextError, match="device 3 requested, 1 found"):
        context.choose_context("cudnn", device_id=3)
    assert context.choose_context("auto", device_id=3).backend[0].startswith("cpu")


def test_unknown_context_lists_the_valid_ones():
    with pytest.raises(ValueError, match="auto, cpu, cudnn"):
        context.choose_context("tpu")
