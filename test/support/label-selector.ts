// The label selector of a LIST (?labelSelector=) for the Kubernetes API server double
// (kube-apiserver.ts), read by the grammar the real server reads it with (labels.Parse of
// k8s.io/apimachinery; our own code): `k=v`, `k==v`, `k!=v`, `k`, `!k`, `k in (a,b)`, `k notin (a,b)`, `k>1`,
// `k<1`, comma-separated. A selector it cannot parse throws the server's own words, which kubectl
// prints after "Error from server (BadRequest):"; a test may match them, so they are kept verbatim.

export type Labels = Record<string, string>

type Operator = 'in' | 'notin' | '=' | '==' | '!=' | 'gt' | 'lt' | 'exists' | '!'
interface Requirement {
  key: string
  operator: Operator
  values: string[]
}

/** The operators of the lexer; `in` and `notin` are words, not symbols. */
const SYMBOLS = new Set([')', ',', '!', '==', '=', '>', '<', '!=', '('])
const isSpecial = (ch: string) => '=!(),><'.includes(ch)
const isSpace = (ch: string) => ' \t\r\n'.includes(ch)
type Token = { kind: string; text: string }

function lex(s: string): Token[] {
  const tokens: Token[] = []
  let pos = 0
  for (;;) {
    while (pos < s.length && isSpace(s[pos]!)) pos++
    if (pos >= s.length) return [...tokens, { kind: 'end', text: '' }]
    if (isSpecial(s[pos]!)) {
      // The longest run of symbols that is still an operator: "!=" is one, ")(" is two.
      let buffer = ''
      let operator = ''
      while (pos < s.length && isSpecial(s[pos]!)) {
        buffer += s[pos++]
        if (SYMBOLS.has(buffer)) operator = buffer
        else if (operator) {
          pos--
          break
        }
      }
      tokens.push(operator ? { kind: operator, text: operator } : { kind: 'error', text: `error expected: keyword found '${buffer}'` })
    } else {
      const start = pos
      while (pos < s.length && !isSpecial(s[pos]!) && !isSpace(s[pos]!)) pos++
      const word = s.slice(start, pos)
      tokens.push({ kind: word === 'in' || word === 'notin' ? word : 'id', text: word })
    }
  }
}

// k8s.io/apimachinery/pkg/util/validation's words (the double space of "',  or '" is theirs).
const NAME_FMT = '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]'
const DNS_FMT = '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*'
const regexError = (msg: string, fmt: string, ...examples: string[]) =>
  `${msg} (e.g. ${examples.map((e) => `'${e}', `).join(' or ')}regex used for validation is '${fmt}')`
const NAME_MSG = regexError(
  "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
  NAME_FMT,
  'MyName',
  'my.name',
  '123-abc',
)
const matchesWhole = (fmt: string, value: string) => new RegExp(`^(?:${fmt})$`).test(value)

/** IsQualifiedName: [DNS subdomain "/"] name, the name at most 63 characters. */
function keyErrors(key: string): string[] {
  const parts = key.split('/')
  if (parts.length > 2) return [`a qualified name ${NAME_MSG} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')`]
  const errors: string[] = []
  const name = parts.at(-1)!
  if (parts.length === 2) {
    const prefix = parts[0]!
    if (!prefix) errors.push('prefix part must be non-empty')
    else {
      if (prefix.length > 253) errors.push('prefix part must be no more than 253 characters')
      if (!matchesWhole(DNS_FMT, prefix))
        errors.push(
          `prefix part ${regexError("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character", DNS_FMT, 'example.com')}`,
        )
    }
  }
  if (!name) errors.push('name part must be non-empty')
  else if (name.length > 63) errors.push('name part must be no more than 63 characters')
  if (!matchesWhole(NAME_FMT, name)) errors.push(`name part ${NAME_MSG}`)
  return errors
}

/** IsValidLabelValue: empty, or a name of at most 63 characters. */
function valueErrors(value: string): string[] {
  const errors = value.length > 63 ? ['must be no more than 63 characters'] : []
  if (!matchesWhole(`(${NAME_FMT})?`, value))
    errors.push(
      regexError(
        "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
        `(${NAME_FMT})?`,
        'MyValue',
        'my_value',
        '12345',
      ),
    )
  return errors
}

const quote = (s: string) => JSON.stringify(s)

/** The recursive descent of labels.Parse, with its error messages. */
class Parser {
  private position = 0
  constructor(private readonly tokens: Token[]) {}

  /** In a list of values, `in` and `notin` are plain words. */
  private lookahead(values = true): Token {
    const token = this.tokens[this.position]!
    return values && (token.kind === 'in' || token.kind === 'notin') ? { kind: 'id', text: token.text } : token
  }

  private consume(values = true): Token {
    const token = this.lookahead(values)
    this.position++
    return token
  }

