#!/bin/sh
# git-triggler: the last step of cfn-init on the receiver host (installed from the CDK stack,
# lib/host-files). Waits, for a bounded time, until the receiver answers /healthz, then signals
# the wait condition of the version the host just received: success, or failure with a reason that
# shows in the CloudFormation events, so the stack update fails and rolls back. On failure the
# host first goes back to the version saved before this one (triggler-host-revision) and says in
# the reason whether that one serves. Exits non-zero on failure, so cfn-init fails (and on the
# first create, the host's own creation signal too).
#
# Usage: triggler-wait-healthy PORT SECONDS SIGNAL_URL
set -u
port=$1
seconds=$2
signal_url=$3
service=triggler-receiver
revision=/usr/local/sbin/triggler-host-revision

# Whether the receiver answers /healthz within $1 seconds.
answers_within() {
  deadline=$(( $(date +%s) + $1 ))
  while [ "$(date +%s)" -lt "$deadline" ]; do
    curl --fail --silent --output /dev/null --max-time 2 "http://127.0.0.1:${port}/healthz" && return 0
    sleep 2
  done
  return 1
}

if answers_within "$seconds"; then
  echo "the receiver answers /healthz on port ${port}"
  /opt/aws/bin/cfn-signal -e 0 --reason "the receiver answers /healthz on port ${port}" "$signal_url" || echo 'could not signal the stack'
  exit 0
fi

state=$(systemctl is-active "$service")
# The receiver's last words (it never logs a token), on one line: its last three distinct lines,
# or systemd's about it when it could not even start, without systemd's routine lines about a
# restart loop, which would otherwise crowd out the reason each time the unit restarts.
routine='(Scheduled restart job|Started |Starting |Stopped |Stopping |Deactivated successfully|Consumed |Main process exited|Failed with result)'
last=$(journalctl --unit "$service" --lines 60 --output cat --no-pager 2>/dev/null \
  | grep -Ev "^(${service}\.service: )?${routine}" | tac | awk '!seen[$0]++' | head -n 3 | tac \
  | tr '\n' ' ' | cut -c1-400)
reason="the receiver did not answer /healthz on port ${port} within ${seconds} s (${service} is ${state}): ${last}"
if [ -x "$revision" ] && "$revision" restore >&2; then
  if answers_within "$seconds"; then reason="${reason}; the host went back to the previous version, which serves"
  else reason="${reason}; the host went back to the previous version, which does not answer either"; fi
else
  reason="${reason}; no previous version to go back to"
fi
echo "$reason" >&2
/opt/aws/bin/cfn-signal -e 1 --reason "$reason" "$signal_url" || echo 'could not signal the stack' >&2
exit 1
