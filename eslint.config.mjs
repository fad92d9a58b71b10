// ESLint for the TypeScript of src/, test/ and bench/ and the scripts: typescript-eslint's
// recommended rules, plus the three type-aware rules about promises (a daemon that drops a
// rejection or awaits a non-promise hides its failures); they cost a type-check of the tree,
// about 10 s of CPU. Formatting is prettier's job, not ESLint's.
import js from '@eslint/js';
import { defineConfig } from 'eslint/config';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default defineConfig(
  {
    // Build output, the generated CRI types and installed packages.
    ignores: ['dist/', 'build/', 'coverage/', 'node_modules/', 'src/cri/generated/'],
  },
  js.configs.recommended,
  tseslint.configs.recommended,
  {
    languageOptions: {
      ecmaVersion: 2022,
      globals: { ...globals.node },
    },
    linterOptions: {
      reportUnusedDisableDirectives: 'error',
    },
    rules: {
      // An unused name is an error, except one that says it is unused on purpose (_x), a rest
      // sibling that drops a key from a copy, and a caught error that is not looked at.
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', ignoreRestSiblings: true, caughtErrors: 'none' }],
      // `any` is sometimes the honest type at a boundary (JSON, the addon); warn so it stays rare.
      '@typescript-eslint/no-explicit-any': 'warn',
      // `catch {}` with nothing to do is a deliberate "best effort" in clean-up paths.
      'no-empty': ['error', { allowEmptyCatch: true }],
      // while (true) loops that return or break from inside are fine.
      'no-constant-condition': ['error', { checkLoops: false }],
      // Control characters in regexes are used on purpose (parsing terminal and log output).
      'no-control-regex': 'off',
      eqeqeq: ['error', 'always', { null: 'ignore' }],
      'prefer-const': ['error', { destructuring: 'all' }],
    },
  },
  {
    files: ['**/*.ts'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      // node:test's describe() and test() return promises the runner itself awaits.
      '@typescript-eslint/no-floating-promises': [
        'error',
        { allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['describe', 'it', 'test', 'suite', 'before', 'after', 'beforeEach', 'afterEach'] }] },
      ],
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/await-thenable': 'error',
    },
  },
  {
    // The one importer of the addon: the .node file's path is found at run time, so it is a require().
    files: ['src/native/binding.ts'],
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    // Plain CommonJS scripts run by node directly.
    files: ['**/*.js', '**/*.cjs'],
    languageOptions: { sourceType: 'commonjs' },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    // Tests poke at internals and malformed input on purpose.
    files: ['test/**/*.ts', 'src/**/*.test.ts', 'bench/**/*.ts'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-non-null-assertion': 'off',
    },
  },
);
