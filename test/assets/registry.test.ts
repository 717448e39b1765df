import assert from 'node:assert/strict'
import { writeFile } from 'node:fs/promises'
import path from 'node:path'
import { describe, test } from 'node:test'
import { UsageError } from '../../lib/core/errors.ts'
import { modelDirName, parseModelSpec, readDatasetNeeds, readModelNeeds } from '../../lib/assets/registry.ts'
import { makeProject } from '../support/harness.ts'

async function file(content: string) {
  const dir = await makeProject({ 'f.yaml': content })
  return path.join(dir, 'f.yaml')
}

describe('what a suite needs', () => {
  test('models: every token_classifier recognizer, with its revision, plus --model, without duplicates', async () => {
    const policy = await file(`
recognizer_definitions:
  ner_ru: {type: token_classifier, params: {model_name: org/ner-ru}}
  ner_pinned: {type: token_classifier, params: {model_name: org/ner-x, revision: v2}}
  phone: {type: regex, params: {pattern: "x"}}
  ner_again: {type: token_classifier, params: {model_name: org/ner-ru}}
`)
    const needs = readModelNeeds({ policyPath: policy, extraModels: ['other/model@abc123', 'org/ner-ru'] })
    assert.deepEqual(
      needs.map((n) => `${n.repoId}@${n.revision}`),
      ['org/ner-ru@main', 'org/ner-x@v2', 'other/model@abc123'],
    )
    assert.equal(modelDirName('org/ner-ru'), 'token_classifier/org__ner-ru')
  })

  test('names of Object.prototype are names like any other: a suite or dataset id __proto__ or constructor is looked up, not inherited', async () => {
    const suites = await file('suites:\n  s:\n    datasets: [__proto__, constructor]\ndatasets:\n  other: {hf_id: org/other}\n')
    assert.throws(
      () => readDatasetNeeds({ suitesPath: suites, suite: '__proto__', splits: ['fast'] }),
      /Suite "__proto__" is not in .*Known suites: s\./,
    )
    assert.throws(() => readDatasetNeeds({ suitesPath: suites, suite: 'toString', splits: ['fast'] }), /Suite "toString" is not in/)
    assert.throws(
      () => readDatasetNeeds({ suitesPath: suites, suite: 's', splits: ['fast'] }),
      /lists dataset "__proto__", but datasets\.__proto__\.hf_id is missing/,
    )
  })

  test('a token_classifier without model_name is an error naming the key', async () => {
    const policy = await file('recognizer_definitions:\n  broken: {type: token_classifier, params: {}}\n')
    assert.throws(() => readModelNeeds({ policyPath: policy }), /recognizer_definitions\.broken\.params\.model_name is missing/)
  })

  test("datasets: the suite's ids mapped through datasets.<id>.hf_id", async () => {
    const suites = await file(`
suites:
  guardrails_ru: {splits: [fast, full], datasets: [a, b]}
  other: {datasets: [b]}
datasets:
  a: {hf_id: org/ds-a}
  b: {hf_id: org/ds-b, revision: v1}
`)
    const needs = readDatasetNeeds({ suitesPath: suites, suite: 'guardrails_ru', splits: ['fast'] })
    assert.deepEqual(needs.datasets, [
      { id: 'a', hfId: 'org/ds-a', revision: 'main' },
      { id: 'b', hfId: 'org/ds-b', revision: 'v1' },
    ])
    assert.throws(() => readDatasetNeeds({ suitesPath: suites, suite: 'nope', splits: ['fast'] }), /Known suites: guardrails_ru, other/)
    assert.throws(() => readDatasetNeeds({ suitesPath: suites, suite: 'guardrails_ru', splits: ['huge'] }), /huge not declared/)
  })

  test('a dataset id without hf_id is an error naming it', async () => {
    const suites = await file('suites:\n  s: {datasets: [ghost]}\ndatasets: {}\n')
    assert.throws(
      () => readDatasetNeeds({ suitesPath: suites, suite: 's', splits: ['fast'] }),
      /lists dataset "ghost", but datasets\.ghost\.hf_id is missing/,
    )
  })

  const badSpecs = ['', 'a/b/c', '/abs', '../up', 'org/name@', 'org/name@../x', 'org/na me', '-flag']
  for (const spec of badSpecs) {
    test(`--model ${JSON.stringify(spec)} is refused`, () => {
      assert.throws(
        () => parseModelSpec(spec),
        (e: unknown) => e instanceof UsageError && e.exitCode === 2,
      )
    })
  }

  test('malformed YAML names the file', async () => {
    const policy = await file('recognizer_definitions: [unclosed\n')
    await writeFile(policy + '.x', '')
    assert.throws(() => readModelNeeds({ policyPath: policy }), /f\.yaml is not valid YAML/)
  })
})
