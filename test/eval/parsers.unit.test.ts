import assert from 'node:assert/strict'
import { fileURLToPath } from 'node:url'
import { describe, test } from 'node:test'
import { parseFlags } from '../../lib/core/flags.ts'
import { silentLogger } from '../../lib/core/log.ts'
import { SSH_EVAL_FLAGS, evalOptionsFrom } from '../../lib/eval/options.ts'
import { newRunId, parseEvalJson, parseFollowOutput, runMeta } from '../../lib/eval/runs.ts'
import { readPreflight } from '../../lib/eval/steps.ts'
import { parseCsv } from '../../lib/eval/csv.ts'
import { metricsTable } from '../../lib/eval/summary.ts'
import { kindNamed } from '../../lib/transport/kinds.ts'
import type { Transport } from '../../lib/transport/types.ts'

// What the runner reads from the target and the eval, parsed without a target: the preflight's
// records, a followed run's end, the eval's JSON, metrics.csv.

const EXAMPLE = fileURLToPath(new URL('../../examples/guardrails-mini', import.meta.url))
const transport = { target: 'ssh gpu-box' } as Transport
const signal = new AbortController().signal
const options = (extra: string[] = ['--runtime', 'cpu']) =>
  evalOptionsFrom(
    parseFlags(
      [
        '--host',
        'gpu-box',
        '--remote-dir',
        '/srv/g',
        '--project-dir',
        EXAMPLE,
        '--remote-has-internet',
        'yes',
        '--models-dir',
        '/srv/m',
        '--datasets-dir',
        '/srv/d',
        ...extra,
      ],
      SSH_EVAL_FLAGS,
    ),
    kindNamed('ssh'),
  )
const records = (...list: string[]) => list.map((r) => `${r}\0`).join('')
const answer = (preflight: string, inspection = records('kind=missing', 'writable=1')) => ({
  exitCode: 0,
  stdout: `${preflight}@@inspect\0${inspection}`,
  stderrTail: [],
})
const FREE = ['free=99999999 /srv', 'free=99999999 /srv', 'free=99999999 /srv']

