#!/bin/sh
# pexen: provides=tpm
# This machine has no TPM: skipped, so what needs one is blocked.
echo "no TPM device found" >&2
exit 77
