#!/bin/sh
# A fake agent (a plain script): runs the test's edit, says what it did.
set -e
sh -c "$FAKE_EDIT"
echo "${FAKE_SAY:-I made the edit the task asked for.}"