describe('the preflight', () => {
  test('uv found, the token in the environment, the inspection read', () => {
    const facts = readPreflight(
      answer(
        records(
          'bash=5.2.21',
          'uv=/home/me/.local/bin/uv',
          'python=3.12.3',
          ...FREE,
          'token=environment',
          'asset=models missing',
          'asset=datasets missing',
        ),
      ),
      { transport, options: options(), logger: silentLogger, signal },
    )
    assert.deepEqual(facts.python, { kind: 'uv', projectDir: '/srv/g', extras: ['eval'] })
    assert.equal(facts.tokenPath, undefined)
    assert.equal(facts.remoteDir.kind, 'missing')
  })

  test('every problem at once, each saying what to do (exit 4)', () => {
    const said = () =>
      readPreflight(answer(records('bash=5', 'free=10 /srv', 'missing=setsid', 'token=none')), {
        transport,
        options: options(),
        logger: silentLogger,
        signal,
      })
    assert.throws(said, (error: Error & { exitCode?: number }) => {
      assert.equal(error.exitCode, 4)
      assert.match(error.message, /^The target is not ready:\n- uv is not on ssh gpu-box's PATH.*Install uv there/m)
      assert.match(
        error.message,
        /^- only 10\.0 KiB free in \/srv on ssh gpu-box; at least .* is needed \(--min-free-disk\)\. Free some space\.$/m,
      )
      assert.match(error.message, /^- setsid is not on ssh gpu-box's PATH: install util-linux there\.$/m)
      assert.match(error.message, /^- HF_TOKEN is not set on ssh gpu-box: export it/m)
      return true
    })
  })

  test('CUDA: the GPUs nvidia-smi lists; an id it does not list is exit 2; its failure is exit 4 quoting it', () => {
    const cuda = (gpus: string) => options(['--runtime', 'cuda', '--gpus', gpus])
    const listed = records('bash=5', 'uv=uv', ...FREE, 'gpu=0', 'gpu=1', 'gpus-listed=1', 'token=environment')
    assert.equal(readPreflight(answer(listed), { transport, options: cuda('1'), logger: silentLogger, signal }).python.kind, 'uv')
    assert.throws(
      () => readPreflight(answer(listed), { transport, options: cuda('2'), logger: silentLogger, signal }),
      /^UsageError: --gpus 2: ssh gpu-box has no GPU 2; nvidia-smi -L lists 0, 1\./,
    )
    const failed = records(
      'bash=5',
      'uv=uv',
      ...FREE,
      'gpuerror=9 NVIDIA-SMI has failed because it could not communicate with the NVIDIA driver.',
      'token=environment',
    )
    assert.throws(
      () => readPreflight(answer(failed), { transport, options: cuda('0'), logger: silentLogger, signal }),
      /nvidia-smi -L failed on ssh gpu-box \(exit 9\): "NVIDIA-SMI has failed/,
    )
  })

  test('a token `hf auth login` stored is passed on by its path; asset directories are guarded', () => {
    const login = readPreflight(
      answer(records('bash=5', 'uv=uv', ...FREE, 'token=login', 'token_path=/home/me/.cache/huggingface/token')),
      { transport, options: options(), logger: silentLogger, signal },
    )
    assert.equal(login.tokenPath, '/home/me/.cache/huggingface/token')
    const home = answer(
      records('bash=5', 'uv=uv', ...FREE, 'token=environment', 'asset=models dir 0 0 0 1 /home/me'),
      records('home=/home/me', 'kind=missing'),
    )
    assert.throws(
      () => readPreflight(home, { transport, options: options(), logger: silentLogger, signal }),
      /^UsageError: --models-dir \/srv\/m is the home directory on ssh gpu-box \(it resolves to \/home\/me there\)/,
    )
  })
})

describe('a run', () => {
  test("a followed run's end: state, exit code, meta, then the eval's JSON after other lines", () => {
    const end = parseFollowOutput(
      '@@state failed 3\n@@meta suite=s\n@@meta split=fast\nnoise\n{"run_dir": "reports/evaluations/r1", "ok": false}\n',
    )
    assert.deepEqual(end, {
      state: 'failed',
      exitCode: 3,
      meta: { suite: 's', split: 'fast' },
      json: { run_dir: 'reports/evaluations/r1', ok: false },
    })
    assert.deepEqual(parseFollowOutput('@@state lost -\n'), { state: 'lost', exitCode: null, meta: {}, json: null })
    assert.equal(parseFollowOutput('the session broke'), null)
  })

  test("run_follow's end read byte for byte: the stdout's length, UTF-8 in it, and the report directory's check after it", () => {
    const stdout = '{"run_dir": "reports/evaluations/r1", "suite": "é"}\n\0@@rundir\0forged\0'
    const bytes = Buffer.from(stdout)
    const output = '/w/reports/evaluations/r1\0odd\nname'
    const check = ['', '@@rundir', '/w/reports/evaluations/r1', '0', String(output.length), output].join('\0')
    const head = `@@state finished 0\n@@meta suite=é\n@@stdout ${bytes.length}\n`
    const text = Buffer.concat([Buffer.from(head), bytes, Buffer.from(check), Buffer.from('@@archive\n3\nabc\xff', 'latin1')])
    const end = parseFollowOutput(text.toString('latin1'))
    assert.deepEqual(end?.meta, { suite: 'é' })
    assert.equal(end?.json?.suite, 'é', 'the JSON ends where the length says, a forged trailer inside it stays text')
    assert.deepEqual(end?.reportDir, {
      absolute: '/w/reports/evaluations/r1',
      status: 0,
      output,
      archive: Buffer.from('3\nabc\xff', 'latin1'),
    })
    const unchecked = parseFollowOutput(`@@state finished 0\n@@stdout 3\n{}\n`)
    assert.equal(unchecked?.reportDir, undefined, 'no trailer: the fetch checks in a round trip of its own')
  })

  test("the eval's JSON: the whole stdout, or its last JSON object line; arrays and broken lines are not it", () => {
    assert.deepEqual(parseEvalJson('{\n  "a": 1\n}\n'), { a: 1 })
    assert.deepEqual(parseEvalJson('{"a": 1}\nlog line\n{"b": 2}\n'), { b: 2 })
    assert.equal(parseEvalJson('[1, 2]\n{"broken": \n'), null)
  })

  test('run ids sort by start time; meta drops fields that would break its lines', () => {
    assert.match(newRunId(new Date('2026-12-03T11:22:41Z')), /^20261203-112241-[0-9a-f]{4}$/)
    assert.equal(runMeta({ suite: 's', split: undefined, gpus: 'a\tb', runner: 'host pid 1' }), 'suite=s\trunner=host pid 1')
  })
})

describe('metrics.csv', () => {
  test('quoted fields with commas, quotes and line breaks', () => {
    assert.deepEqual(parseCsv('a,b\n"x, y","say ""hi"""\n"two\nlines",z\n'), [
      ['a', 'b'],
      ['x, y', 'say "hi"'],
      ['two\nlines', 'z'],
    ])
    assert.deepEqual(parseCsv('a\r\nb\r\n'), [['a'], ['b']])
  })

  test('the table: one row per line, the header first', () => {
    const table = metricsTable('task,f1\nspan_detection,1.0\n')
    assert.deepEqual(
      table.split('\n').map((l) => l.trim().split(/\s+/)),
      [
        ['task', 'f1'],
        ['span_detection', '1.0'],
      ],
    )
  })
})
