# Inherited by every test below: drivers are built against the image.
pexen_defaults = {"requires": ["image"]}
