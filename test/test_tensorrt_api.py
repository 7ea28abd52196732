"""TensorRT versions: which ones the project builds engines with, and how the others are
refused. That every TensorRT name the code reaches exists in each supported release is
checked by running the code against strict stand-ins of each release's bindings
(``test_tensorrt.py``, ``tensorrt_standin.py``): an allowlist, not a list of removed names.
"""

from __future__ import annotations

import pytest

from bisenet_ros.export.tensorrt_versions import UnsupportedTensorRT, tensorrt_version


@pytest.mark.parametrize("version", ["7.2.3", "8.5.3", "8.4.1", "9.3.0", "12.0.0", "x"])
def test_other_versions_are_refused_in_one_sentence(version):
    with pytest.raises(UnsupportedTensorRT) as error:
        tensorrt_version(version)
    message = str(error.value)
    assert "\n" not in message and version in message
    if version != "x":
        assert "8.6, 10.x and 11.x" in message
