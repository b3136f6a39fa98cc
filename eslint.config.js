// ESLint 9 flat configuration: type-aware rules from typescript-eslint over the TypeScript tree.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  // extensions/ and test/lab-app/ are npm projects of their own (their own tsconfig and lock) and
  // hold built bundles after set-up; they are not Gofer's TypeScript tree
  { ignores: ['dist/**', 'node_modules/**', 'test-artifacts/**', 'docker/**', 'data/**', 'extensions/**', 'test/lab-app/**'] },
  {
    files: ['**/*.ts'],
    extends: [js.configs.recommended, ...tseslint.configs.recommended],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // a promise nobody awaits or catches loses its error (and, in a request, the answer)
      '@typescript-eslint/no-floating-promises': 'error',
      // a promise where a plain value is expected (an if, a void callback) is a bug
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/require-await': 'off',
      // ltijs and the dev platform's claims are untyped JSON by nature
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      // `let x!: T` assigned after a closure that reads it is deliberate
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
    },
  },
  {
    // chai's property assertions (`.to.exist`, `.not.empty`) are expressions by design
    files: ['test/**/*.ts'],
    rules: { '@typescript-eslint/no-unused-expressions': 'off' },
  },
);
