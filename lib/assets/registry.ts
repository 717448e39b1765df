import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import { UsageError } from '../core/errors.ts'

// What a suite needs, read from the eval repo's own configuration: the token-classifier models of
// configs/policy.yaml (plus any --model), and the Hugging Face datasets a suite lists in
// configs/eval/suites.yaml. Every mistake is a UsageError that names the file and what to fix.

export const DEFAULT_POLICY = 'configs/policy.yaml'
export const DEFAULT_SUITES = 'configs/eval/suites.yaml'
export const DEFAULT_SUITE = 'guardrails_ru'
export const DEFAULT_SPLITS = ['fast', 'full']

export interface ModelRef {
  /** Hub repo id, "org/name" (or a bare legacy "name"). */
  repoId: string
  /** Branch, tag or commit sha asked for ("main" unless given). */
  revision: string
  /** Where the need came from, for messages. */
  source: string
}

export interface DatasetRef {
  /** The suite's own name for it (a key of `datasets:`). */
  id: string
  hfId: string
  revision: string
}

export interface DatasetNeeds {
  suite: string
  splits: string[]
  datasets: DatasetRef[]
  suitesPath: string
}

const REPO_ID = /^(?:[A-Za-z0-9][A-Za-z0-9._-]*\/)?[A-Za-z0-9][A-Za-z0-9._-]*$/
const REVISION = /^[A-Za-z0-9][A-Za-z0-9._/-]*$/
const SPLIT = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/

/** "org/name[@revision]" as given to --model; throws a UsageError naming the flag. */
export function parseModelSpec(spec: string, source = '--model'): ModelRef {
  const at = spec.lastIndexOf('@')
  const repoId = at > 0 ? spec.slice(0, at) : spec
  const revision = at > 0 ? spec.slice(at + 1) : 'main'
  if (!REPO_ID.test(repoId) || repoId.includes('..')) {
    throw new UsageError(
      `${source} ${JSON.stringify(spec)} is not a model repo id. Write org/name or org/name@revision, e.g. --model cointegrated/rubert-tiny2@main.`,
    )
  }
  if (!REVISION.test(revision) || revision.includes('..')) {
    throw new UsageError(`${source} ${JSON.stringify(spec)} has a bad revision "${revision}". Use a branch, tag or commit sha.`)
  }
  return { repoId, revision, source }
}

/** The directory, relative to the models dir, that the eval loads a model from. */
export function modelDirName(repoId: string): string {
  return path.posix.join('token_classifier', repoId.replace('/', '__'))
}

/**
 * zx's YAML parser, loaded on first use: loading zx whole costs a script's start-up ~0.1 s
 * (its vendored fetch, glob and YAML), which --help and runs that read no YAML need not pay.
 */
const yaml = (): typeof import('zx').YAML => (createRequire(import.meta.url)('zx') as typeof import('zx')).YAML

/** Reads and parses a YAML file of the eval repo; missing or malformed files are UsageErrors. */
export function readYaml(file: string, what: string, flag: string | null): unknown {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    throw new UsageError(
      code === 'ENOENT'
        ? `${what} not found: ${file}. Run from the eval repo${flag ? `, pass --project-dir, or point ${flag} at the file` : ' or pass --project-dir'}.`
        : `Cannot read ${what} ${file} (${code}).`,
      { cause: error },
    )
  }
  try {
    return yaml().parse(text)
  } catch (error) {
    throw new UsageError(`${file} is not valid YAML: ${(error as Error).message.split('\n')[0]}. Fix the file.`, { cause: error })
  }
}

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value)

