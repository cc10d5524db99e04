"""Where an encoder's image forward runs: PyTorch, or its ONNX export in ONNX Runtime (fp32/int8).

Why a swap of the image forward only: the pipeline, the text tower, the detector and the saved
encoder identity stay the same; a faster runtime is a drop-in for ``Encoder.encode_array``.
Exports are cached per encoder identity under ``<cache>/onnx/`` so only the first use pays for them.

Why int8 is OpenCLIP-only: dynamic int8 of the ViT's matrix products is accurate (cosine > 0.99)
and faster on AVX2, but for the convolutional EfficientNet-Lite0 dynamic int8 (ConvInteger) is ~10x
slower than fp32 and static int8 loses too much accuracy on AVX2 (u8s8 saturation; cosine
0.73-0.97 on UCSD Ped2 frames), so ``onnx-int8`` falls back to the fp32 export for it (a notice).
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from ..atomic import atomic_path, file_lock
from ..config import default_home
from ..errors import EncoderUnavailableError
from ..threads import cpu_count, small_machine

log = logging.getLogger(__name__)

RUNTIMES = ("torch", "onnx", "onnx-int8")
#: bump when the export recipe changes, so stale cached files are not reused
EXPORT_VERSION = 1
OPSET = 17


# -- ONNX export and sessions -------------------------------------------------------------------
def onnx_dir(cache_dir: str | Path | None, identity_key: str) -> Path:
    """Folder of one encoder's exports: ``<cache>/onnx/<identity key>-v<export version>``."""
    if cache_dir is None:
        cache_dir = default_home() / "cache"
    return Path(cache_dir).expanduser() / "onnx" / f"{identity_key}-v{EXPORT_VERSION}"


def _require_onnxruntime():
    try:
        import onnxruntime
    except ImportError as exc:
        raise EncoderUnavailableError("the onnx runtimes need onnxruntime: pip install 'vlm-anomaly[onnx]' "
                                      "(or use runtime torch)") from exc
    return onnxruntime


def export_onnx(module: torch.nn.Module, size: int, path: Path) -> Path:
    """Export ``module`` (pixels (N,3,S,S) -> features (N,D)), dynamic batch axis, atomically."""
    # grad mode on: under no_grad, attention takes a fused fast path that ONNX cannot express
    with atomic_path(path) as tmp, warnings.catch_warnings(), torch.inference_mode(False), torch.enable_grad():
        warnings.simplefilter("ignore")
        # the TorchScript exporter: no extra dependency (the dynamo one needs onnxscript)
        torch.onnx.export(module.eval(), (torch.zeros(1, 3, size, size),), tmp, dynamo=False, input_names=["pixels"],
                          output_names=["features"], dynamic_axes={"pixels": {0: "batch"}, "features": {0: "batch"}},
                          opset_version=OPSET, do_constant_folding=True)
    return path


def quantize_int8(src: Path, dst: Path) -> Path:
    """Dynamic int8 quantisation of the matrix products (weights int8 per channel, activations u8).

    ``reduce_range`` keeps weights to 7 bits: on AVX2 without VNNI the u8s8 kernel can saturate its
    16-bit intermediate sums otherwise.
    """
    _require_onnxruntime()
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with atomic_path(dst) as tmp, contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quantize_dynamic(str(src), tmp, weight_type=QuantType.QInt8, per_channel=True, reduce_range=True,
                         op_types_to_quantize=["MatMul", "Gemm"])
    return dst


class OnnxImageTower:
    """An ONNX Runtime session running an image tower: float32 pixels in, raw features out."""

    def __init__(self, path: str | Path, *, threads: int = 0):
        ort = _require_onnxruntime()
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads if threads > 0 else cpu_count()
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.log_severity_level = 3
        if small_machine():  # the decoder shares the cores: sleep, do not spin, between ops
            so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.path = Path(path)
        self.session = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype=np.float32)
        return self.session.run(None, {self.input_name: x})[0]


def build_onnx_tower(module_factory: Callable[[], torch.nn.Module], size: int, identity_key: str, *, quantized: bool,
                     cache_dir: str | Path | None = None, threads: int = 0) -> OnnxImageTower:
    """The cached export of an encoder's image tower (exported/quantised on first use), loaded."""
    folder = onnx_dir(cache_dir, identity_key)
    fp32 = folder / "image_fp32.onnx"
    path = folder / "image_int8.onnx" if quantized else fp32
    with file_lock(folder.parent / f".{folder.name}.lock"):
        for attempt in (1, 2):
            if not fp32.is_file():
                log.info("exporting the image tower to ONNX (%s), once per encoder", fp32)
                export_onnx(module_factory(), size, fp32)
            if quantized and not path.is_file():
                log.info("quantising the ONNX image tower to int8 (%s)", path)
                quantize_int8(fp32, path)
            try:
                return OnnxImageTower(path, threads=threads)
            except Exception as exc:  # noqa: BLE001 - a damaged cached file: rebuild once
                if attempt == 2:
                    raise EncoderUnavailableError(f"cannot load ONNX export {path}: {exc}") from None
                log.warning("cached ONNX export %s unusable (%s): re-exporting", path, exc)
                for p in {fp32, path}:
                    p.unlink(missing_ok=True)
    raise AssertionError("unreachable")
