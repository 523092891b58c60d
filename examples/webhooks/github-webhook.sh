#!/bin/sh
# Points a GitHub organisation's (or one repository's) workflow events at deploykey-rotator, so a
# job's keys are revoked when the job ends, whether or not it reached its last step.
#
#   github-webhook.sh acme            an organisation hook: every repository of acme
#   github-webhook.sh acme/models     a repository hook
#
# Environment:
#   GITHUB_TOKEN              may manage the hooks (organisation owner, or repository admin)
#   DEPLOYKEY_URL             the service's public URL, e.g. https://deploykey.example.internal
#   DEPLOYKEY_WEBHOOK_SECRET  the value the service has as DEPLOYKEY_WEBHOOK_<HOSTID>_SECRET;
#                             make it with `openssl rand -hex 32`
#   GITHUB_API_URL            default https://api.github.com (GitHub Enterprise: https://HOST/api/v3)
#   HOST_ID                   the service's id for this host (hosts[].id), default github
#
# The secret travels on stdin, never on a command line other users of the machine could read.
set -eu
case "$DEPLOYKEY_WEBHOOK_SECRET" in
  '' | *[!A-Za-z0-9._~-]*) echo "${0##*/}: DEPLOYKEY_WEBHOOK_SECRET must be letters, digits and ._~- (openssl rand -hex 32)" >&2 && exit 2 ;;
esac
target="${1:?usage: github-webhook.sh ORG | OWNER/REPOSITORY}"
case "$target" in
  */*) hooks="repos/$target/hooks" ;;
  *) hooks="orgs/$target/hooks" ;;
esac
answer="$(mktemp)"
printf '{"name":"web","active":true,"events":["workflow_job","workflow_run"],"config":{"url":"%s/v1/webhooks/github/%s","content_type":"json","insecure_ssl":"0","secret":"%s"}}' \
  "$DEPLOYKEY_URL" "${HOST_ID:-github}" "$DEPLOYKEY_WEBHOOK_SECRET" |
  curl -sS --fail-with-body -o "$answer" -X POST "${GITHUB_API_URL:-https://api.github.com}/$hooks" \
    -H "Authorization: Bearer $GITHUB_TOKEN" \
    -H 'Accept: application/vnd.github+json' \
    -H 'X-GitHub-Api-Version: 2022-11-28' \
    -H 'Content-Type: application/json' \
    --data-binary @- || { cat "$answer" >&2; rm -f "$answer"; exit 1; }
rm -f "$answer"
echo "GitHub will send workflow_job and workflow_run events of $target to $DEPLOYKEY_URL"
