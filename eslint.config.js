import js from '@eslint/js'
import tseslint from 'typescript-eslint'

export default tseslint.config(
  { ignores: ['node_modules/', 'reports/', 'examples/**/.venv/', '.scratch/', '.remote-eval/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    // A function of ours takes at most three arguments; more travel as one options object.
    files: ['lib/**/*.ts'],
    rules: { 'max-params': ['error', 3] },
  },
  {
    // bin/ is plain JavaScript that tsc checks (checkJs), undefined names included, as for TypeScript.
    files: ['bin/**/*.mjs'],
    rules: { 'no-undef': 'off' },
  },
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      'no-constant-condition': ['error', { checkLoops: false }],
      'no-duplicate-imports': ['error', { allowSeparateTypeImports: true }],
    },
  },
)
