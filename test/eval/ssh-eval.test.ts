import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { appendFile, cp, mkdir, mkdtemp, readFile, readdir, readlink, symlink, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { tmpdir } from 'node:os'
import { after, before, describe, test } from 'node:test'
import { startHub, type HubServer } from '../support/hub-server.ts'
import { $ } from 'zx'
import {
  EXAMPLE_HUB,
  copyExample,
  harness,
  remoteDir,
  runScript,
  sshFlags,
  sshHost,
  writeAsTestUser,
  FETCHED_REPORT,
} from '../support/harness.ts'
import { startCountingProxy, type CountingProxy } from '../support/tcp-proxy.ts'

// ssh_eval.ts as a user runs it, against the real sshd (the test user's login shell is zsh, and
// uv, the double, is only in ~/.local/bin), with the Hub double for the online downloads.

const TOKEN = 'hf_remote_only_token_77'
const SCRIPT = 'remote_eval/ssh_eval.ts'

describe('ssh_eval.ts online, through uv', () => {
  let hub: HubServer
  let proxy: CountingProxy
  let project: string
  let dir: string
  let env: NodeJS.ProcessEnv
  let firstRun = ''
  const args = () => [...sshFlags([`Port=${proxy.port}`]), '--remote-dir', dir, '--runtime', 'cpu', '--project-dir', project]

  before(async () => {
    hub = await startHub({ root: EXAMPLE_HUB, tokens: [TOKEN] })
    proxy = await startCountingProxy(harness().sshd.port)
    project = await copyExample()
    dir = remoteDir('eval')
    // The token exists only on the target, in the eval repo's .env.eval there.
    await writeAsTestUser(path.join(dir, '.env.eval'), `HF_TOKEN=${TOKEN}\n`)
    env = { ...process.env, HF_ENDPOINT: hub.endpoint, HF_TOKEN: '' }
  })
  after(async () => {
    await hub.stop()
    await proxy.close()
  })

  test('downloads on the target, runs, fetches the report, over one connection', async () => {
    proxy.reset()
    const result = await runScript(SCRIPT, args(), env)
    assert.equal(result.code, 0, result.stderr)
    const out = JSON.parse(result.stdout)
    const runId = path.basename(out.local_run_dir)
    assert.match(runId, /^eval_guardrails_ru_fast_\d{8}T\d{6}Z_[0-9a-f]{10}$/)
    assert.equal(out.local_run_dir, path.join(project, 'reports/evaluations', runId))
    assert.deepEqual((await readdir(out.local_run_dir)).sort(), FETCHED_REPORT)
    // The paths point here (`jq -r .report_md` opens it); the target's are under remote_*.
    for (const [key, file] of [
      ['report_json', 'report.json'],
      ['report_md', 'report.md'],
      ['metrics_csv', 'metrics.csv'],
    ] as const) {
      assert.equal(out[key], path.join(out.local_run_dir, file), key)
      assert.equal(out[`remote_${key}`], `${dir}/reports/evaluations/${runId}/${file}`, key)
    }
    assert.deepEqual([out.run_dir, out.remote_run_dir], [out.local_run_dir, `${dir}/reports/evaluations/${runId}`])
    // The run's record beside its report, its log as the target kept it, and the newest report's link.
    const record = JSON.parse(await readFile(path.join(out.local_run_dir, 'run.json'), 'utf8'))
    assert.equal(record.remote_run_id, out.remote_run_id)
    assert.deepEqual(
      [record.run_id, record.suite, record.split, record.state, record.exit_code],
      [runId, 'guardrails_ru', 'fast', 'finished', 0],
    )
    assert.deepEqual(Object.keys(record.timings), ['preflight', 'sync', 'deps', 'assets', 'run', 'fetch', 'total'])
    assert.ok(record.argv.includes('--remote-dir'), JSON.stringify(record.argv))
    assert.match(
      await readFile(path.join(out.local_run_dir, 'run.log'), 'utf8'),
      /^\[guardrails-mini\] \[loaded\] dataset=ru_pii_chat split=fast samples=12$/m,
    )
    assert.equal(await readlink(path.join(project, 'reports/evaluations/latest')), runId)
    assert.match(result.stderr, /^\[models\] org\/ru-pii-detector@main\s+fetched/m)
    assert.match(result.stderr, /^\[datasets\] org\/ru-pii-chat@main\s+fetched/m)
    assert.match(result.stderr, /^\[run\] \[guardrails-mini\] \[loaded\] dataset=ru_pii_chat split=fast samples=12$/m)
    assert.match(result.stderr, /^\[done\] task\s+scope\s+dataset\s+label\s+metric family\s+precision\s+recall\s+f1$/m)
    assert.match(result.stderr, /^\[done\] span_detection\s+combined\s+exact_canonical\s+1\.0\s+0\.75\s+0\.857143$/m)
    assert.match(result.stderr, /^\[done\] span_detection\s+label\s+PHONE\s+per_label_char\s+1\.0\s+1\.0\s+1\.0$/m)
    // Nothing to compare with yet: said, and null in the JSON.
    assert.match(result.stderr, /^\[done\] no earlier finished run of guardrails_ru \/ fast here to compare with/m)
    assert.deepEqual([out.baseline, out.deltas], [null, null])
    firstRun = out.local_run_dir
    assert.equal(proxy.connections, 1, 'one SSH connection for the whole run')
    assert.ok(
      hub.requests.some((r) => r.authorization === `Bearer ${TOKEN}`),
      'the remote token was used',
    )
    const report = JSON.parse(await readFile(path.join(out.local_run_dir, 'report.json'), 'utf8'))
    assert.equal(report.report_version, '3.0')
    assert.deepEqual([report.run.suite, report.run.split, report.run.policy_name], ['guardrails_ru', 'fast', 'external'])
    assert.equal(report.run.model_dir, `${dir}/.models`)
    // The eval loaded every split from the cache root the runner prepared, and kept its indices there.
    assert.equal(report.run.cache_dir, `${dir}/.datasets/hf_cache`)
    assert.ok(existsSync(`${dir}/.datasets/hf_cache/_eval/splits/ru_pii_chat`))
    assert.ok(!existsSync(`${dir}/.datasets/hf_cache/datasets`), 'no second copy of the datasets under HF_DATASETS_CACHE')
  })

  test('a second run skips the deps and the downloads, and shows what changed since the first', async () => {
    const before = hub.fileDownloads().length
    // Fewer samples than the first run: other scores. (The copy of the example is no git work tree: no commit.)
    const result = await runScript(SCRIPT, [...args(), '--eval-arg=--max-samples', '--eval-arg=5'], env)
    assert.equal(result.code, 0, result.stderr)
    const out = JSON.parse(result.stdout)
    assert.deepEqual([out.baseline.path, out.baseline.source, out.baseline.run_id], [firstRun, 'previous run', path.basename(firstRun)])
    assert.match(result.stderr, new RegExp(`^\\[done\\] against ${path.basename(firstRun)} \\(\\d{4}-\\d\\d-\\d\\dT[\\d:]+Z\\):$`, 'm'))
    assert.match(result.stderr, /^\[done\] row\s+precision\s+Δ\s+recall\s+Δ\s+f1\s+Δ$/m)
    const changed = out.deltas.filter(
      (d: { only?: string; scores: Record<string, { delta: number | null }> }) =>
        d.only !== undefined || Object.values(d.scores).some((score) => score.delta !== 0),
    )
    assert.ok(changed.length > 0, JSON.stringify(out.deltas))
    assert.match(result.stderr, /^\[done\] span_detection label EMAIL per_label_char\s+1\.0000\s+=\s+0\.\d{4}\s+-0\.\d{4}/m)
    assert.match(result.stderr, /^\[deps\] pyproject\.toml, uv\.lock and extras unchanged since the last sync: skipped$/m)
    // Everything in place: one line each.
    assert.match(result.stderr, /^\[models\] all in place, nothing fetched: org\/ru-pii-detector@main at their recorded commits; /m)
    assert.match(result.stderr, /^\[datasets\] all in place, nothing fetched: org\/ru-pii-chat@main, org\/ru-pii-forms@main at /m)
    assert.doesNotMatch(result.stderr, /skipped \(already complete\)/)
    assert.equal(hub.fileDownloads().length, before, 'no file downloaded again')
    assert.ok(!existsSync(path.join(project, '.env.eval')), 'the remote .env.eval never came back')
  })

  const evalStarted = (stderr: string) => /^\[run\] \[guardrails-mini\]/m.test(stderr)
  const remoteRuns = async () => (await readdir(path.join(dir, 'reports/evaluations')).catch(() => [])).length

  test('air-gapped with complete directories: runs, with the offline environment', async () => {
    const result = await runScript(SCRIPT, [...args(), '--remote-has-internet', 'no', '--no-baseline'], {
      ...env,
      HF_ENDPOINT: 'http://127.0.0.1:9',
    })
    assert.equal(result.code, 0, result.stderr)
    assert.match(result.stderr, /^\[models\] models in .*: complete/m)
    assert.match(result.stderr, /^\[run\] \[guardrails-mini\] runtime cpu, offline true/m)
    // --no-baseline: no comparison, though earlier runs are here.
    assert.doesNotMatch(result.stderr, /^\[done\] (against|no earlier)/m)
    assert.deepEqual([JSON.parse(result.stdout).baseline, JSON.parse(result.stdout).deltas], [null, null])
    const report = JSON.parse(await readFile(path.join(JSON.parse(result.stdout).local_run_dir, 'report.json'), 'utf8'))
    assert.equal(report.run.env.GR_OFFLINE_MODE, 'true')
  })

  test('--check-assets checks the target directories, nothing synced or run; --verify-checksums finds a file changed in place', async () => {
    const runsBefore = await remoteRuns()
    const check = (extra: string[] = []) => runScript(SCRIPT, [...args(), '--check-assets', ...extra], env)
    const sized = await check()
    assert.equal(sized.code, 0, sized.stderr)
    assert.match(sized.stderr, /^\[done\] models and datasets on ssh gr-test are complete \(sizes checked\)$/m)
    assert.doesNotMatch(sized.stderr, /^\[(sync|deps|run)\]/m)
    const out = JSON.parse(sized.stdout)
    assert.deepEqual([out.models.complete, out.datasets.complete, out.models.dir], [true, true, `${dir}/.models`])
    // One byte of a model file changed, its size kept: only the checksums see it.
    const files = (await readdir(`${dir}/.models`, { recursive: true, withFileTypes: true })).filter(
      (e) => e.isFile() && e.name !== 'manifest.json' && !e.parentPath.includes('hf_cache'),
    )
    const victim = path.join(files[0]!.parentPath, files[0]!.name)
    const original = await readFile(victim)
    const changed = Buffer.from(original)
    changed[0] = changed[0]! ^ 1
    await writeFile(victim, changed)
    try {
      assert.equal((await check()).code, 0, 'sizes alone pass')
      const summed = await check(['--verify-checksums'])
      assert.equal(summed.code, 10, summed.stderr)
      assert.match(summed.stderr, /checksum mismatch: /)
      assert.match(summed.stderr, /^\[error\] The models on ssh gr-test are not complete\.$/m)
      const failed = JSON.parse(summed.stdout)
      assert.deepEqual([failed.error.exit_code, failed.models.complete, failed.datasets.complete], [10, false, true])
    } finally {
      await writeFile(victim, original)
    }
    const verified = await check(['--verify-checksums'])
    assert.equal(verified.code, 0, verified.stderr)
    assert.match(verified.stderr, /are complete \(checksums verified\)$/m)
    assert.equal(await remoteRuns(), runsBefore, 'no eval ran')
  })

  test('air-gapped with models missing: exit 10, the eval never started, and the printed fix works when pasted', async () => {
    const before = await remoteRuns()
    const airGapped = [...args(), '--remote-has-internet', 'no', '--models-dir', `${dir}/no-models-here`]
    const result = await runScript(SCRIPT, airGapped, env)
    assert.equal(result.code, 10, result.stderr)
    assert.match(result.stderr, /models in .*no-models-here: the directory does not exist/)
    assert.ok(!evalStarted(result.stderr))
    assert.equal(await remoteRuns(), before)
    // Pasted into a shell on a machine with internet (uv on PATH, the user's token), from anywhere:
    // it prepares the models and copies them with this run's own ssh config and options.
    const fix = /Fix: on a machine with internet: (.*) \(or run with --remote-has-internet yes\)$/m.exec(result.stderr)?.[1]
    assert.ok(fix, result.stderr)
    assert.match(fix, /rsync -a -e 'ssh .*-F .*-o .*Port=\d+/)
    const userShell = { ...env, HF_TOKEN: TOKEN, PATH: `${harness().fixturesBin}:${process.env.PATH}`, UV_DOUBLE_VENV: harness().venv }
    const pasted = await $({ cwd: tmpdir(), env: userShell, nothrow: true, quiet: true })`bash -c ${fix}`
    assert.equal(pasted.exitCode, 0, pasted.stderr)
    const again = await runScript(SCRIPT, airGapped, env)
    assert.equal(again.code, 0, again.stderr)
    assert.match(again.stderr, /^\[models\] models in .*no-models-here: complete/m)
  })

  test('air-gapped with a datasets split missing: exit 11, and the eval never started', async () => {
    const before = await remoteRuns()
    // The online runs prepared fast and full (an air-gapped bundle needs both); smoke has a split it never prepared.
    const result = await runScript(SCRIPT, [...args(), '--remote-has-internet', 'no', '--datasets-dir', `${dir}/.datasets-fast-only`], env)
    assert.equal(result.code, 11, result.stderr)
    assert.match(result.stderr, /datasets in .*\.datasets-fast-only: the directory does not exist/)
    assert.ok(!evalStarted(result.stderr))
    assert.equal(await remoteRuns(), before)
  })

  test('asset directories the remote user can read but not write: the air-gapped run works', async () => {
    const shared = await mkdtemp('/srv/gre-shared-')
    await cp(`${dir}/.models`, `${shared}/models`, { recursive: true })
    await cp(`${dir}/.datasets`, `${shared}/datasets`, { recursive: true, verbatimSymlinks: true })
    await $`chown -R root:root ${shared} && chmod -R a+rX,go-w ${shared}`.quiet()
    const result = await runScript(
      SCRIPT,
      [...args(), '--remote-has-internet', 'no', '--models-dir', `${shared}/models`, '--datasets-dir', `${shared}/datasets`],
      env,
    )
    assert.equal(result.code, 0, result.stderr)
    assert.match(result.stderr, /the datasets cache .* is read-only: the eval uses .*datasets-cache\/\S+, links to its files/)
    assert.match(result.stderr, /\[loaded\] dataset=ru_pii_chat split=fast samples=12/)
  })

  test('an eval that fails after printing its JSON: exit 1, and its report is fetched', async () => {
    const result = await runScript(SCRIPT, [...args(), '--eval-arg=--fail-after-report'], env)
    assert.equal(result.code, 1, result.stderr)
    const out = JSON.parse(result.stdout)
    assert.match(result.stderr, /failing on purpose/)
    assert.deepEqual((await readdir(out.local_run_dir)).sort(), FETCHED_REPORT)
  })

  // Each case fails for its own reason, named in the message.
  const claims: Array<[string, string, RegExp]> = [
    ['empty', '', /the eval printed run_dir ""/],
    ['outside', '/etc', /run_dir "\/etc" is outside .*\/reports\/evaluations/],
    ['a path going up', 'reports/evaluations/../../..', /run_dir "reports\/evaluations\/\.\.\/\.\.\/\.\." is outside/],
    ['a symlink out', 'reports/evaluations/evil', /run_dir \/\S+\/reports\/evaluations\/evil resolves to \/etc, outside /],
  ]
  for (const [name, claim, why] of claims) {
    test(`an eval whose run_dir is ${name}: an error, and nothing is fetched`, async () => {
      if (name === 'a symlink out') {
        await mkdir(path.join(dir, 'reports/evaluations'), { recursive: true })
        await symlink('/etc', path.join(dir, 'reports/evaluations/evil'))
      }
      const localBefore = await readdir(path.join(project, 'reports/evaluations'))
      const result = await runScript(SCRIPT, [...args(), `--eval-arg=--claim-run-dir=${claim}`], env)
      assert.equal(result.code, 1, result.stderr)
      assert.match(result.stderr, /^\[error\] Not fetching the report: /m)
      assert.match(result.stderr, why)
      assert.equal(JSON.parse(result.stdout).local_run_dir, null)
      assert.deepEqual(await readdir(path.join(project, 'reports/evaluations')), localBefore, 'nothing fetched')
    })
  }

  test('a --remote-dir reached through a symlink: the resolved run_dir the eval prints is inside, and fetched', async () => {
    const real = remoteDir('real')
    const link = `${real}-link`
    await writeAsTestUser(path.join(real, '.env.eval'), `HF_TOKEN=${TOKEN}\n`)
    await symlink(real, link)
    // A project in git, with a change not committed: the run's record names the commit, and says so.
    const committed = await copyExample()
    await $({ cwd: committed, quiet: true })`git init -q && git add -A && git -c user.email=t@e -c user.name=t commit -qm c`
    const head = (await $({ cwd: committed, quiet: true })`git rev-parse HEAD`).stdout.trim()
    await appendFile(path.join(committed, 'app/eval/cli.py'), '# changed\n')
    const args = [...sshFlags(), '--remote-dir', link, '--runtime', 'cpu', '--project-dir', committed]
    const result = await runScript(SCRIPT, args, env)
    assert.equal(result.code, 0, result.stderr)
    const out = JSON.parse(result.stdout)
    assert.deepEqual(JSON.parse(await readFile(path.join(out.local_run_dir, 'run.json'), 'utf8')).code, { commit: head, dirty: true })
    assert.ok(out.remote_run_dir.startsWith(`${real}/reports/evaluations/`), `the eval resolved its run_dir: ${out.remote_run_dir}`)
    assert.deepEqual((await readdir(out.local_run_dir)).sort(), FETCHED_REPORT)
  })

  test('--dry-run prints every round trip and its remote script, and touches nothing', async () => {
    const snapshot = async () => (await $`cd ${dir} && find . -printf '%P %s %T@\n' | sort`.quiet()).stdout
    const before = await snapshot()
    proxy.reset()
    const result = await runScript(SCRIPT, [...args(), '--dry-run'], env)
    assert.equal(result.code, 0, result.stderr)
    const plan = JSON.parse(result.stdout)
    assert.deepEqual(
      [...new Set(plan.round_trips.map((s: { step: string }) => s.step))],
      // No fetch of its own: the report directory comes home at the end of the run's round trip.
      ['preflight', 'sync', 'deps', 'models', 'datasets', 'run'],
    )
    const run = plan.round_trips.find((s: { step: string }) => s.step === 'run')
    assert.match(run.script, /^set -- .*'-m' 'app\.eval\.cli' '--suite' 'guardrails_ru' '--split' 'fast'/m)
    assert.match(run.script, /^export GR_MODEL_DIR=/m)
    assert.equal(proxy.connections, 0, 'no connection at all')
    assert.equal(await snapshot(), before)
  })

  test('on a host without uv, air-gapped with --venv and the directories prepared above', async () => {
    // A host whose home has no uv (the shared test user's ~/.local/bin holds the uv double).
    const host = await sshHost({ ownHome: true })
    const { venv, sshd } = harness()
    const result = await runScript(SCRIPT, [
      ...host.flags,
      '--remote-dir',
      remoteDir('venv'),
      '--runtime',
      'cpu',
      '--project-dir',
      project,
      '--venv',
      venv,
      '--remote-has-internet',
      'no',
      '--models-dir',
      `${dir}/.models`,
      '--datasets-dir',
      `${dir}/.datasets`,
    ])
    assert.equal(result.code, 0, result.stderr)
    assert.match(result.stderr, new RegExp(`venv ${venv}/bin/python`))
    assert.match(result.stderr, /^\[deps\] prebuilt venv .*: no uv sync$/m)
    const look =
      await $`ssh -F ${sshd.configFile} ${host.sshOptions.flatMap((o) => ['-o', o])} ${sshd.alias} ${'command -v uv || ls ~/.local/bin/uv ~/.cargo/bin/uv'}`
        .nothrow()
        .quiet()
    assert.notEqual(look.exitCode, 0, `uv found on that host: ${look.stdout}`)
  })
})
