import { createHash } from 'node:crypto'
import { mkdir, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { $ } from 'zx'

// Fixture repos for the Hub double: a tiny token-classifier model (config, tokenizer files, a few MB
// of weights) and dataset repos with `fast` and `full` parquet splits whose README dataset_info
// matches them. Content is deterministic, so commit shas are stable within a test run.

export const MODEL_REPO = 'org/tiny-ner'
export const GATED_MODEL_REPO = 'org/gated-ner'
export const SECOND_MODEL_REPO = 'org/tiny-ner-2'
export const DATASETS = { 'org/pii-ru-a': { fast: 10, full: 40 }, 'org/pii-ru-b': { fast: 6, full: 24 } } as const
export const WEIGHTS_BYTES = 3 * 1024 * 1024

/** Deterministic bytes (sha256 in counter mode). */
function bytes(seed: string, size: number): Buffer {
  const out = Buffer.alloc(size)
  for (let offset = 0, i = 0; offset < size; i++) offset += createHash('sha256').update(`${seed}:${i}`).digest().copy(out, offset)
  return out
}

async function put(root: string, rel: string, content: string | Buffer) {
  await mkdir(path.dirname(path.join(root, rel)), { recursive: true })
  await writeFile(path.join(root, rel), content)
}

async function writeModel(root: string, repo: string) {
  const dir = path.join(root, 'models', repo)
  const labels = ['O', 'B-PER', 'I-PER', 'B-PHONE', 'B-EMAIL']
  await put(
    dir,
    'config.json',
    JSON.stringify(
      { architectures: ['BertForTokenClassification'], model_type: 'bert', id2label: Object.fromEntries(labels.map((l, i) => [i, l])) },
      null,
      2,
    ),
  )
  await put(dir, 'tokenizer_config.json', JSON.stringify({ tokenizer_class: 'BertTokenizerFast', do_lower_case: false }))
  await put(dir, 'vocab.txt', ['[PAD]', '[UNK]', '[CLS]', '[SEP]', 'привет', 'телефон', 'почта'].join('\n') + '\n')
  await put(dir, 'tokenizer.json', JSON.stringify({ version: '1.0', model: { type: 'WordPiece', vocab: { '[PAD]': 0, '[UNK]': 1 } } }))
  await put(dir, 'model.safetensors', bytes(repo, WEIGHTS_BYTES))
}

/** Writes every fixture repo under root; parquet files are made with the given Python (pyarrow). */
export async function writeHubRepos(root: string, python: string): Promise<void> {
  for (const repo of [MODEL_REPO, GATED_MODEL_REPO, SECOND_MODEL_REPO]) await writeModel(root, repo)
  for (const [repo, splits] of Object.entries(DATASETS)) {
    const dir = path.join(root, 'datasets', repo)
    const info = Object.entries(splits)
      .map(([name, rows]) => `  - name: ${name}\n    num_examples: ${rows}`)
      .join('\n')
    const files = Object.keys(splits)
      .map((name) => `  - split: ${name}\n    path: data/${name}-*`)
      .join('\n')
    await put(
      dir,
      'README.md',
      `---\ndataset_info:\n  features:\n  - name: id\n    dtype: int64\n  - name: text\n    dtype: string\n  - name: label\n    dtype: string\n  splits:\n${info}\nconfigs:\n- config_name: default\n  data_files:\n${files}\n---\n# ${repo}\n`,
    )
    await mkdir(path.join(dir, 'data'), { recursive: true })
    const script = `
import sys, pyarrow as pa, pyarrow.parquet as pq
out, repo, split, rows = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
samples = [("Позвоните мне: +7 999 123-45-%02d", "PHONE"), ("Пишите на user%d@example.ru", "EMAIL"), ("Просто текст номер %d", "NONE")]
ids, texts, labels = [], [], []
for i in range(rows):
    template, label = samples[(i + len(split)) % len(samples)]
    ids.append(i); texts.append(template % i); labels.append(label)
pq.write_table(pa.table({"id": ids, "text": texts, "label": labels}), out)
`
    for (const [split, rows] of Object.entries(splits)) {
      await $`${python} -c ${script} ${path.join(dir, 'data', `${split}-00000-of-00001.parquet`)} ${repo} ${split} ${rows}`.quiet()
    }
  }
}
