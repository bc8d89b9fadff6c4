/**
 * What keeps a command from the receiver's credentials besides the command runner's firewall
 * (lib/host-files/triggler-command@.service): a command runs as the receiver's user, and Linux lets
 * a user's processes read one another's memory (/proc/<pid>/mem, process_vm_readv) unless Yama
 * says otherwise. With `kernel.yama.ptrace_scope = 1` only a process's ancestors may: the receiver
 * still reads its commands' /proc entries (which needs no such access), and no command can read
 * the instance credentials the receiver holds. Amazon Linux 2023 ships with 0; its CIS and STIG
 * benchmarks ask for 1.
 */
import * as ec2 from 'aws-cdk-lib/aws-ec2';

export const PTRACE_SYSCTL_FILE = '/etc/sysctl.d/60-git-triggler-ptrace.conf';

/** cfn-init elements for the `system` config: the setting for every boot, and now. */
export function commandIsolationSetup(): ec2.InitElement[] {
  return [
    ec2.InitFile.fromString(
      PTRACE_SYSCTL_FILE,
      '# Written by the git-triggler stack: a command cannot read the memory of the receiver, which runs as the same user.\nkernel.yama.ptrace_scope = 1\n',
      { owner: 'root', group: 'root', mode: '000644' },
    ),
    // A kernel without Yama has nothing to set (and no such file); one with it must take the setting.
    ec2.InitCommand.shellCommand(`[ ! -e /proc/sys/kernel/yama/ptrace_scope ] || sysctl -q -p ${PTRACE_SYSCTL_FILE}`, {
      key: '30-ptrace-scope',
    }),
  ];
}
