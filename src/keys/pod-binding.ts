import type { KeyBinding } from './binding.ts';
import type { Caller } from './caller.ts';

/** The Kubernetes pod a caller's verified service-account token names. */
export function podBindingOf(_caller: Caller): KeyBinding | undefined {
  return undefined;
}
