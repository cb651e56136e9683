"""ONNX image classifiers brought in from elsewhere (Keras, PyTorch, a course notebook), turned into PyTorch modules
that every page can look inside.

An ONNX file is data: a protobuf message of operators and tensors, parsed here without running anything from it.
Before it is converted it must pass, each with one sentence: a size limit, a parse, ONNX's own checker, every
tensor's declared size against its bytes (a file cannot claim a 10 GB initializer, nor point at data outside
itself), one image input of static channels, height and width, and a 2-D output (classes).

The converter is onnx2torch, the field's converter from ONNX to torch.fx modules of ordinary layers (Conv2d, ReLU,
Linear...), so forward hooks, Grad-CAM and synthesis work on it as on our own models. Its last release (1.5.15)
converts up to opset 17, while today's exporters (torch.onnx among them) write opset 18 or newer; ONNX's own
version converter brings a model down to 17 first. That keeps to the maintained upstream packages (onnx and
onnx2torch) rather than a fork of the converter, at the cost of refusing, in one sentence, an operator that has no
opset-17 form.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import onnx
import torch
from google.protobuf.message import DecodeError
from onnx import TensorProto, helper, numpy_helper, version_converter
from torch import nn

from cnn_lab.limits import MAX_IMAGE_SIDE
from cnn_lab.settings import load_settings

CONVERTER_OPSET = 17  # the newest opset onnx2torch 1.5.15 converts


class OnnxError(ValueError):
    """A file that cannot be brought in; the message is one sentence."""


@dataclass
class OnnxClassifier:
    """A converted ONNX classifier and what the file says about its input and classes."""
    model: nn.Module
    input_shape: tuple[int, int, int]  # (C, H, W)
    classes: list[str]
    mean: list[float] | None  # the normalisation its metadata states (None: it does not say)
    std: list[float] | None
    opset: int  # the file's own


def _parse(data: bytes) -> onnx.ModelProto:
    limit = load_settings().onnx_max_mb
    if len(data) > limit * 2**20:
        raise OnnxError(f"This file is {len(data) / 2**20:,.0f} MB, more than the {limit:g} MB an ONNX model may take "
                        "here.")
    try:
        model = onnx.load_model_from_string(data)
    except (DecodeError, ValueError, RuntimeError):
        raise OnnxError("This file is not a readable ONNX model (it is damaged, truncated, or another kind of "
                        "file).") from None
    if not model.graph.node or not model.graph.output:
        raise OnnxError("This file is not an ONNX model: it holds no graph of operators.")
    return model


def _check_tensors(model: onnx.ModelProto) -> None:
    """Every initializer's bytes are in the file, and as many as its shape says."""
    tensors = list(model.graph.initializer) + [attr.t for node in model.graph.node for attr in node.attribute
                                               if attr.type == onnx.AttributeProto.TENSOR]
    declared = 0
    for tensor in tensors:
        if tensor.data_location == TensorProto.EXTERNAL or tensor.external_data:
            raise OnnxError(f"This model's tensor {tensor.name!r} refers to data outside the file; import a model "
                            "saved as one file.")
        itemsize = np.dtype(helper.tensor_dtype_to_np_dtype(tensor.data_type)).itemsize
        size = int(np.prod(tensor.dims, dtype=np.float64)) * itemsize
        declared += size
        held = len(tensor.raw_data) if tensor.HasField("raw_data") else _typed_values(tensor) * itemsize
        if held < size:
            raise OnnxError(f"This model's tensor {tensor.name!r} claims {size / 2**30:,.1f} GB but the file holds "
                            f"{held:,} bytes of it: the file is damaged or forged, so it was not opened.")
    limit = load_settings().onnx_max_mb * 2**20
    if declared > limit:
        raise OnnxError(f"This model's weights take {declared / 2**20:,.0f} MB, more than the "
                        f"{limit / 2**20:g} MB allowed here.")


def _typed_values(tensor: TensorProto) -> int:
    """How many values a tensor stored in its typed fields (not raw_data) holds."""
    return max(len(tensor.float_data), len(tensor.int32_data), len(tensor.int64_data), len(tensor.double_data),
               len(tensor.uint64_data), len(tensor.string_data))


def _input_shape(model: onnx.ModelProto) -> tuple[int, int, int]:
    weights = {tensor.name for tensor in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in weights]
    if len(inputs) != 1:
        raise OnnxError(f"This model takes {len(inputs)} inputs; an image classifier takes one (a batch of images).")
    dims = inputs[0].type.tensor_type.shape.dim
    if len(dims) != 4:
        raise OnnxError(f"This model's input has {len(dims)} dimensions; an image classifier takes 4 (batch, "
                        "channels, height, width).")
    shape = tuple(d.dim_value if d.HasField("dim_value") else None for d in dims[1:])
    if None in shape:
        raise OnnxError("This model's input has no fixed channels, height and width (a dynamic spatial shape), so "
                        "the pages cannot choose an image size for it: export it with a fixed size, e.g. 224x224.")
    if shape[0] not in (1, 3):
        raise OnnxError(f"This model takes {shape[0]} channels; the pages give it RGB (3) or grey (1) images.")
    if max(shape[1:]) > MAX_IMAGE_SIDE:
        raise OnnxError(f"This model takes {shape[1]}x{shape[2]} images; the pages give a model at most "
                        f"{MAX_IMAGE_SIDE}x{MAX_IMAGE_SIDE} pixels.")
    return shape  # type: ignore[return-value]


