// Runs statemachine/evidence.asl.json (issue 16: the instance settings an isolation queued) in
// aws-local-stepfunctions with stubbed tasks: the job reaches "Preserve evidence" as the settings stage, success is
// silent, a failure is notified once and fails the execution at "Notify failure", and a redrive resumes at
// "Preserve evidence".
//
// Run: node --test statemachine/   (needs `npm ci` first)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadDefinition, taskNames, stubs, run, stateInput, failure } from './harness.mjs';

const definition = loadDefinition('evidence.asl.json');
const TASKS = taskNames(definition);
const record = { instanceId: 'i-0a1b2c3d4e5f60718', reason: 'tag Isolate=true', volumes: [] };
const job = { instanceId: record.instanceId, isolationExecution: 'exec-1', record };
const settings = { changes: [{ step: 'Preserve evidence', resource: record.instanceId, action: 'ModifyInstanceAttribute' }] };
const setup = (fail = {}) => stubs(TASKS, { 'Preserve evidence': settings }, 'EvidenceFailed', fail);
const runEvidence = (handlers, opts = {}) => run(definition, handlers, { input: job, machine: 'ec2-isolation-evidence', ...opts });

test('the job is applied as the settings stage; success notifies nothing', async () => {
  const { calls, handlers } = setup();
  const res = await runEvidence(handlers);
  assert.equal(res.error, undefined, `${res.failed?.Error} ${res.failed?.Cause}`);
  assert.deepEqual(calls.inputs['Preserve evidence'], [
    { instanceId: record.instanceId, executionName: 'exec-1', isolationExecution: 'exec-1', record, stage: 'settings', attempt: 0, redriveCount: 0 },
  ]);
  assert.equal(calls.published.length, 0);
  assert.deepEqual(res.entered, ['Preserve evidence', 'Evidence settings applied']);
});

test('a failure is notified once (workflow evidence, the instance, the error) and fails the execution; a redrive resumes at Preserve evidence', async () => {
  const { calls, handlers } = setup({ 'Preserve evidence': (n) => (n === 1 ? 'AWSError' : undefined) });
  const first = await runEvidence(handlers);
  assert.equal(first.failed.Error, 'EvidenceFailed');
  assert.equal(first.lastFailedState.state.name, 'Notify failure');
  assert.equal(calls.published.length, 1);
  const n = calls.published[0];
  assert.equal(n.workflow, 'evidence');
  assert.equal(n.instanceId, record.instanceId);
  assert.deepEqual(n.failures, [failure('Preserve evidence', 'AWSError')]);

  const input = stateInput(first.events, 'Notify failure');
  const res = await runEvidence(handlers, { input, startAt: 'Notify failure', redriveCount: 1 });
  assert.equal(res.error, undefined, `redrive failed: ${res.failed?.Error} ${res.failed?.Cause}`);
  assert.deepEqual(res.entered, ['Notify failure', 'Resume at failed state', 'Preserve evidence', 'Evidence settings applied']);
  assert.equal(calls.inputs['Preserve evidence'].length, 2);
  assert.equal(calls.published.length, 1, 'nothing published on resuming');
});
