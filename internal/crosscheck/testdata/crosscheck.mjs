// Runs the isolation state machine in aws-local-stepfunctions (an ASL engine independent of internal/asl), each
// Task state calling our real Go handler through the test's loopback bridge, and prints what the execution did
// as JSON on stdout. Driven by internal/crosscheck (crosscheck_test.go); the job arrives as JSON on stdin:
//
//   {definition: <ASL object, ${…} already substituted>, bridge: "http://127.0.0.1:PORT",
//    functions: {<function ARN, or the sqs:sendMessage resource>: <function name>}, input: <execution input>,
//    context: {Execution: {Id, Name}, StateMachine: {Name}}, redrive: <bool>}
//
// Output: {runs: [{status, error, cause, output, visits: [{state, parallel, branch, input}], tasks, retries}]},
// tasks listing, per Task state, the payload of each invocation (retries included); one run,
// or two when redrive is set and the first run failed (see emulateRedrive).
import { StateMachine, ExecutionError, ExecutionTimeoutError, ExecutionAbortedError } from 'aws-local-stepfunctions';

const REDRIVE_STATE = 'crosscheck: redrive';

async function readStdin() {
  const chunks = [];
  for await (const c of process.stdin) chunks.push(c);
  return JSON.parse(Buffer.concat(chunks).toString('utf8'));
}

// Where each state lives: top level, or branch i of a Parallel. State names are unique across a machine (ASL
// requires it), so a nested event's state name tells its branch (the library's events do not carry the branch).
function locate(states, where, out) {
  for (const [name, st] of Object.entries(states)) {
    out.set(name, { ...where, type: st.Type, resource: st.Resource, hasRetry: Array.isArray(st.Retry) });
    if (st.Type === 'Parallel') {
      st.Branches.forEach((b, i) => locate(b.States, { parallel: name, branch: i }, out));
    }
    if (st.Type === 'Map') throw new Error(`state ${name}: Map is not handled by this script`);
  }
  return out;
}

