pexen_defaults = {"requires": ["image"]}
