# Vault ACL policy of the deploykey-rotator service itself: the token it gets by logging in
# (config vault.auth; Kubernetes auth is the recommended method, see deploy/kustomization.yaml) or
# a static VAULT_TOKEN. Paths assume the config file's defaults, vault.kvMount "secret" and
# vault.pathPrefix "deploy-keys"; change them together.
#
# Register it under a name outside "deploykey-*", so that the grants at the bottom (which let the
# service write policies named deploykey-*) can never rewrite this policy:
#   vault policy write svc-deploykey-rotator deploy/vault/deploykey-rotator.hcl
#
# Not needed: sys/health (unauthenticated), the login endpoints (unauthenticated), and any `list`
# (the service always knows the exact path of a key).

# The service renews its own token at half its lease and, when a request is refused, asks Vault
# whether the token still lives before logging in again. Both are in Vault's default policy too;
# listed here so the service keeps working with token_no_default_policy.
path "auth/token/renew-self" {
  capabilities = ["update"]
}

path "auth/token/lookup-self" {
  capabilities = ["read"]
}

# Key material: written once per key, read back for an idempotent replay, and read wrapped
# (X-Vault-Wrap-TTL needs nothing beyond `read`). No `delete`: the service never soft-deletes a
# single version; it removes whole secrets through metadata/.
path "secret/data/deploy-keys/*" {
  capabilities = ["create", "update", "read"]
}

# Ownership (custom_metadata keyId, max_versions 1) is written before the key material and read
# before a destroy; deleting the metadata destroys every version of the secret.
path "secret/metadata/deploy-keys/*" {
  capabilities = ["create", "update", "read", "delete"]
}

# Revoking a key revokes the single-use wrapping token it was handed out in (by its accessor, the
# only thing the service keeps of it), so the token cannot unwrap the key afterwards. This lets
# the token revoke any token whose accessor it knows; it never learns other tokens' accessors.
path "auth/token/revoke-accessor" {
  capabilities = ["update"]
}

# Signed audit checkpoints: a sibling of the key prefix, so no per-key policy below can reach it.
path "secret/data/deploy-keys-audit/checkpoints/latest" {
  capabilities = ["create", "update", "read"]
}

# Access for Kubernetes callers: an ACL policy and a Kubernetes-auth role, both named
# deploykey-<keyId>, that let one service account read one key while it lives, or (for the keys
# the controller issues for a Job) deploykey-job.<namespace>.<job>, reading the Job's keys while
# any of them lives; removed on revoke.
# Whoever holds these two grants can write a policy with any content and bind it to any service
# account, so this token is as sensitive as the secrets Vault holds. Leave both out if no
# Kubernetes caller takes keys from Vault; on Vault Enterprise, a Sentinel policy can pin the
# content of deploykey-* policies.
path "sys/policies/acl/deploykey-*" {
  capabilities = ["create", "update", "delete"]
}

path "auth/kubernetes/role/deploykey-*" {
  capabilities = ["create", "update", "delete"]
}
