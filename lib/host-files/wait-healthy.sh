#!/bin/sh
# git-triggler: the last step of cfn-init on the receiver host (installed from the CDK stack,
# lib/constructs/receiver-host). Waits, for a bounded time, until the receiver answers /healthz,
# then signals the stack's wait condition: success, or failure with a reason that shows in the
# CloudFormation events. Exits non-zero on failure, so cfn-init fails and the host's own creation
# signal fails too.
#
# Usage: triggler-wait-healthy PORT SECONDS SIGNAL_URL
set -u
port=$1
seconds=$2
signal_url=$3
service=triggler-receiver

deadline=$(( $(date +%s) + seconds ))
while [ "$(date +%s)" -lt "$deadline" ]; do
  if curl --fail --silent --show-error --output /dev/null --max-time 2 "http://127.0.0.1:${port}/healthz"; then
    echo "the receiver answers /healthz on port ${port}"
    /opt/aws/bin/cfn-signal -e 0 --reason "the receiver answers /healthz on port ${port}" "$signal_url" || echo 'could not signal the stack (after its first deploy that is expected)'
    exit 0
  fi
  sleep 2
done

state=$(systemctl is-active "$service")
# The receiver's last words (it never logs a token), on one line.
last=$(journalctl --unit "$service" --lines 3 --output cat --no-pager 2>/dev/null | tr '\n' ' ' | cut -c1-400)
reason="the receiver did not answer /healthz on port ${port} within ${seconds} s (${service} is ${state}): ${last}"
echo "$reason" >&2
/opt/aws/bin/cfn-signal -e 1 --reason "$reason" "$signal_url" || echo 'could not signal the stack' >&2
exit 1
