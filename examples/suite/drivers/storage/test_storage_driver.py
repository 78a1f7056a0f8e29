import time

import pytest


@pytest.mark.pexen(provides=["build"])
def test_build():
    time.sleep(0.3)


@pytest.mark.pexen(requires=["build"], provides=["storage"])
def test_load():
    time.sleep(0.1)
