/** The error catalogue: what a client is answered for each code, and the one mapping from anything thrown. */
import {
  answerFor,
  badRequest,
  type PreparedAnswer,
  preparedAnswerFor,
  preparedAnswerOf,
  ReceiverError,
  Rejection,
  type Reply,
  unauthorized,
} from '../../receiver/errors';
import { BodyBudget, BodyBudgetExhausted, BodyTooLarge } from '../../receiver/http/http-io';
import { JournalWriteError } from '../../receiver/runs/run-store';
import { RunnerClosedError, RunRequestRefused } from '../../receiver/runs/runner';

describe('answerFor', () => {
  it.each([
    [
      'a journal that cannot be written',
      new JournalWriteError(new Error('ENOSPC')),
      503,
      'the receiver cannot take deliveries right now; try again',
      '5',
    ],
    ['a runner that is stopping', new RunnerClosedError(), 503, 'the receiver cannot take deliveries right now; try again', '5'],
    ['a token source that does not answer', new ReceiverError('tokens', 'SSM: timeout'), 503, 'tokens are unavailable; try again', '5'],
    ['a full body budget', new BodyBudgetExhausted(new BodyBudget(10)), 503, 'the receiver is busy; try again', '1'],
    [
      'spent seed work, with its own wait',
      new ReceiverError('seed-work', 'spent', { retryAfterSeconds: 3 }),
      429,
      'too many seed signatures to check for this trigger; try again',
      '3',
    ],
  ])('answers %s with its status, the wording for its code and Retry-After', (_name, error, status, message, retryAfter) => {
    const { reply } = answerFor(error);
    expect(reply).toEqual({ status, body: { error: message }, headers: { 'retry-after': retryAfter } });
  });

  it('tells the client the message of a code that has no wording of its own, and never the log message of one that has', () => {
    expect(answerFor(new RunRequestRefused('no run r1', 'not-found')).reply).toEqual({ status: 404, body: { error: 'no run r1' } });
    expect(answerFor(new RunRequestRefused('r1 is an admin run', 'conflict')).reply).toEqual({
      status: 409,
      body: { error: 'r1 is an admin run' },
    });
    expect(answerFor(new BodyTooLarge(1024)).reply).toEqual({
      status: 413,
      body: { error: 'body is larger than 1024 bytes' },
      headers: { connection: 'close' },
    });
    const journal = answerFor(new JournalWriteError(new Error('EIO at /var/lib/triggler/journal')));
    expect(JSON.stringify(journal.reply)).not.toContain('EIO');
    expect(journal.reason).toContain('EIO');
  });

  it('answers a rejection from its code, counting it by its reason', () => {
    const bad = answerFor(unauthorized('bad webhook-signature', { repository: 'svc' }));
    expect(bad).toMatchObject({ code: 'unauthorized', reason: 'bad webhook-signature', fields: { repository: 'svc' }, level: 'warn' });
    expect(bad.reply).toEqual({ status: 401, body: { error: 'unauthorized: unknown trigger or bad signature' } });
    expect(answerFor(badRequest('webhook-id is missing')).reply).toEqual({ status: 400, body: { error: 'webhook-id is missing' } });
    expect(answerFor(new Rejection('no-such-webhook', 'no such webhook: /hooks/x', 'no such provider webhook')).reply.status).toBe(404);
  });

  it('answers anything else 500 with no detail', () => {
    expect(answerFor(new Error('secret detail'))).toMatchObject({
      code: 'internal',
      level: 'error',
      reply: { status: 500, body: { error: 'internal error' } },
    });
    expect(answerFor('a string')).toMatchObject({ code: 'internal' });
  });
});

/** What a prepared answer puts on the wire, as a Reply reads: status, headers by name, body. */
function asReply(answer: PreparedAnswer, closing = false): Reply {
  const list = closing ? answer.closingHeaders : answer.headers;
  const headers: Record<string, string> = {};
  for (let i = 0; i < list.length; i += 2) headers[list[i]!] = list[i + 1]!;
  return { status: answer.status, headers, body: JSON.parse(answer.body.toString('utf8')) as Record<string, unknown> };
}

function withJsonHeaders(reply: Reply): Reply {
  const body = JSON.stringify(reply.body);
  return {
    ...reply,
    headers: { 'content-type': 'application/json; charset=utf-8', 'content-length': String(Buffer.byteLength(body)), ...reply.headers },
  };
}

describe('answers serialized once', () => {
  it.each([
    ['a full body budget', new BodyBudgetExhausted(new BodyBudget(10))],
    ['a journal that cannot be written', new JournalWriteError(new Error('ENOSPC'))],
    ['spent seed work, with its own wait', new ReceiverError('seed-work', 'spent', { retryAfterSeconds: 3 })],
    ['spent seed work, with the catalogue wait', new ReceiverError('seed-work', 'spent', { retryAfterSeconds: 1 })],
    ['a body over the limit', new BodyTooLarge(1024)],
    ['a fault of ours', new Error('secret detail')],
  ])('say for %s what answerFor says', (_name, error) => {
    const answer = answerFor(error);
    expect(asReply(preparedAnswerOf(answer))).toEqual(withJsonHeaders(answer.reply));
    expect(preparedAnswerOf(answer).level).toBe(answer.level);
  });

  it.each([
    ['a bad signature', unauthorized('bad webhook-signature', () => ({ repository: 'svc' }))],
    ['a malformed header', badRequest('webhook-id is missing', { header: 'webhook-id' })],
    ['an unknown provider', new Rejection('no-such-webhook', 'no such webhook: /hooks/x', 'no such provider webhook')],
  ])('say for %s what answerFor says, and add connection: close for a request whose body is not read', (_name, rejection) => {
    const { reply } = answerFor(rejection);
    expect(asReply(preparedAnswerFor(rejection))).toEqual(withJsonHeaders(reply));
    expect(asReply(preparedAnswerFor(rejection), true)).toEqual(
      withJsonHeaders({ ...reply, headers: { ...reply.headers, connection: 'close' } }),
    );
    // The same bytes for the next one alike.
    expect(preparedAnswerFor(rejection)).toBe(preparedAnswerFor(rejection));
  });

  it("builds a rejection's log fields only when asked", () => {
    const build = jest.fn(() => ({ repository: 'svc' }));
    const rejection = unauthorized('bad webhook-signature', build);
    preparedAnswerFor(rejection);
    expect(build).not.toHaveBeenCalled();
    expect(answerFor(rejection).fields).toEqual({ repository: 'svc' });
    expect(build).toHaveBeenCalledTimes(1);
  });
});

describe('ReceiverError across the IPC channel', () => {
  it('arrives with its code, message and own Retry-After, and is answered alike', () => {
    const sent = new ReceiverError('seed-work', 'spent for svc@main', { retryAfterSeconds: 7 });
    const received = ReceiverError.fromJSON(JSON.parse(JSON.stringify(sent.toJSON())) as ReturnType<ReceiverError['toJSON']>);
    expect(received).toBeInstanceOf(ReceiverError);
    expect(received).toMatchObject({ code: 'seed-work', message: 'spent for svc@main', retryAfterSeconds: 7 });
    expect(answerFor(received).reply).toEqual(answerFor(sent).reply);
  });
});
