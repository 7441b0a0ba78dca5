// ESLint (flat config): typescript-eslint's recommended rules plus a few of our own.
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['lib/**', 'node_modules/**', '../nbmlops/labextension/**', '*.config.*'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['src/**/*.ts', 'test/**/*.ts'],
    languageOptions: { globals: { ...globals.browser } },
    rules: {
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-namespace': 'off',
      '@typescript-eslint/no-non-null-assertion': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { args: 'none' }],
      curly: ['error', 'all'],
      eqeqeq: ['error', 'smart'],
      'no-restricted-properties': [
        'error',
        { property: 'innerHTML', message: 'Build DOM with dom.ts (text nodes only).' },
        { property: 'outerHTML', message: 'Build DOM with dom.ts (text nodes only).' }
      ],
      'prefer-const': 'error'
    }
  }
);
