# Every test in this directory runs before the others of equal readiness.
pexen_defaults = {"priority": -1}
