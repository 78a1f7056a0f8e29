import time

import pytest

pytestmark = pytest.mark.pexen(group="vm", requires=["image"])


def test_boot():
    time.sleep(0.2)


def test_migrate():
    time.sleep(0.1)
