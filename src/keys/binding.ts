import type { KeyBinding } from '../model/schemas.ts';
import type { Caller } from './caller.ts';
import { ciBindingOf } from './ci-binding.ts';
import { podBindingOf } from './pod-binding.ts';

/** The strings an ending event looks keys up by; a key's `binding_refs` holds those of its binding. */
export const bindingRef = {
  githubRun: (host: string, repository: string, runId: string, runAttempt: string) =>
    `github-actions:${host}:${repository.toLowerCase()}:run:${runId}:${runAttempt}`,
  githubJob: (host: string, repository: string, checkRunId: string) =>
    `github-actions:${host}:${repository.toLowerCase()}:job:${checkRunId}`,
  gitlabJob: (host: string, project: string, jobId: string) =>
    `gitlab-ci:${host}:${project.toLowerCase()}:job:${jobId}`,
  gitlabPipeline: (host: string, project: string, pipelineId: string) =>
    `gitlab-ci:${host}:${project.toLowerCase()}:pipeline:${pipelineId}`,
  kubernetesJob: (uid: string) => `kubernetes:job:${uid}`,
  kubernetesPod: (uid: string) => `kubernetes:pod:${uid}`,
};

export function bindingRefs(binding: KeyBinding): string[] {
  switch (binding.kind) {
    case 'github-actions': {
      const { host, repository, runId, runAttempt, checkRunId } = binding;
      const run = bindingRef.githubRun(host, repository, runId, runAttempt);
      return checkRunId ? [run, bindingRef.githubJob(host, repository, checkRunId)] : [run];
    }
    case 'gitlab-ci':
      return [
        bindingRef.gitlabJob(binding.host, binding.project, binding.jobId),
        bindingRef.gitlabPipeline(binding.host, binding.project, binding.pipelineId),
      ];
    case 'kubernetes-job':
      return [bindingRef.kubernetesJob(binding.uid)];
    case 'kubernetes-pod':
      return [bindingRef.kubernetesPod(binding.uid)];
  }
}

/** The job a caller's verified claims place it in, if any. */
export function bindingOfCaller(caller: Caller): KeyBinding | undefined {
  return ciBindingOf(caller) ?? podBindingOf(caller);
}
