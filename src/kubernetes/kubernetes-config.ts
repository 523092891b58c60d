// The `kubernetes` section of the config file: where the controller finds the API and how it
// names the service accounts it acts for.
import Type, { type Static } from 'typebox';

export const KubernetesConfigSchema = Type.Object(
  {
    enabled: Type.Boolean({
      default: false,
      description: 'Run the Kubernetes controller in `serve --role all` (`--role controller` always runs it)',
    }),
    kubeconfig: Type.Optional(
      Type.String({
        minLength: 1,
        description: 'Path of a kubeconfig; without it: in-cluster, else KUBECONFIG / ~/.kube/config',
      }),
    ),
    namespaces: Type.Array(Type.String({ pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$', maxLength: 63 }), {
      default: [],
      description: 'Namespaces whose Jobs are watched; empty: every namespace',
    }),
    oidcIssuerId: Type.String({
      minLength: 1,
      default: 'kubernetes',
      description: "The OIDC issuer id the policy matches the cluster's service accounts under",
    }),
    sweepSeconds: Type.Integer({
      minimum: 1,
      default: 30,
      description:
        'How often the controller asks the API about every Job and pod bound to a live key (a pod-bound key ends within this)',
    }),
    podChecksPerSweep: Type.Integer({
      minimum: 0,
      maximum: 10_000,
      default: 100,
      description:
        'Most pods bound to live keys asked about per sweep, one GET each, longest unasked first (0: pods are not checked)',
    }),
    leaderRetrySeconds: Type.Integer({
      minimum: 1,
      default: 2,
      description: 'How often a standby replica tries to take the leader lock',
    }),
  },
  { additionalProperties: false, default: {} },
);

export type KubernetesConfig = Static<typeof KubernetesConfigSchema>;