// invoke calls a function through the bridge as Step Functions calls Lambda: the effective input as payload. A
// function error (X-Amz-Function-Error, as Lambda's Invoke API marks it) is rethrown as an Error whose name is
// the errorType (what ASL's ErrorEquals matches) and whose message is the raw error payload, which is what Step
// Functions records as the Cause (aws-local-stepfunctions puts error.message in a Catch's Cause).
async function invoke(bridge, fn, input) {
  const res = await fetch(`${bridge}/invoke/${encodeURIComponent(fn)}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(input),
  });
  const text = await res.text();
  if (res.status !== 200) {
    // The bridge itself failed (not a function error): make it fail the test, not an ASL Catch.
    throw Object.assign(new Error(`bridge: ${fn}: HTTP ${res.status}: ${text}`), { name: 'CrosscheckBridgeError' });
  }
  if (res.headers.get('x-amz-function-error')) {
    const payload = JSON.parse(text);
    const err = new Error(text);
    err.name = payload.errorType;
    throw err;
  }
  return JSON.parse(text);
}

async function execute(definition, loc, job, input, context, skip) {
  const handlers = {};
  const retryIntervalOverrides = {};
  const tasks = {};
  for (const [name, l] of loc) {
    if (l.type === 'Task') {
      const fn = job.functions[l.resource];
      if (!fn) throw new Error(`state ${name}: no function for resource ${l.resource}`);
      // aws-local-stepfunctions has no SQS integration: the sqs:sendMessage Task is overridden like the others,
      // its MessageBody object sent as its JSON text as Step Functions does, and the bridge sends it to the
      // simulator's queue with the SDK, answering SendMessage's result.
      const sqs = /^arn:[^:]+:states:::sqs:sendMessage$/.test(l.resource);
      handlers[name] = (payload) => {
        if (sqs && typeof payload.MessageBody !== 'string') payload = { ...payload, MessageBody: JSON.stringify(payload.MessageBody) };
        (tasks[name] ??= []).push(payload);
        return invoke(job.bridge, fn, payload);
      };
    }
    // No waiting between retries: the test's scenarios have no delays to wait out (the Go engine runs with
    // zero-length retry waits too).
    if (l.hasRetry) retryIntervalOverrides[name] = 0;
  }
  const machine = new StateMachine(definition);
  const exec = machine.run(input, { overrides: { taskResourceLocalHandlers: handlers, retryIntervalOverrides }, context });
  const events = [];
  const drained = (async () => {
    for await (const ev of exec.eventLogs) events.push(ev);
  })();
  const run = { status: '', visits: [], tasks, retries: {} };
  try {
    run.output = await exec.result;
    run.status = 'SUCCEEDED';
  } catch (e) {
    if (e instanceof ExecutionTimeoutError) run.status = 'TIMED_OUT';
    else if (e instanceof ExecutionAbortedError) run.status = 'ABORTED';
    else if (e instanceof ExecutionError) run.status = 'FAILED';
    else throw e;
  }
  await drained;

  let branchesStarted = 0;
  let branchesEnded = 0;
  for (const ev of events) {
    switch (ev.type) {
      case 'StateEntered': {
        if (ev.state.name === skip) break;
        const l = loc.get(ev.state.name);
        const v = { state: ev.state.name, input: ev.state.input };
        if (l.parallel) Object.assign(v, { parallel: l.parallel, branch: l.branch });
        run.visits.push(v);
        break;
      }
      case 'StateRetried':
        run.retries[ev.state.name] = (run.retries[ev.state.name] ?? 0) + 1;
        break;
      case 'ParallelBranchStarted':
        branchesStarted++;
        break;
      case 'ParallelBranchSucceeded':
      case 'ParallelBranchFailed':
        branchesEnded++;
        break;
      case 'ExecutionFailed':
        run.error = ev.Error;
        run.cause = typeof ev.Cause === 'string' ? ev.Cause : JSON.stringify(ev.Cause);
        break;
    }
  }
  // Branch events reach the root log asynchronously and the library drops any that arrive after the execution
  // ended: refuse an incomplete log rather than compare a partial path.
  if (branchesStarted !== branchesEnded) {
    throw new Error(`event log incomplete: ${branchesStarted} branches started, ${branchesEnded} ended`);
  }
  return run;
}

// emulateRedrive re-creates RedriveExecution, which aws-local-stepfunctions does not have: Step Functions
// restarts a failed execution at the state that failed, with the input that state had, the same
// $$.Execution.Input, and $$.Execution.RedriveCount one higher. The definition gets a Pass state that yields
// that input and goes to the failed state; it is left out of the path. Faithful only for a failed state at the
// top level: for a Parallel, AWS re-runs only the failed branches, which this cannot express.
function emulateRedrive(definition, loc, first) {
  const last = first.visits.filter((v) => !v.parallel).at(-1);
  if (!last) throw new Error('redrive: the first run entered no state');
  if (loc.get(last.state).type === 'Parallel') {
    throw new Error(`redrive: cannot emulate a redrive of Parallel state ${last.state}`);
  }
  const def = structuredClone(definition);
  def.States[REDRIVE_STATE] = { Type: 'Pass', Result: last.input, Next: last.state };
  def.StartAt = REDRIVE_STATE;
  return def;
}

const job = await readStdin();
const loc = locate(job.definition.States, {}, new Map());
const ctx0 = { ...job.context, State: { RetryCount: 0 }, Execution: { ...job.context.Execution, RedriveCount: 0 } };
const runs = [await execute(job.definition, loc, job, job.input, ctx0)];
if (job.redrive && runs[0].status !== 'SUCCEEDED') {
  const def = emulateRedrive(job.definition, loc, runs[0]);
  const loc1 = locate(def.States, {}, new Map());
  const ctx1 = { ...job.context, State: { RetryCount: 0 }, Execution: { ...job.context.Execution, RedriveCount: 1 } };
  runs.push(await execute(def, loc1, job, job.input, ctx1, REDRIVE_STATE));
}
process.stdout.write(JSON.stringify({ runs }));
