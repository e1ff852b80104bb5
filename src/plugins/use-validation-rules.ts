import type { ValidationRule } from 'graphql';
import type { Plugin } from 'graphql-yoga';

/** Adds validation rules to every operation (before anything executes). */
export function useValidationRules(rules: ValidationRule[]): Plugin {
  return {
    onValidate({ addValidationRule }) {
      for (const rule of rules) addValidationRule(rule);
    },
  };
}
