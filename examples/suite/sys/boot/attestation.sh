#!/bin/sh
# pexen: requires=measured-boot
echo "attestation quote verified"
