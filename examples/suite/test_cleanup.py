import pytest


@pytest.mark.pexen(after=["image", "checked", "docs"], priority=10)
def test_collect_logs():
    pass
