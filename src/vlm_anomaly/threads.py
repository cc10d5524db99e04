"""Thread counts for small machines: the encoder gets the cores, the decoder one FFmpeg thread.

Why: on a 2-core machine, PyTorch/ONNX Runtime intra-op threads plus FFmpeg's own thread pool (one
per core) plus the prefetch thread would oversubscribe the CPU; decoding a 640x480 frame costs
~1 ms against 30-100 ms to encode it, so one decoder thread fills the gaps without stealing cores.

Why passive OpenMP waiting: PyTorch's OpenMP threads spin at every barrier by default. When the
decoder thread (or any other process) holds one of two cores, the spinning partner burns its time
slice waiting: EfficientNet-Lite0 at batch 1 measured 683 ms/frame spinning vs 89 ms passive on a
busy 2-core machine. It must be set before PyTorch loads, so the package sets it on import (an
explicit ``OMP_WAIT_POLICY`` in the environment wins).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def cpu_count() -> int:
    """CPUs this process may use (respects taskset/cgroup affinity, unlike ``os.cpu_count``)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def small_machine() -> bool:
    """Few cores: the decoder and the encoder share them, so nothing should spin-wait."""
    return cpu_count() <= 4


def decoder_threads() -> int:
    """FFmpeg decoding threads: 1 on small machines (no oversubscription), else 0 (FFmpeg picks)."""
    return 1 if small_machine() else 0


def configure_threads(threads: int = 0) -> int:
    """Set PyTorch's intra-op threads (0 = every usable core: the decoder only fills the gaps);
    returns the number used."""
    import torch

    n = threads if threads > 0 else cpu_count()
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n
