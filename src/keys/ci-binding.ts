import type { KeyBinding } from './binding.ts';
import type { Caller } from './caller.ts';

/** The CI job (GitHub Actions run, GitLab CI job) a caller's verified OIDC claims name. */
export function ciBindingOf(_caller: Caller): KeyBinding | undefined {
  return undefined;
}
