# "build" here is this directory's own: storage has one of the same name.
pexen_defaults = {"local_tags": ["build"]}
