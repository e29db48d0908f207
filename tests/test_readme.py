"""The README's Python examples run as written."""

import os
import re
import subprocess
import sys

import pytest

from conftest import FASHION_MNIST_DIR

README = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")


def python_blocks(section):
    """The ```python blocks of a README section ("## <section>" up to the next "## ")."""
    with open(README, encoding="utf-8") as stream:
        text = stream.read()
    start = text.index(f"## {section}\n")
    end = text.find("\n## ", start + 1)
    return re.findall(r"```python\n(.*?)```", text[start : end if end > 0 else None], flags=re.DOTALL)


def test_from_python_section_runs_as_written(tmp_path):
    if not os.path.isdir(FASHION_MNIST_DIR):
        if os.environ.get("CI"):
            pytest.fail(f"{FASHION_MNIST_DIR} is missing: .ci/run must install dataset-fashion-mnist")
        pytest.skip("Debian's dataset-fashion-mnist is not installed")
    blocks = python_blocks("From Python")
    assert len(blocks) == 2
    script = tmp_path / "from_python.py"
    script.write_text("\n".join(blocks))
    # In a fresh folder, as a notebook would run: runs/ and saved_models/ are created there.
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path, timeout=280)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "(16, 32, 32, 1) uint8" in result.stdout
    assert "True" in result.stdout.splitlines()  # The trained model and its export sample the same images.
    assert "(16, 32, 32, 1) (4,)" in result.stdout
    assert re.search(r"test IWAE bound: \d+ nats per image", result.stdout)
    assert re.search(r"Wasserstein estimate: -?\d", result.stdout)
    assert (tmp_path / "runs" / "notebook_vae" / "explore" / "interpolate.png").exists()
    assert (tmp_path / "saved_models" / "notebook_vae" / "1" / "saved_model.pb").exists()
