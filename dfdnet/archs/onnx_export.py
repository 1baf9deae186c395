"""The generator as an ONNX graph (and an OpenVINO model) with the boxes as an input.

The graph has two inputs, ``images`` (B, 3, S, S) float32 in [-1, 1] and ``boxes`` (B, 4, 4)
float32 ``[x1, y1, x2, y2]`` in S-px image pixels for left eye, right eye, nose and mouth (the
integers of ``component_boxes``), and one output ``restored`` (B, 3, S, S) in [-1, 1]. The batch is
dynamic and the dictionaries are inside the graph. The same forward that runs in torch is traced:
every box-dependent step is a tensor operation (``dfdnet.archs.dft``).
"""
from __future__ import annotations

import importlib
import warnings
from pathlib import Path

import numpy as np
import torch

from dfdnet.archs.dfdnet_arch import DFDNetGenerator

ONNX_OPSET = 17  # GridSample (roi_align crops) needs 16
INPUT_NAMES = ('images', 'boxes')
OUTPUT_NAME = 'restored'


def require(package: str, purpose: str):
    """Import ``package`` or raise an ImportError that names it and how to install it."""
    try:
        return importlib.import_module(package)
    except ImportError as exc:
        raise ImportError(f'{purpose} needs the Python package {package!r}, which is not installed: '
                          f'pip install {package}') from exc


def example_inputs(image_size: int, batch: int = 2, seed: int = 0):
    """Random faces (B, 3, S, S) in [-1, 1] and component boxes (B, 4, 4) float32, different per face,
    around the aligned positions of the eyes, nose and mouth (S-px pixels)."""
    rng = np.random.default_rng(seed)
    images = torch.from_numpy(rng.uniform(-1, 1, (batch, 3, image_size, image_size)).astype(np.float32))
    centres = np.array([[190, 240], [320, 240], [256, 300], [256, 390]], dtype=np.float64)  # 512-px face
    halves = np.array([40, 40, 30, 60], dtype=np.float64)
    boxes = []
    for _ in range(batch):
        c = centres + rng.uniform(-12, 12, centres.shape)
        h = (halves * rng.uniform(0.8, 1.25, 4))[:, None]
        boxes.append(np.hstack([c - h + 1, c + h]) * image_size / 512)
    return images, torch.from_numpy(np.floor(np.stack(boxes)).astype(np.float32))


def export_onnx(model: DFDNetGenerator, path, batch: int = 2, opset: int = ONNX_OPSET) -> Path:
    """Trace ``model`` (float32, on the CPU) into ``path``; a graph over 2 GB keeps its weights beside it
    in ``<path>.data``. Raises ImportError naming ``onnx`` when it is missing."""
    require('onnx', 'ONNX export')
    if model.training:
        raise ValueError('export the generator in eval mode (load_generator gives one)')
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    images, boxes = example_inputs(model.config.image_size, batch)
    precision, model.precision = model.precision, 'fp32'
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.filterwarnings('ignore', category=DeprecationWarning)  # the TorchScript exporter
            warnings.filterwarnings('ignore', category=torch.jit.TracerWarning)  # shape checks at trace time
            torch.onnx.export(model.cpu(), (images, boxes), str(path), dynamo=False, opset_version=opset,
                              input_names=list(INPUT_NAMES), output_names=[OUTPUT_NAME],
                              dynamic_axes={name: {0: 'batch'} for name in (*INPUT_NAMES, OUTPUT_NAME)})
    finally:
        model.precision = precision
    return path


def run_onnx(path, images: np.ndarray, boxes: np.ndarray, threads: int = 0) -> np.ndarray:
    """One onnxruntime forward of the exported file on the CPU; threads 0 = onnxruntime's default."""
    ort = require('onnxruntime', 'running the ONNX model')
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(str(path), options, providers=['CPUExecutionProvider'])
    return session.run(None, {'images': images.astype(np.float32), 'boxes': boxes.astype(np.float32)})[0]


def export_openvino(onnx_path, output_dir) -> Path:
    """Convert the ONNX file into OpenVINO IR (``model.xml`` + ``model.bin``, weights kept float32)."""
    ov = require('openvino', 'OpenVINO export')
    xml = Path(output_dir) / 'model.xml'
    ov.save_model(ov.convert_model(str(onnx_path)), str(xml), compress_to_fp16=False)
    return xml


def run_openvino(xml, images: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """One OpenVINO forward of the IR on the CPU in float32 (no bf16 down-conversion)."""
    ov = require('openvino', 'running the OpenVINO model')
    compiled = ov.Core().compile_model(str(xml), 'CPU', {'INFERENCE_PRECISION_HINT': 'f32'})
    return compiled({'images': images.astype(np.float32), 'boxes': boxes.astype(np.float32)})[0]


def compare(reference: torch.Tensor, output: np.ndarray) -> dict:
    """max and mean |difference| of two outputs in [-1, 1], in 1/255 units."""
    diff = np.abs(reference.detach().cpu().numpy().astype(np.float64) - output.astype(np.float64)) * 127.5
    return {'max_255': float(diff.max()), 'mean_255': float(diff.mean())}


def export_runtime(checkpoint, dict_dir, output_dir, fmt: str = 'onnx', check: bool = True, **load_kwargs) -> dict:
    """Load a generator (any checkpoint format) and write ``output_dir``/model.onnx, and for
    ``fmt='openvino'`` also model.xml + model.bin. With ``check``, the written model runs on three
    faces with different boxes beside the torch forward; returns the differences (1/255 units)."""
    from dfdnet.archs.checkpoint import load_generator

    if fmt not in ('onnx', 'openvino'):
        raise ValueError(f"format must be 'onnx' or 'openvino', got {fmt!r}")
    model = load_generator(checkpoint, dict_dir, device='cpu', precision='fp32', **load_kwargs)
    output_dir = Path(output_dir)
    files = {'onnx': export_onnx(model, output_dir / 'model.onnx')}
    if fmt == 'openvino':
        files['openvino'] = export_openvino(files['onnx'], output_dir)
    report = {'files': {k: str(v) for k, v in files.items()}}
    if check:
        images, boxes = example_inputs(model.config.image_size, batch=3, seed=1)
        with torch.no_grad():
            reference = model(images, boxes)
        report['onnxruntime'] = compare(reference, run_onnx(files['onnx'], images.numpy(), boxes.numpy()))
        if fmt == 'openvino':
            report['openvino'] = compare(reference, run_openvino(files['openvino'], images.numpy(), boxes.numpy()))
    return report
