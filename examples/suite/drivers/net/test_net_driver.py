import time

import pytest


@pytest.mark.pexen(provides=["build"])
def test_build():
    time.sleep(0.2)


@pytest.mark.pexen(requires=["build"], claims=["nic"])
def test_load():
    # Exclusive: one test at a time may reload the network card's driver.
    time.sleep(0.1)


@pytest.mark.pexen(requires=["build"], claims=["nic"])
def test_link_up():
    time.sleep(0.1)
