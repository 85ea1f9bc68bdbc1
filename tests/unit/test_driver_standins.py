"""The stand-in packages of tests/fixtures/driver_repo.py are real Debian packages: dpkg-deb
reads them, and the repository index lists each with its real name and version."""

from __future__ import annotations

import shutil
import subprocess

import pytest

import driver_repo

pytestmark = pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="dpkg-deb is not installed here")


def field(deb, name):
    return subprocess.run(["dpkg-deb", "--field", str(deb), name], capture_output=True, text=True, check=True).stdout.strip()


def test_nvidia_repository(tmp_path):
    names = driver_repo.build_repository(str(tmp_path))
    assert "nvidia-open_580.95.05-1_all.deb" in names and "nvidia-fabricmanager_580.76.05-1_all.deb" not in names
    deb = tmp_path / "nvidia-open_580.95.05-1_all.deb"
    assert field(deb, "Depends") == ("nvidia-kernel-open-dkms (= 580.95.05-1), nvidia-driver-cuda (= 580.95.05-1), "
                                     "nvidia-persistenced (= 580.95.05-1)")
    # Like the real package, the fabric manager does not depend on the driver.
    assert field(tmp_path / "nvidia-fabricmanager_580.95.05-1_all.deb", "Depends") == ""
    listing = subprocess.run(["dpkg-deb", "--contents", str(tmp_path / "nvidia-driver-cuda_580.95.05-1_all.deb")],
                             capture_output=True, text=True, check=True).stdout
    assert "./usr/bin/nvidia-smi" in listing
    index = (tmp_path / "Packages").read_text()
    assert index.count("Package: nvidia-open\n") == 4 and "Filename: ./nvidia-open_590.48.01-1_all.deb" in index


def test_operator_packages(tmp_path):
    made = driver_repo.build_operator_packages(str(tmp_path))
    assert field(made["vastai"], "Package") == "vastai-pci-dkms" and field(made["vastai"], "Depends") == "dkms"
    listing = subprocess.run(["tar", "-tzf", made["erdma"]], capture_output=True, text=True, check=True).stdout.split()
    assert listing == ["erdma_installer/", "erdma_installer/install.sh"]
