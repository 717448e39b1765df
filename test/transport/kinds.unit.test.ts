import assert from 'node:assert/strict'
import { test } from 'node:test'
import { parseFlags } from '../../lib/core/flags.ts'
import { TARGET_KINDS, kindNamed, kindNamedBy, kindOf, runnerFlags, targetsFromFlags } from '../../lib/transport/kinds.ts'
import { gpuList } from '../../lib/eval/options.ts'

// The kinds of target, each registered once: what the rest of the code asks of them, without a
// connection.

const flagsOf = (argv: string[]) =>
  parseFlags(
    argv,
    TARGET_KINDS.flatMap((kind) => kind.flags),
  )

test('each kind once, under its transport name, with its own flags', () => {
  assert.deepEqual(
    TARGET_KINDS.map((kind) => kind.kind),
    ['ssh', 'kubectl'],
  )
  const names = TARGET_KINDS.flatMap((kind) => kind.flags.map((f) => f.name))
  assert.equal(new Set(names).size, names.length, 'no flag belongs to two kinds')
  for (const kind of TARGET_KINDS) assert.ok(kind.flags.some((f) => f.name === kind.namedBy && `--${f.name}` !== kind.dirFlag))
  assert.throws(() => kindNamed('k8s'), /No kind of target is registered as "k8s"/)
})

test('a command line names one kind by its flag; mixed, missing and foreign flags are refused', () => {
  assert.equal(kindNamedBy(['--host', 'h', '--remote-dir', '/srv/g']).kind, 'ssh')
  assert.equal(kindNamedBy(['--pod=p', '--context', 'c', '--namespace', 'n']).kind, 'kubectl')
  assert.throws(
    () => kindNamedBy(['--host', 'h', '--pod', 'p']),
    /^UsageWithHelpError: Give either --host \(an SSH host\) or --pod \(a pod\), not both\.$/,
  )
  assert.throws(
    () => kindNamedBy([]),
    /^UsageWithHelpError: No target: give --host HOST --remote-dir DIR for an SSH host, or --context C --namespace NS --pod POD for a pod\.$/,
  )
  assert.throws(
    () => kindNamedBy(['--pod', 'p', '--remote-dir', '/x']),
    /^UsageError: --remote-dir does not apply to a pod; a pod takes --workdir\.$/,
  )
  assert.throws(() => kindNamedBy(['--host', 'h', '--container', 'c']), /^UsageError: --container does not apply to an SSH host\.$/)
})

test('each kind reads its target from the flags, names it, and says how to copy a directory onto it', () => {
  const ssh = kindNamed('ssh')
  const host = ssh.fromFlags(flagsOf(['--host', 'me@gpu', '--remote-dir', '/srv/g/', '--ssh-option', 'Port=2222', '--ssh-config', 'cfg']))
  assert.equal(kindOf(host), ssh)
  assert.equal(ssh.name(host), 'ssh me@gpu')
  assert.deepEqual([host.remoteDir, host.remoteDirFlag], ['/srv/g', '--remote-dir'])
  assert.equal(ssh.copyCommand(host, '/srv/m'), `rsync -a -e 'ssh -F ${process.cwd()}/cfg -o Port=2222' "$d/" me@gpu:/srv/m/`)

  const pods = kindNamed('kubectl')
  const pod = pods.fromFlags(flagsOf(['--context', 'c1', '--namespace', 'ml', '--pod', 'eval-0', '--container', 'gpu']))
  assert.equal(pods.name(pod), 'pod ml/eval-0 (container gpu)')
  assert.deepEqual([pod.remoteDir, pod.remoteDirFlag], ['/workdir/guardrails', '--workdir'])
  assert.equal(
    pods.copyCommand(pod, '/data/m'),
    `tar -C "$d" -c -f - . | kubectl --context c1 --namespace ml exec -i eval-0 --container gpu -- sh -c 'mkdir -p "$0" && tar -x -f - -C "$0"' /data/m`,
  )
  assert.throws(
    () => pods.fromFlags(flagsOf(['--context', 'c1', '--namespace', 'ML', '--pod', 'p'])),
    /^UsageError: --namespace "ML" is not a valid namespace name/,
  )
  assert.throws(() => ssh.fromFlags(flagsOf(['--host', 'h'])), /^UsageError: --remote-dir is required/)
})

test("the runners' targets: one per --host or --pod, each with its own or the shared --remote-dir; miscounts refused", () => {
  const ssh = kindNamed('ssh')
  const read = (argv: string[]) => targetsFromFlags(ssh, parseFlags(argv, runnerFlags(ssh))).map((t) => [ssh.name(t), t.remoteDir])
  assert.deepEqual(read(['--host', 'a', '--remote-dir', '/srv/g']), [['ssh a', '/srv/g']])
  assert.deepEqual(read(['--host', 'a', '--host', 'b', '--remote-dir', '/srv/g']), [
    ['ssh a', '/srv/g'],
    ['ssh b', '/srv/g'],
  ])
  assert.deepEqual(read(['--host', 'a', '--remote-dir', '/srv/a', '--host', 'b', '--remote-dir', '/srv/b']), [
    ['ssh a', '/srv/a'],
    ['ssh b', '/srv/b'],
  ])
  assert.throws(
    () => read(['--host', 'a', '--host', 'b', '--host', 'c', '--remote-dir', '/x/a', '--remote-dir', '/x/b']),
    /was given 2 times for 3 --host/,
  )
  assert.throws(() => read(['--host', 'a', '--remote-dir', '/x/a', '--remote-dir', '/x/b']), /was given 2 times for one --host/)
  assert.throws(() => read(['--host', 'a', '--host', 'a', '--remote-dir', '/srv/g']), /ssh a is named twice with --remote-dir \/srv\/g/)
  // The same host with two directories is two targets (two checkouts, each its own lock).
  assert.equal(read(['--host', 'a', '--host', 'a', '--remote-dir', '/srv/a', '--remote-dir', '/srv/b']).length, 2)
  const k8s = kindNamed('kubectl')
  const pods = (argv: string[]) => targetsFromFlags(k8s, parseFlags(['--context', 'c', '--namespace', 'ml', ...argv], runnerFlags(k8s)))
  assert.deepEqual(
    pods(['--pod', 'eval-0', '--pod', 'eval-1']).map((t) => k8s.name(t)),
    ['pod ml/eval-0', 'pod ml/eval-1'],
  )
  assert.deepEqual(
    pods(['--selector', 'app=eval']).map((t) => k8s.name(t)),
    ['the pods of ml with labels app=eval'],
  )
  assert.throws(() => pods(['--pod', 'eval-0', '--selector', 'app=eval']), /Give --pod POD \(repeatable\) or --selector LABELS, not both/)
  assert.throws(() => pods(['--selector', 'app=$(id)']), /--selector "app=\$\(id\)" is not a label selector/)
})

test('--gpus: indices and ranges, each once, in the order given', () => {
  assert.equal(gpuList('0'), '0')
  assert.equal(gpuList('0-3,6'), '0,1,2,3,6')
  assert.equal(gpuList('2,0-2'), '2,0,1')
  for (const bad of ['3-1', '0;id', '-1', '0,', '1-2-3', '0x1']) assert.throws(() => gpuList(bad), /is not a list of GPU indices/, bad)
})
