import time

import pytest

import pytest_pexen


@pytest.mark.pexen(provides=["service"])
def test_deploy(pexen_data):
    time.sleep(0.2)
    # Handed to the tests that require "service" (pexen_inputs).
    pexen_data["url"] = "http://127.0.0.1:8080"


@pytest.mark.pexen(requires=["service"], uses=["service-port"], provides=["checked"])
@pytest.mark.parametrize("endpoint", ["/health", "/metrics", "/version"])
def test_endpoint(endpoint, pexen_inputs):
    time.sleep(0.1)
    url = pexen_inputs["service"]["url"] + endpoint
    assert url.startswith("http://")


@pytest.mark.pexen(requires=["service"], uses=["service-port"])
def test_latency():
    p99 = 180
    # Passes, with a warning: the outcome is "warned".
    if p99 > 150:
        pytest_pexen.warn(f"p99 latency {p99} ms is over the 150 ms budget")


@pytest.mark.pexen(requires=[("service", "docs")])
def test_either_service_or_docs():
    pass


@pytest.mark.skip(reason="not on this platform")
def test_skipped():
    pass


@pytest.mark.xfail(reason="known bug")
def test_known_bug():
    assert False


@pytest.mark.pexen(requires=["service"], claims=["service-port"])
def test_restart_service():
    # Exclusive: no endpoint check (which only uses the port) runs meanwhile.
    time.sleep(0.1)
