#!/bin/sh
# Points a GitLab group's (or one project's) Job and Pipeline events at deploykey-rotator, so a
# job's keys are revoked when the job ends, whether it succeeded, failed, was cancelled or timed out.
#
#   gitlab-webhook.sh group acme           a group hook: every project below acme
#   gitlab-webhook.sh project acme/models  a project hook
#
# Environment:
#   GITLAB_TOKEN              may manage the hooks (group or project Maintainer/Owner, scope `api`)
#   DEPLOYKEY_URL             the service's public URL, e.g. https://deploykey.example.internal
#   DEPLOYKEY_WEBHOOK_SECRET  the value the service has as DEPLOYKEY_WEBHOOK_<HOSTID>_SECRET;
#                             make it with `openssl rand -hex 32`
#   GITLAB_URL                default https://gitlab.com
#   HOST_ID                   the service's id for this host (hosts[].id), default gitlab
#
# The secret travels on stdin, never on a command line other users of the machine could read.
set -eu
case "$DEPLOYKEY_WEBHOOK_SECRET" in
  '' | *[!A-Za-z0-9._~-]*) echo "${0##*/}: DEPLOYKEY_WEBHOOK_SECRET must be letters, digits and ._~- (openssl rand -hex 32)" >&2 && exit 2 ;;
esac
kind="${1:?usage: gitlab-webhook.sh group|project PATH}"
path="${2:?usage: gitlab-webhook.sh group|project PATH}"
case "$kind" in
  group | project) ;;
  *) echo "gitlab-webhook.sh: the first argument is group or project" >&2 && exit 2 ;;
esac
encoded="$(printf '%s' "$path" | sed 's|/|%2F|g')"
answer="$(mktemp)"
printf '{"url":"%s/v1/webhooks/gitlab/%s","token":"%s","job_events":true,"pipeline_events":true,"push_events":false,"enable_ssl_verification":true}' \
  "$DEPLOYKEY_URL" "${HOST_ID:-gitlab}" "$DEPLOYKEY_WEBHOOK_SECRET" |
  curl -sS --fail-with-body -o "$answer" -X POST "${GITLAB_URL:-https://gitlab.com}/api/v4/${kind}s/$encoded/hooks" \
    -H "PRIVATE-TOKEN: $GITLAB_TOKEN" \
    -H 'Content-Type: application/json' \
    --data-binary @- || { cat "$answer" >&2; rm -f "$answer"; exit 1; }
rm -f "$answer"
echo "GitLab will send Job and Pipeline events of $path to $DEPLOYKEY_URL"
