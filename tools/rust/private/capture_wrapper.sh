#!/bin/sh
# Usage: capture_wrapper.sh STATUS_FILE LOG_FILE COMMAND...
# Runs COMMAND and records its output and exit status instead of failing the
# action, so a lint finding becomes a failing (and cacheable) test result
# rather than a build error.
status_file="$1"
log_file="$2"
shift 2
"$@" > "$log_file" 2>&1
echo "$?" > "$status_file"
