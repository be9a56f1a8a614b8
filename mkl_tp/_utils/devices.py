"""The one place that turns a device name into a torch device (torch is imported here)."""

import os

import torch


def resolve_device(spec="auto"):
    """Turn ``auto`` / ``cpu`` / ``cuda`` / ``cuda:N`` into a torch device.

    ``auto`` picks CUDA when available, on device ``$LOCAL_RANK`` under torchrun.

    Raises
    ------
    ValueError
        CUDA requested but not available, or an unknown name.
    """
    if isinstance(spec, torch.device):
        spec = str(spec)
    if spec == "auto":
        if not torch.cuda.is_available():
            return torch.device("cpu")
        spec = f"cuda:{int(os.environ.get('LOCAL_RANK', 0)) % torch.cuda.device_count()}"
    try:
        device = torch.device(spec)
    except (RuntimeError, TypeError):
        raise ValueError(f"unknown device {spec!r}; use auto, cpu, cuda or cuda:N") from None
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"unknown device {spec!r}; use auto, cpu, cuda or cuda:N")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {spec!r} requested but CUDA is not available")
    return device
