import pytest


# Ordering only: starts once every test providing these tags has ended,
# whatever their outcome. Local tags are named from outside their tree as
# NAME@DIR.
@pytest.mark.pexen(
    after=["image", "checked", "docs", "build@drivers/net", "build@drivers/storage"], priority=10
)
def test_collect_logs():
    pass
