import time

import pytest


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("build")


@pytest.mark.pexen(provides=["compiler"])
def test_toolchain():
    time.sleep(0.2)


@pytest.mark.pexen(requires=["compiler"], provides=["image"])
def test_build_image(workdir):
    time.sleep(0.3)
    (workdir / "image").write_text("ok")


@pytest.mark.pexen(requires=["compiler"], provides=["docs"])
def test_build_docs():
    time.sleep(0.2)


@pytest.mark.parametrize("flavour", ["small", "large"])
def test_unit(flavour):
    assert flavour in ("small", "large")