  parse(): Requirement[] {
    const requirements: Requirement[] = []
    for (;;) {
      const token = this.lookahead()
      if (token.kind === 'end') return requirements
      if (token.kind !== 'id' && token.kind !== '!') throw new Error(`found '${token.text}', expected: !, identifier, or 'end of string'`)
      try {
        requirements.push(this.requirement())
      } catch (error) {
        throw new Error(`unable to parse requirement: ${(error as Error).message}`)
      }
      const next = this.consume()
      if (next.kind === 'end') return requirements
      if (next.kind !== ',') throw new Error(`found '${next.text}', expected: ',' or 'end of string'`)
      const after = this.lookahead()
      if (after.kind !== 'id' && after.kind !== '!') throw new Error(`found '${after.text}', expected: identifier after ','`)
    }
  }

  private requirement(): Requirement {
    let token = this.consume()
    let operator: Operator | undefined
    if (token.kind === '!') {
      operator = '!'
      token = this.consume()
    }
    if (token.kind !== 'id') throw new Error(`found '${token.text}', expected: identifier`)
    const key = token.text
    const errors = keyErrors(key)
    if (errors.length) throw new Error(`<nil>: Invalid value: ${quote(key)}: ${errors.join('; ')}`)
    if (operator === undefined && ['end', ','].includes(this.lookahead().kind)) operator = 'exists'
    if (operator) return { key, operator, values: [] }
    const op = this.consume(false)
    const operators: Record<string, Operator> = { in: 'in', notin: 'notin', '=': '=', '==': '==', '!=': '!=', '>': 'gt', '<': 'lt' }
    operator = operators[op.kind]
    if (!operator) throw new Error(`found '${op.text}', expected: in, notin, =, ==, !=, gt, lt`)
    const values = [...new Set(operator === 'in' || operator === 'notin' ? this.valueSet() : [this.exactValue()])].sort()
    return newRequirement(key, operator, values)
  }

  /** "(" values ")"; "()" is the one empty value. */
  private valueSet(): string[] {
    const open = this.consume()
    if (open.kind !== '(') throw new Error(`found '${open.text}' expected: '('`)
    const first = this.lookahead()
    if (first.kind === ')') {
      this.consume()
      return ['']
    }
    if (first.kind !== 'id' && first.kind !== ',') throw new Error(`found '${first.text}', expected: ',', ')' or identifier`)
    const values = this.identifiers()
    if (this.consume().kind !== ')') throw new Error(`found '${first.text}', expected: ')'`)
    return values
  }

  /** Comma-separated values, each maybe empty ("a,,b"). */
  private identifiers(): string[] {
    const values = new Set<string>()
    for (;;) {
      const token = this.consume()
      if (token.kind === 'id') {
        values.add(token.text)
        const next = this.lookahead()
        if (next.kind === ',') continue
        if (next.kind === ')') return [...values]
        throw new Error(`found '${next.text}', expected: ',' or ')'`)
      }
      if (token.kind !== ',') throw new Error(`found '${token.text}', expected: ',', or identifier`)
      if (values.size === 0) values.add('')
      const next = this.lookahead()
      if (next.kind === ')') {
        values.add('')
        return [...values]
      }
      if (next.kind === ',') {
        this.consume()
        values.add('')
      }
    }
  }

  private exactValue(): string {
    if (['end', ','].includes(this.lookahead().kind)) return ''
    const token = this.consume()
    if (token.kind === 'id') return token.text
    throw new Error(`found '${token.text}', expected: identifier`)
  }
}

/** NewRequirement's checks of the values (an aggregate: one error alone, more in brackets). */
function newRequirement(key: string, operator: Operator, values: string[]): Requirement {
  const errors: string[] = []
  values.forEach((value, i) => {
    if ((operator === 'gt' || operator === 'lt') && !/^[+-]?\d+$/.test(value))
      errors.push(`values[${i}]: Invalid value: ${quote(value)}: for 'Gt', 'Lt' operators, the value must be an integer`)
  })
  values.forEach((value, i) => {
    const problems = valueErrors(value)
    if (problems.length) errors.push(`values[${i}][${key}]: Invalid value: ${quote(value)}: ${problems.join('; ')}`)
  })
  const unique = [...new Set(errors)]
  if (unique.length === 1) throw new Error(unique[0])
  if (unique.length > 1) throw new Error(`[${unique.join(', ')}]`)
  return { key, operator, values }
}

function matches(r: Requirement, labels: Labels): boolean {
  const has = Object.hasOwn(labels, r.key)
  const value = labels[r.key]
  switch (r.operator) {
    case 'in':
    case '=':
    case '==':
      return has && r.values.includes(value!)
    case 'notin':
    case '!=':
      return !has || !r.values.includes(value!)
    case 'exists':
      return has
    case '!':
      return !has
    case 'gt':
    case 'lt': {
      if (!has || !/^[+-]?\d+$/.test(value!)) return false
      const [a, b] = [Number(value), Number(r.values[0])]
      return r.operator === 'gt' ? a > b : a < b
    }
  }
}

/**
 * The test of a pod's labels that a selector makes (the empty selector takes every pod), or an
 * Error whose message is the API server's when the selector does not parse.
 */
export function parseLabelSelector(selector: string): (labels: Labels) => boolean {
  const requirements = new Parser(lex(selector)).parse()
  return (labels) => requirements.every((r) => matches(r, labels))
}
