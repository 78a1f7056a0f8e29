#!/bin/sh
# pexen: uses=network timeout=10
echo "resolved localhost to 127.0.0.1"
sleep 0.2
