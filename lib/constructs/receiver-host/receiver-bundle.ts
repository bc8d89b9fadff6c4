import * as fs from 'node:fs';
import * as path from 'node:path';
import { AssetHashType, DockerImage } from 'aws-cdk-lib';
import { Asset } from 'aws-cdk-lib/aws-s3-assets';
import { Construct } from 'constructs';
import { type BuildResult, buildSync } from 'esbuild';
import { propProblem, throwPropProblems, type PropProblem } from '../../construct-props';
import {
  asciiComments,
  BUNDLE_LOADER_FILE_NAME,
  CLI_BUNDLE_FILE,
  COMMAND_RUNNER_BUNDLE_FILE,
  deferredPackageBuilds,
  hostFilePath,
  RECEIVER_BUNDLE_FILE,
  RECEIVER_PROGRAM_FILE,
  receiverBuildOptions,
  withDeferredPackages,
} from '../../host-files/host-files';

export interface ReceiverBundleProps {
  /** The receiver's entry (`receiver/daemon.ts`). */
  readonly entry: string;
  /** The CLI's entry (`bin/triggler-cli.ts`), bundled beside it as `triggler.js`. */
  readonly cliEntry: string;
  /** The command runner's entry (`receiver/command-runner-main.ts`), bundled beside it as `command-runner.js`. */
  readonly commandRunnerEntry: string;
  /**
   * The Node.js version the host runs, as esbuild's target (`node<major>`).
   * @default 'node22'
   */
  readonly target?: string;
}

/** Every bad prop of a ReceiverBundle. */
export function receiverBundlePropProblems(props: ReceiverBundleProps): PropProblem[] {
  const target = props.target ?? 'node22';
  return [
    ...propProblem('entry', fs.existsSync(props.entry) ? undefined : `${props.entry} does not exist`),
    ...propProblem('cliEntry', fs.existsSync(props.cliEntry) ? undefined : `${props.cliEntry} does not exist`),
    ...propProblem(
      'commandRunnerEntry',
      fs.existsSync(props.commandRunnerEntry) ? undefined : `${props.commandRunnerEntry} does not exist`,
    ),
    ...propProblem('target', /^node\d+$/.test(target) ? undefined : `must look like "node22", got ${target}`),
  ];
}

/**
 * The receiver as the packed CLI's `serve` is built: its bundle (`receiver-bundle.js`,
 * dependencies included but for the packages it loads only when needed, each a file of its own in
 * `deferred/`), run by `receiver.js`, the loader that reads it in pieces; beside it the command
 * runner (`command-runner.js`, which the runner's socket starts for each command) and the CLI
 * (`triggler.js`, for `triggler runs`, `releases` and `rollback` on the host). Bundled by local
 * esbuild at synth into an S3 asset that cfn-init unpacks on the host. The asset's hash is the
 * bundles': a change anywhere the receiver or the CLI imports is a new bundle, and nothing else is.
 */
export class ReceiverBundle extends Construct {
  /** The receiver the unit starts (the loader of RECEIVER_PROGRAM_FILE). */
  static readonly FILE_NAME = RECEIVER_BUNDLE_FILE;
  /** The CLI (`triggler runs`, `releases`, `rollback`, ...) for whoever is on the host. */
  static readonly CLI_FILE_NAME = CLI_BUNDLE_FILE;
  /** What triggler-command@.service runs: one command, for the receiver, per connection. */
  static readonly COMMAND_RUNNER_FILE_NAME = COMMAND_RUNNER_BUNDLE_FILE;

  public readonly asset: Asset;

  constructor(scope: Construct, id: string, props: ReceiverBundleProps) {
    super(scope, id);
    throwPropProblems(this, receiverBundlePropProblems(props));
    const target = props.target ?? 'node22';

    this.asset = new Asset(this, 'Asset', {
      path: path.dirname(props.entry),
      assetHashType: AssetHashType.OUTPUT,
      bundling: {
        // Required by the type, never pulled: local bundling below always succeeds or throws.
        image: DockerImage.fromRegistry('public.ecr.aws/docker/library/node:22'),
        local: {
          tryBundle(outputDir: string): boolean {
            const built = (entry: string, result: BuildResult) => {
              if (result.errors.length > 0) throw new Error(`bundling ${entry} failed: ${result.errors.map((e) => e.text).join('; ')}`);
            };
            for (const [entry, file] of [
              [props.entry, RECEIVER_PROGRAM_FILE],
              [props.cliEntry, ReceiverBundle.CLI_FILE_NAME],
              [props.commandRunnerEntry, ReceiverBundle.COMMAND_RUNNER_FILE_NAME],
            ] as const) {
              built(entry, buildSync(withDeferredPackages(receiverBuildOptions(entry, path.join(outputDir, file), target))));
              asciiComments(path.join(outputDir, file));
            }
            // The packages' sources are found from the receiver's folder, as the bundles' were.
            for (const options of deferredPackageBuilds(outputDir, path.dirname(props.entry), target))
              built('a deferred package', buildSync(options));
            fs.copyFileSync(hostFilePath(BUNDLE_LOADER_FILE_NAME), path.join(outputDir, ReceiverBundle.FILE_NAME));
            return true;
          },
        },
      },
    });
  }
}
