import assert from 'node:assert/strict'
import { lstat, readdir, writeFile } from 'node:fs/promises'
import { homedir } from 'node:os'
import path from 'node:path'
import { describe, test } from 'node:test'
import { copyExample, harness, makePod, preparedAssets, remoteDir, runScript, sshFlags } from '../support/harness.ts'

// A run directory that points outside itself: its links are not fetched (SSH: rsync; pods: tar),
// and nothing here is read through one.

const HOSTILE = String.raw`
import json, os, sys
out = os.path.realpath(os.path.join("reports", "evaluations", "eval_hostile_1"))
os.makedirs(out, exist_ok=True)
json.dump({"report_version": "3.0", "run": {"suite": "guardrails_ru", "split": "fast"}}, open(os.path.join(out, "report.json"), "w"))
for name, target in (("metrics.csv", os.path.expanduser("~/victim.csv")), ("passwd", "/etc/passwd"), ("up", "../../../..")):
    if not os.path.lexists(os.path.join(out, name)):
        os.symlink(target, os.path.join(out, name))
print(json.dumps({"run_dir": out, "report_json": os.path.join(out, "report.json"), "report_md": "", "metrics_csv": os.path.join(out, "metrics.csv")}))
`

async function hostileProject(): Promise<string> {
  const project = await copyExample()
  await writeFile(path.join(project, 'app/eval/hostile.py'), HOSTILE)
  return project
}

async function assertOnlyTheReport(result: { code: number | null; stdout: string; stderr: string }) {
  assert.equal(result.code, 0, result.stderr)
  const local = JSON.parse(result.stdout).local_run_dir as string
  // The eval's one regular file, and the run's record of ours beside it (never written through a link).
  assert.deepEqual((await readdir(local)).sort(), ['report.json', 'run.json', 'run.log'])
  for (const file of ['report.json', 'run.json', 'run.log']) assert.ok((await lstat(path.join(local, file))).isFile(), file)
  assert.match(
    result.stderr,
    /^\[warn\] not fetched \(not a regular file or directory\): (metrics\.csv|passwd|up), (metrics\.csv|passwd|up), (metrics\.csv|passwd|up)$/m,
  )
  assert.doesNotMatch(result.stderr, /local victim/, 'no local file was read through a link')
  assert.ok(!(await readdir(path.dirname(local))).some((d) => d.includes('.partial-')), 'no half-fetched directory is left')
}

describe('reports cannot reach outside', () => {
  const assets = () => preparedAssets('hostile-assets')
  const common = (project: string) => [
    '--project-dir',
    project,
    '--venv',
    harness().venv,
    '--eval-module',
    'app.eval.hostile',
    '--remote-has-internet',
    'no',
    '--runtime',
    'cpu',
  ]

  test('over SSH (rsync): links in the run dir stay there; the metrics table is not read through one', async () => {
    await writeFile(path.join(homedir(), 'victim.csv'), 'task,scope\nlocal victim,x\n')
    const { models, datasets } = await assets()
    const result = await runScript('remote_eval/ssh_eval.ts', [
      ...sshFlags(),
      '--remote-dir',
      remoteDir('hostile'),
      ...common(await hostileProject()),
      '--models-dir',
      models,
      '--datasets-dir',
      datasets,
    ])
    await assertOnlyTheReport(result)
  })

  test('in a pod (tar): the same', async () => {
    const { models, datasets } = await assets()
    const pod = await makePod(['main'], {
      binds: [`ro ${harness().venv} /opt/venv`, `ro ${models} /mnt/models`, `ro ${datasets} /mnt/datasets`],
    })
    const project = await hostileProject()
    const args = [
      '--context',
      pod.context,
      '--namespace',
      pod.namespace,
      '--pod',
      pod.pod,
      ...common(project).map((a) => (a === harness().venv ? '/opt/venv' : a)),
      '--models-dir',
      '/mnt/models',
      '--datasets-dir',
      '/mnt/datasets',
    ]
    await assertOnlyTheReport(await runScript('remote_eval/k8s_eval.ts', args))
  })
})
