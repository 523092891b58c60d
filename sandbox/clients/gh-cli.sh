#!/usr/bin/env bash
# Drives the GitHub stand-in with the gh CLI, which talks to a host other than github.com only
# as a GitHub Enterprise Server: over https, REST under /api/v3. Not run by CI (its machines do
# not have gh). To run it by hand on Debian:
#
#   apt-get install -y gh jq
#   npm run --silent sandbox -- --json --tls > /tmp/sandbox.json &   # wait for the line to appear
#   bash sandbox/clients/gh-cli.sh /tmp/sandbox.json
#
# It adds a read-only deploy key with `gh repo deploy-key add`, lists and deletes it, and prints
# each command's outcome. sandbox/README.md records the last results.
set -uo pipefail
line=$(head -n 1 "${1:?usage: gh-cli.sh SANDBOX_JSON_FILE}")

GH_HOST=$(jq -r '.tls.github | sub("^https://"; "")' <<<"$line")
GH_ENTERPRISE_TOKEN=$(jq -r .github.token <<<"$line")
SSL_CERT_FILE=$(jq -r .tls.caFile <<<"$line")
GH_CONFIG_DIR=$(mktemp -d)
export GH_HOST GH_ENTERPRISE_TOKEN SSL_CERT_FILE GH_CONFIG_DIR GH_PROMPT_DISABLED=1 GH_NO_UPDATE_NOTIFIER=1
repo="$GH_HOST/acme/models"
keyfile="$GH_CONFIG_DIR/deploy"
ssh-keygen -q -t ed25519 -N '' -f "$keyfile"

run() {
  local name=$1
  shift
  if output=$("$@" 2>&1); then echo "ok      $name  ${output//$'\n'/ | }"; else echo "FAILED  $name  ${output//$'\n'/ | }"; fi
}

run "gh --version" gh --version
run "gh api /user" gh api /user --jq .login
run "gh repo deploy-key add" gh repo deploy-key add "$keyfile.pub" -R "$repo" --title gh-cli
run "gh repo deploy-key list" gh repo deploy-key list -R "$repo"
id=$(gh api repos/acme/models/keys --jq '.[] | select(.title == "gh-cli") | .id')
run "gh repo deploy-key delete" gh repo deploy-key delete "$id" -R "$repo"
run "gh repo deploy-key list (after)" gh repo deploy-key list -R "$repo"
# Both of these read the viewer through GraphQL, which the stand-in does not serve.
run "gh auth status" gh auth status
run "gh repo view" gh repo view "$repo"
rm -rf "$GH_CONFIG_DIR"
