"""An example suite: build an image, deploy it, check it, boot it, clean up.

Tests in images/ provide tags, tests in deploy/ require them (a conftest
default), tests in vm/ run in their own exclusivity group (pytest.ini), and
a cleanup test runs after the rest, whatever the outcome.
"""