def _check_activations(model: onnx.ModelProto, shape: tuple[int, int, int]) -> None:
    """Before the converted model runs once: every layer output's size, from ONNX's own shape inference (no data
    is computed), for one image against one job's memory budget. A dimension it cannot infer counts as 1."""
    try:
        inferred = onnx.shape_inference.infer_shapes(model).graph
    except Exception:  # noqa: BLE001 - a graph it cannot follow: the input's size check above still holds
        return
    values = 0
    for value in [*inferred.value_info, *inferred.output]:
        dims = value.type.tensor_type.shape.dim
        values += int(np.prod([d.dim_value if d.HasField("dim_value") else 1 for d in dims], dtype=np.float64))
    needed, budget = values * 4 / 2**30, load_settings().decode_budget_gb
    if needed > budget:
        raise OnnxError(f"Running this model on one {shape[1]}x{shape[2]} image would take about {needed:,.1f} GB of "
                        f"memory (its layers' outputs), over the {budget:g} GB one job may use here.")


def _metadata_list(model: onnx.ModelProto, key: str) -> list | None:
    entry = next((p.value for p in model.metadata_props if p.key == key), None)
    try:
        value = json.loads(entry) if entry else None
    except ValueError:
        return None
    return value if isinstance(value, list) else None


def _plain_reshapes(model: onnx.ModelProto) -> None:
    """torch.onnx writes Reshape with allowzero=1, which onnx2torch refuses. The flag changes only what a 0 in the
    target shape means, so where that shape is a constant without a 0 it is set to the default, in place."""
    constants = {t.name: t for t in model.graph.initializer} | {
        n.output[0]: a.t for n in model.graph.node if n.op_type == "Constant" for a in n.attribute if a.name == "value"}
    for node in model.graph.node:
        flag = next((a for a in node.attribute if a.name == "allowzero"), None)
        shape = constants.get(node.input[1]) if node.op_type == "Reshape" and len(node.input) > 1 else None
        if flag is not None and flag.i == 1 and shape is not None and 0 not in numpy_helper.to_array(shape):
            flag.i = 0


def _converted(model: onnx.ModelProto) -> nn.Module:
    from onnx2torch import convert  # imported when a model comes in: it imports much of torchvision

    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), CONVERTER_OPSET)
    try:
        if opset > CONVERTER_OPSET:
            model = version_converter.convert_version(model, CONVERTER_OPSET)
    except Exception as error:  # noqa: BLE001 - the converter raises many kinds
        raise OnnxError(f"This model (opset {opset}) cannot be brought down to opset {CONVERTER_OPSET}, which the "
                        f"converter reads ({type(error).__name__}).") from None
    _plain_reshapes(model)
    try:
        return convert(model).eval()
    except NotImplementedError as error:
        if "operation_type='" not in str(error):  # a supported operator with an option the converter lacks
            raise OnnxError(f"This model uses an operator in a form the converter (onnx2torch) does not support "
                            f"({error}), so it cannot be opened here.") from None
        operator = str(error).split("operation_type='")[1].split("'")[0]
        raise OnnxError(f"This model uses the operator {operator}, which the converter (onnx2torch) does not "
                        "support, so it cannot be opened here.") from None
    except Exception as error:  # noqa: BLE001
        raise OnnxError(f"This model cannot be converted to PyTorch ({type(error).__name__}: {error}).") from None


def read_onnx(data: bytes) -> OnnxClassifier:
    """The classifier in an ONNX file's bytes, converted to PyTorch; OnnxError with one sentence otherwise."""
    model = _parse(data)
    _check_tensors(model)
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as error:
        raise OnnxError(f"This ONNX model is not valid: {str(error).splitlines()[0][:200]}") from None
    shape = _input_shape(model)
    _check_activations(model, shape)
    module = _converted(model)
    try:
        with torch.no_grad():
            output = module(torch.zeros(1, *shape))
    except Exception as error:  # noqa: BLE001 - any failure of the converted graph
        raise OnnxError(f"This model does not run on a {shape[1]}x{shape[2]} image ({type(error).__name__}).") from None
    if not isinstance(output, torch.Tensor) or output.dim() != 2:
        got = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
        raise OnnxError(f"This model's output is {got}, not one score per class (batch, classes): it is not an "
                        "image classifier.")
    count = output.shape[1]
    classes = _metadata_list(model, "classes")
    classes = [str(c) for c in classes] if classes and len(classes) == count else [f"class {i}" for i in range(count)]
    mean, std = _metadata_list(model, "mean"), _metadata_list(model, "std")
    if any(k.key == "cnn_lab_run" for k in model.metadata_props):  # our own export: normalisation inside
        mean, std = [0.0] * shape[0], [1.0] * shape[0]
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    return OnnxClassifier(module, shape, classes, mean, std, opset)
