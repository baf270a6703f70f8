# A PyTorch-trained state_dict (the twin of the reference modules, trained with the Fourier prior and saved
# with safetensors by tests/fixtures/make_python_fixtures.py) loads through lowpass.load and predicts what the
# PyTorch module predicted, for the binary and the profile model. Run: scripts/test_python.sh
import json
import os
import struct

import numpy as np
import pytest

import lowpass

FIX = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures")


def safetensors_metadata(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        return json.loads(f.read(n)).get("__metadata__", {})


@pytest.mark.parametrize("kind", ["binary", "profile"])
def test_pytorch_state_dict_predicts_the_same(kind):
    path = os.path.join(FIX, f"torch_sd_{kind}.safetensors")
    cfg = json.loads(safetensors_metadata(path)["config"])
    ref = np.load(os.path.join(FIX, f"torch_sd_{kind}.npz"))
    m = lowpass.load(path, config=cfg, threads=1)
    assert m.type == kind and m.dtype == "float32"
    if kind == "binary":
        got = {"logits": m.predict(ref["x"])}
    else:
        p, c = m.predict(ref["x"], control=ref["control"])
        got = {"profile_logits": p, "log_counts": c}
    for k, v in got.items():
        scale = max(1.0, float(np.abs(ref[k]).max()))
        np.testing.assert_allclose(v, ref[k], rtol=0, atol=1e-4 * scale, err_msg=k)
    # Parameter names and values are the PyTorch module's.
    sd = m.state_dict()
    assert "conv_layers.0.weight" in sd if kind == "binary" else "dil_convs.0.weight" in sd
