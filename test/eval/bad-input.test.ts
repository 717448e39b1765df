import assert from 'node:assert/strict'
import { before, describe, test } from 'node:test'
import { $ } from 'zx'
import { copyExample, remoteDir, runScript, sshFlags } from '../support/harness.ts'

// Bad input to ssh_eval.ts: exit 2, a message naming the flag, and the remote directory exactly as
// it was (contents, sizes, times, modes), checked before and after every case.

describe('ssh_eval.ts refuses bad input before touching the remote', () => {
  let project: string
  let dir: string
  const snapshot = async () => (await $`cd ${dir} && find . -printf '%P %s %T@ %m %U\\n' | sort`.quiet()).stdout

  before(async () => {
    project = await copyExample()
    dir = remoteDir('untouched')
    // A remote dir with a previous push in it, as it would be after an earlier run.
    const pushed = await runScript('remote_eval/sync_code.ts', [...sshFlags(), '--remote-dir', dir, '--project-dir', project])
    assert.equal(pushed.code, 0, pushed.stderr)
  })

  const cases: Array<[string, string[], RegExp]> = [
    ['missing --host', ['--host'], /--host needs a value/],
    ['empty --host', ['--host', ''], /--host needs a value/],
    ['metacharacters in --host', ['--host', 'gr-test;touch /tmp/x'], /--host "gr-test;touch \/tmp\/x" is not a host name/],
    ['missing --remote-dir', ['--remote-dir'], /--remote-dir needs a value/],
    ['relative --remote-dir', ['--remote-dir', 'eval'], /--remote-dir "eval" is a relative path/],
    ['/ as --remote-dir', ['--remote-dir', '/'], /--remote-dir \/ is a system directory/],
    ['~ in --remote-dir', ['--remote-dir', '~/eval'], /--remote-dir "~\/eval" starts with ~/],
    ['metacharacters in --remote-dir', ['--remote-dir', '/tmp/a$(id)'], /--remote-dir .* contains characters that are not allowed/],
    ['bad --runtime', ['--runtime', 'gpu'], /--runtime "gpu" is not one of cpu, cuda/],
    ['empty --runtime', ['--runtime', ''], /--runtime needs a value/],
    ['bad --remote-has-internet', ['--remote-has-internet', 'maybe'], /--remote-has-internet "maybe" is not one of yes, no/],
    ['unknown --suite', ['--suite', 'nope'], /Suite "nope" is not in .*Pass one of them with --suite/],
    ['metacharacters in --suite', ['--suite', 'a;b'], /--suite "a;b" is not a name/],
    ['unknown --split', ['--split', 'huge'], /Split\(s\) huge not declared .*pass one with --split/],
    ['metacharacters in --split', ['--split', '$(reboot)'], /--split "\$\(reboot\)" is not a name/],
    ['relative --models-dir', ['--models-dir', 'models'], /--models-dir "models" is a relative path/],
    ['metacharacters in --models-dir', ['--models-dir', '/data/m`id`'], /--models-dir .* contains characters that are not allowed/],
    ['relative --datasets-dir', ['--datasets-dir', './ds'], /--datasets-dir "\.\/ds" is a relative path/],
    ['/ as --datasets-dir', ['--datasets-dir', '/'], /--datasets-dir \/ is a system directory/],
    ['bad --eval-module', ['--eval-module', 'app.eval;rm'], /--eval-module "app\.eval;rm" is not a Python module name/],
    ['a line break in --eval-arg', ['--eval-arg', 'a\nb'], /--eval-arg "a\\nb" holds a line break/],
    ['bad --gpus', ['--gpus', '0;id'], /--gpus "0;id" is not a list of GPU indices/],
    ['--shard on the cpu runtime', ['--shard', '--gpus', '0,1'], /--shard gives each shard a GPU of its own: add --runtime cuda/],
    [
      '--shard on one GPU',
      ['--shard', '--gpus', '0,00'],
      /--shard splits the suite across the GPUs of --gpus on the targets named: give two or more in all/,
    ],
    ['--shard without --gpus', ['--shard'], /--shard gives each shard a GPU of --gpus: add --gpus/],
    ['a --gpus range backwards', ['--gpus', '3-1'], /--gpus "3-1" is not a list of GPU indices, e\.g\. 0, 0,1 or 0-7/],
    [
      'two hosts without --shard',
      ['--host', 'gr-test', '--host', 'gpu-b'],
      /2 targets \(--host given 2 times\) share one suite with --shard \(which follows its shards to the end\): add --shard, or give one --host\./,
    ],
    [
      'a run id on two hosts',
      ['--host', 'gr-test', '--host', 'gpu-b', '--attach', '20261204-101010-abcd'],
      /2 targets .* go with --shard, --list, or --attach\/--stop of a group \(shards-\.\.\.\); --attach of a run id works on one/,
    ],
    [
      'the same host twice',
      ['--host', 'gr-test', '--host', 'gr-test', '--shard', '--gpus', '0'],
      /ssh gr-test is named twice with --remote-dir .*: name each target once/,
    ],
    [
      'a --remote-dir per host, miscounted',
      // The test host's --host stays: three in all.
      ['--remote-dir', '/srv/eval/a', '--remote-dir', '/srv/eval/b', '--host', 'gpu-b', '--host', 'gpu-c', '--shard'],
      /--remote-dir was given 2 times for 3 --host: give it once \(the same for every --host\) or once per --host, in their order/,
    ],
    [
      'two --remote-dir for one host',
      ['--remote-dir', '/srv/eval/a', '--remote-dir', '/srv/eval/b'],
      /--remote-dir was given 2 times for one --host/,
    ],
    [
      'a --gpus per host, miscounted',
      ['--host', 'gr-test', '--host', 'gpu-b', '--shard', '--gpus', '0', '--gpus', '1', '--gpus', '2'],
      /--gpus was given 3 times for 2 --host: give it once \(the same GPUs on every target\) or once per --host, in their order/,
    ],
    ['--skip-failed-targets without --shard', ['--skip-failed-targets'], /--skip-failed-targets goes with --shard on several targets/],
    [
      '--shard with --detach',
      ['--shard', '--gpus', '0,1', '--detach'],
      /--shard starts shards and follows them to the end: it does not go with --detach/,
    ],
    [
      '--shard with a --dataset of its own',
      ['--shard', '--gpus', '0,1', '--eval-arg=--dataset', '--eval-arg=ru_pii_chat'],
      /--shard gives each shard its own --dataset list/,
    ],
    ['--compare-module without --compare-to', ['--compare-module', 'app.eval.compare'], /--compare-module goes with --compare-to/],
    ['--compare-to latest with no run fetched', ['--compare-to', 'latest'], /--compare-to latest: there is no fetched run in .* yet/],
    [
      'a missing --compare-to',
      ['--compare-to', '/nonexistent/run'],
      /--compare-to \/nonexistent\/run does not exist\. Give a fetched report directory/,
    ],
    ['a --compare-to without report.json', ['--compare-to', '/usr/share'], /--compare-to \/usr\/share has no report\.json/],
    ['--merge-module without --shard', ['--merge-module', 'app.tools.merge'], /--merge-module goes with --shard/],
    ['a --merge-module that is no module name', ['--merge-module', 'a;b'], /--merge-module "a;b" is not a Python module name/],
    ['bad --workers', ['--workers', 'many'], /--workers "many" is not a whole number/],
    [
      'hex --workers',
      ['--workers', '0x10'],
      /--workers "0x10" is not a whole number of workers from 1 to 1024 \(plain digits\), e.g. --workers 4/,
    ],
    ['exponent --workers', ['--workers', '1e2'], /--workers "1e2" is not a whole number/],
    ['--workers 0', ['--workers', '0'], /--workers "0" is not a whole number/],
    ['--suite __proto__', ['--suite', '__proto__'], /Suite "__proto__" is not in .*Known suites: guardrails_ru/],
    ['relative --venv', ['--venv', '.venv'], /--venv "\.venv" is a relative path/],
    ['bad --min-free-disk', ['--min-free-disk', 'lots'], /--min-free-disk "lots" is not a size/],
    [
      'metacharacters in --ssh-option',
      ['--ssh-option', 'ProxyCommand=nc %h %p|sh'],
      /--ssh-option .* is not an ssh option without shell characters/,
    ],
    ['an unknown flag', ['--hots', 'x'], /Unknown arg: --hots/],
    ['--wait (only --no-wait exists)', ['--wait'], /Unknown arg: --wait/],
    ['--detach with --list', ['--detach', '--list'], /--detach and --list exclude each other/],
    ['a path as --attach', ['--attach', '../../etc'], /--attach "\.\.\/\.\.\/etc" is not a run id/],
    ['--stop without an id', ['--stop'], /--stop needs a value/],
    ['bad --stop-grace', ['--stop-grace', '5s'], /--stop-grace "5s" is not a whole number of seconds/],
    ['exponent --stop-grace', ['--stop-grace', '1e1'], /--stop-grace "1e1" is not a whole number of seconds/],
    [
      '--fresh-cache air-gapped',
      ['--fresh-cache', '--remote-has-internet', 'no'],
      /--fresh-cache downloads again, which an air-gapped target cannot do/,
    ],
    [
      '--dry-run with --detach',
      ['--dry-run', '--detach'],
      /--dry-run shows the steps of a new run \(or what --prune would remove\); it does not combine with --detach/,
    ],
    ['a missing --project-dir', ['--project-dir', '/nonexistent/eval'], /--project-dir \/nonexistent\/eval is not a directory/],
    // The runner has no --suites or --policy flag: the advice names only what it has.
    [
      'a --project-dir that is no eval repo',
      ['--project-dir', '/usr/share'],
      /The suites file not found: \/usr\/share\/configs\/eval\/suites\.yaml\. Run from the eval repo or pass --project-dir\.$/m,
    ],
    ['a bad --env name', ['--env', 'GR X=1'], /--env "GR X" is not NAME=VALUE/],
    ['--env without a value', ['--env', 'GR_ENABLE_NEMOTRON'], /--env "GR_ENABLE_NEMOTRON" is not NAME=VALUE/],
    ['a line break in --env', ['--env', 'A=1\n2'], /--env A=\.\.\. holds a line break/],
    [
      'a missing --baseline',
      ['--baseline', '/nonexistent/report'],
      /--baseline \/nonexistent\/report does not exist\. Give a fetched report directory/,
    ],
    ['a --baseline without metrics', ['--baseline', '/usr/share'], /--baseline \/usr\/share holds neither metrics\.csv nor report\.json/],
    ['--prune without a limit', ['--prune'], /--prune needs --older-than DAYS, --keep-last K or both/],
    ['a bad --older-than', ['--prune', '--older-than', '2w'], /--older-than "2w" is not a whole number of days/],
    ['--keep-last 0', ['--prune', '--keep-last', '0'], /--keep-last "0" is not a whole number of runs from 1/],
    ['--no- of a flag with a value', ['--no-suite'], /Unknown arg: --no-suite/],
    ['--baseline with --list', ['--baseline', '/tmp', '--list'], /--baseline goes with a run that fetches its report .*not with --list/],
    ['--keep-last without --prune', ['--keep-last', '3'], /--keep-last goes with --prune\./],
    ['--verify-checksums without --check-assets', ['--verify-checksums'], /--verify-checksums goes with --check-assets\./],
    ['--prune with --list', ['--prune', '--keep-last', '1', '--list'], /--list and --prune exclude each other/],
    ['--baseline with --no-baseline', ['--baseline', '/tmp', '--no-baseline'], /--baseline PATH and --no-baseline exclude each other/],
  ]

  // The bash runner refused to start without these four (usage, exit 2); so do the runners.
  for (const missing of ['--runtime', '--remote-has-internet', '--models-dir', '--datasets-dir']) {
    test(`without ${missing}: exit 2, naming it, with the usage`, async () => {
      const before = await snapshot()
      const all: Record<string, string> = {
        '--runtime': 'cpu',
        '--remote-has-internet': 'no',
        '--models-dir': `${dir}/m`,
        '--datasets-dir': `${dir}/d`,
      }
      const args = [
        ...sshFlags(),
        '--remote-dir',
        dir,
        '--project-dir',
        project,
        ...Object.entries(all)
          .filter(([flag]) => flag !== missing)
          .flat(),
      ]
      const result = await runScript('remote_eval/ssh_eval.ts', args, process.env, { raw: true })
      assert.equal(result.code, 2, result.stderr)
      assert.match(result.stderr, new RegExp(`\\[error\\] Missing ${missing}:`))
      assert.match(result.stderr, /Usage: scripts\/remote_eval\/ssh_eval\.ts/)
      assert.equal(await snapshot(), before, 'the remote directory is unchanged')
    })
  }

  for (const [name, override, message] of cases) {
    test(name, async () => {
      const before = await snapshot()
      // The override replaces the same flag in the base arguments (or adds it).
      const base: Record<string, string> = { '--remote-dir': dir, '--runtime': 'cpu', '--project-dir': project }
      const args = [...sshFlags()]
      const overridden = new Set([override[0]!])
      if (overridden.has('--host')) args.splice(0, 2)
      for (const [flag, value] of Object.entries(base)) if (!overridden.has(flag)) args.push(flag, value)
      args.push(...override)
      const result = await runScript('remote_eval/ssh_eval.ts', args)
      assert.equal(result.code, 2, result.stderr)
      assert.match(result.stderr, message)
      // The failure is JSON on stdout too, for scripts and CI: the same message, its exit code.
      const { error } = JSON.parse(result.stdout)
      assert.match(error.message, message)
      assert.deepEqual([error.exit_code, error.meaning], [2, 'bad usage or bad input; nothing was touched on the remote'])
      assert.equal(await snapshot(), before, 'the remote directory is unchanged')
    })
  }
})