/** Token-classifier models of the policy (every recognizer_definitions entry of that type), then the extras. */
export function readModelNeeds(options: { policyPath: string; extraModels?: readonly string[]; policyFlag?: string | null }): ModelRef[] {
  const policy = readYaml(options.policyPath, 'The policy file', options.policyFlag === undefined ? '--policy' : options.policyFlag)
  const definitions = isRecord(policy) ? policy.recognizer_definitions : undefined
  if (definitions !== undefined && !isRecord(definitions) && !Array.isArray(definitions)) {
    throw new UsageError(`${options.policyPath}: recognizer_definitions must be a mapping of recognizers. Fix the file.`)
  }
  const entries: Array<[string, unknown]> = Array.isArray(definitions)
    ? definitions.map((d, i) => [String(isRecord(d) && d.name ? d.name : i), d])
    : Object.entries(definitions ?? {})
  const models: ModelRef[] = []
  for (const [name, definition] of entries) {
    if (!isRecord(definition) || definition.type !== 'token_classifier') continue
    const params = isRecord(definition.params) ? definition.params : {}
    const where = `${options.policyPath}: recognizer_definitions.${name}.params.model_name`
    if (typeof params.model_name !== 'string' || params.model_name === '') {
      throw new UsageError(`${where} is missing; a token_classifier recognizer needs the model's repo id there.`)
    }
    const revision = typeof params.revision === 'string' ? `@${params.revision}` : ''
    models.push(parseModelSpec(`${params.model_name}${revision}`, where))
  }
  for (const spec of options.extraModels ?? []) models.push(parseModelSpec(spec))
  const seen = new Set<string>()
  return models.filter((m) => !seen.has(`${m.repoId}@${m.revision}`) && seen.add(`${m.repoId}@${m.revision}`))
}

/** The splits a suite declares (suites.<suite>.splits), or null when it declares none. */
export function declaredSplits(suitesPath: string, suite: string, suitesFlag: string | null = '--suites'): string[] | null {
  const config = readYaml(suitesPath, 'The suites file', suitesFlag)
  const entry = isRecord(config) && isRecord(config.suites) && Object.hasOwn(config.suites, suite) ? config.suites[suite] : undefined
  return isRecord(entry) && Array.isArray(entry.splits) ? entry.splits.map(String) : null
}

/** The datasets a suite lists, mapped through `datasets.<id>.hf_id`, and the splits asked for. */
/** `suitesFlag`: the flag that names the suites file, for messages; null for a script that has none (the runners). */
export function readDatasetNeeds(options: {
  suitesPath: string
  suite: string
  splits: readonly string[]
  splitFlag?: string
  suitesFlag?: string | null
}): DatasetNeeds {
  const splitFlag = options.splitFlag ?? '--splits'
  const file = options.suitesPath
  const config = readYaml(file, 'The suites file', options.suitesFlag === undefined ? '--suites' : options.suitesFlag)
  if (!isRecord(config) || !isRecord(config.suites)) throw new UsageError(`${file} has no "suites:" mapping. Fix the file.`)
  const suite = Object.hasOwn(config.suites, options.suite) ? config.suites[options.suite] : undefined
  if (!isRecord(suite)) {
    const known = Object.keys(config.suites).join(', ') || 'none'
    throw new UsageError(`Suite "${options.suite}" is not in ${file}. Known suites: ${known}. Pass one of them with --suite.`)
  }
  const bad = options.splits.find((s) => !SPLIT.test(s))
  if (bad !== undefined || options.splits.length === 0)
    throw new UsageError(`${splitFlag} ${JSON.stringify(options.splits.join(','))} is not a list of split names, e.g. fast,full.`)
  if (Array.isArray(suite.splits)) {
    const declared = suite.splits.map(String)
    const unknown = options.splits.filter((s) => !declared.includes(s))
    if (unknown.length)
      throw new UsageError(
        `Split(s) ${unknown.join(', ')} not declared for suite ${options.suite} in ${file}. Known splits: ${declared.join(', ')}; pass one with ${splitFlag}.`,
      )
  }
  if (!Array.isArray(suite.datasets) || suite.datasets.length === 0) {
    throw new UsageError(`${file}: suites.${options.suite}.datasets must list at least one dataset id. Fix the file.`)
  }
  const registry = isRecord(config.datasets) ? config.datasets : {}
  const datasets = suite.datasets.map((entry): DatasetRef => {
    const id = String(entry)
    const definition = Object.hasOwn(registry, id) ? registry[id] : undefined
    if (!isRecord(definition) || typeof definition.hf_id !== 'string') {
      throw new UsageError(`${file}: suite ${options.suite} lists dataset "${id}", but datasets.${id}.hf_id is missing. Add it.`)
    }
    const revision = typeof definition.revision === 'string' ? definition.revision : 'main'
    const ref = parseModelSpec(`${definition.hf_id}@${revision}`, `${file}: datasets.${id}.hf_id`)
    return { id, hfId: ref.repoId, revision: ref.revision }
  })
  return { suite: options.suite, splits: [...options.splits], datasets, suitesPath: file }
}
