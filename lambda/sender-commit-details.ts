/**
 * Optional enrichment of a delivery: the pushed commit's message and author from CodeCommit
 * GetCommit. Best effort by design: a slow or failed lookup yields nothing and never delays a
 * delivery by more than its short timeout.
 */
import type { CodeCommitClient } from '@aws-sdk/client-codecommit';
import type { Logger } from 'pino';

export interface CommitDetails {
  message?: string;
  author?: { name?: string; email?: string; date?: string };
}

export interface CommitDetailsReader {
  /** Resolves undefined when the details are not available; never rejects. */
  details(repository: string, commit: string): Promise<CommitDetails | undefined>;
}

export const COMMIT_DETAILS_TIMEOUT_MS = 1500;
const MAX_MESSAGE_LENGTH = 4096;

type CodeCommitModule = typeof import('@aws-sdk/client-codecommit');

export class CodeCommitDetailsReader implements CommitDetailsReader {
  private client: CodeCommitClient | undefined;
  private module: CodeCommitModule | undefined;

  constructor(
    private readonly logger: Logger,
    private readonly timeoutMs: number = COMMIT_DETAILS_TIMEOUT_MS,
  ) {}

  async details(repository: string, commit: string): Promise<CommitDetails | undefined> {
    let timer: NodeJS.Timeout | undefined;
    // The abort signal ends the HTTP request; the race also bounds credential and endpoint
    // resolution, which the signal does not cover.
    const timedOut = new Promise<'timed out'>((resolve) => {
      timer = setTimeout(() => resolve('timed out'), this.timeoutMs);
    });
    try {
      const result = await Promise.race([this.lookup(repository, commit), timedOut]);
      if (result === 'timed out') {
        this.logger.warn({ repository, commit, timeoutMs: this.timeoutMs }, 'commit details timed out; delivering without them');
        return undefined;
      }
      return result;
    } catch (error) {
      const { name, message } = error as { name?: unknown; message?: unknown };
      const reason = `${String(name ?? 'Error')}: ${String(message ?? '')}`.slice(0, 300);
      this.logger.warn({ repository, commit, error: reason }, 'commit details unavailable; delivering without them');
      return undefined;
    } finally {
      clearTimeout(timer);
    }
  }

  private async lookup(repository: string, commit: string): Promise<CommitDetails | undefined> {
    const { CodeCommitClient, GetCommitCommand } = this.codeCommit();
    this.client ??= new CodeCommitClient({ maxAttempts: 1 });
    const output = await this.client.send(new GetCommitCommand({ repositoryName: repository, commitId: commit }), {
      abortSignal: AbortSignal.timeout(this.timeoutMs),
    });
    const found = output.commit;
    if (!found) return undefined;
    const author = found.author;
    return {
      ...(found.message !== undefined ? { message: found.message.slice(0, MAX_MESSAGE_LENGTH) } : {}),
      ...(author ? { author: { name: author.name, email: author.email, date: author.date } } : {}),
    };
  }

  /**
   * Loaded on first use: the CodeCommit client is only needed when enrichment is on, and loading it
   * at module init would add to every cold start.
   */
  private codeCommit(): CodeCommitModule {
    this.module ??= require('@aws-sdk/client-codecommit') as CodeCommitModule;
    return this.module;
  }
}
