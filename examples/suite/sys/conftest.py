# Every script below runs in the "sys" group (a thread pool, see pytest.ini)
# on the built image; a script's own "# pexen:" header adds to this.
pexen_defaults = {"group": "sys", "requires": ["image"]}
