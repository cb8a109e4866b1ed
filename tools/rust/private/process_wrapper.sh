#!/bin/sh
# Runs rustc (or clippy-driver) with the action's working directory remapped to
# ".": rustc records it in rlib metadata and debug info, and it differs for
# every sandbox and output base, which would make outputs irreproducible and
# defeat the remote cache.
exec "$@" "--remap-path-prefix=$PWD=."
