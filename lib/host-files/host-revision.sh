#!/bin/sh
# git-triggler: keeps the receiver host's last good version (installed by cfn-init from the CDK
# stack, lib/host-files). cfn-init runs `save` before it writes a new version, and the health step
# runs `restore` when the new version does not answer /healthz, so a bad update leaves the host on
# the version that was serving, not on the broken one.
#
# Usage: triggler-host-revision save PORT PATH...   keep PATHs, if the receiver on PORT is healthy
#        triggler-host-revision restore              put the kept PATHs back and restart on them
set -u
keep=/var/lib/triggler-host
service=triggler-receiver

case "${1:-}" in
  save)
    port=$2
    shift 2
    # Only a version that serves is worth going back to; otherwise the older good one stays.
    if ! curl --fail --silent --output /dev/null --max-time 2 "http://127.0.0.1:${port}/healthz"; then
      echo "the receiver does not answer /healthz on port ${port}: keeping the version saved before, if any"
      exit 0
    fi
    umask 077
    rm -rf "$keep/saving" && mkdir -p "$keep/saving/files" || exit 1
    : > "$keep/saving/paths"
    for p in "$@"; do
      echo "$p" >> "$keep/saving/paths"
      if [ -e "$p" ]; then cp -a --parents "$p" "$keep/saving/files/" || exit 1; fi
    done
    rm -rf "$keep/previous" && mv "$keep/saving" "$keep/previous" || exit 1
    echo "saved the serving version ($# paths) to go back to"
    ;;
  restore)
    if [ ! -f "$keep/previous/paths" ]; then
      echo 'no earlier version was saved (a first install)' >&2
      exit 1
    fi
    while IFS= read -r p; do
      rm -rf "$p"
      if [ -e "$keep/previous/files$p" ]; then
        mkdir -p "$(dirname "$p")" && cp -a "$keep/previous/files$p" "$p" || exit 1
      fi
    done < "$keep/previous/paths"
    systemctl daemon-reload && systemctl restart "$service"
    ;;
  *)
    echo "usage: $0 save PORT PATH... | restore" >&2
    exit 2
    ;;
esac
