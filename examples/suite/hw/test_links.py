import pytest


@pytest.mark.pexen(provides=["links"])
def test_discover_links(pexen_data):
    # What a real suite would read from the machine (/sys/class/net).
    pexen_data["links"] = {"eth0": 1000, "eth1": 10000}


@pytest.mark.pexen(after=["links"])
def test_link_report():
    # Runs after the discovery test and every link test it added.
    pass
