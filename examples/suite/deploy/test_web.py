import pytest

import pytest_pexen


# Either web server provides "httpd"; apache is preferred (a better priority).
@pytest.mark.pexen(provides=["httpd"], priority=-1)
def test_apache(pexen_data):
    pexen_data["server"] = "apache"


@pytest.mark.pexen(provides=["httpd"])
def test_nginx(pexen_data):
    pexen_data["server"] = "nginx"


# Needs any one of them (the first to pass), and reads what it wrote.
@pytest.mark.pexen(requires=[pytest_pexen.any_of("httpd")])
def test_front_page(pexen_inputs):
    assert pexen_inputs["httpd"]["server"] in ("apache", "nginx")
