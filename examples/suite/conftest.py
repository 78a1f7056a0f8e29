"""An example suite: build an artifact, deploy it, check it, clean up.

Tests in build/ provide tags, tests in deploy/ require them; a cleanup test
runs after everything, whatever the outcome.
"""
