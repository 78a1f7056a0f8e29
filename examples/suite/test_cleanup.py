import pytest


@pytest.mark.pexen(after=["image", "service", "docs"], priority=10)
def test_collect_logs():
    pass
