/**
 * How the constructs check their props: module-level problem functions return every problem they
 * find, each naming its prop (the way lib/stack-config/codecommit-rules.ts returns one per value), and
 * `throwPropProblems` throws them all in one error. A construct with three bad props says so once,
 * not one prop per synth.
 */
import type { IConstruct } from 'constructs';

/** One bad prop: the prop's path in the props object (`repositories[1].branches[0]`) and what is wrong. */
export interface PropProblem {
  readonly prop: string;
  readonly problem: string;
}

/** The problem as a list: empty when `problem` is undefined (a rule found nothing). */
export function propProblem(prop: string, problem: string | undefined): PropProblem[] {
  return problem === undefined ? [] : [{ prop, problem }];
}

/** Every bad prop of one construct; the message has one line per prop, each naming the construct path. */
export class ConstructPropsError extends Error {
  constructor(
    readonly constructPath: string,
    readonly problems: readonly PropProblem[],
  ) {
    super(problems.map(({ prop, problem }) => `${constructPath}: ${prop}: ${problem}`).join('\n'));
    this.name = 'ConstructPropsError';
  }
}

/** Throws every problem at once (a ConstructPropsError), or returns when there is none. */
export function throwPropProblems(scope: IConstruct, problems: readonly PropProblem[]): void {
  if (problems.length > 0) throw new ConstructPropsError(scope.node.path, problems);
}
