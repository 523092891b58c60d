#!/usr/bin/python3
"""Drives the sandbox's stand-ins with the mainstream Python clients of the real services.

Not run by CI (its machines do not have these clients). To run it by hand on Debian:

    apt-get install -y python3-github python3-gitlab python3-hvac
    npm run --silent sandbox -- --json --tls > /tmp/sandbox.json &   # wait for the line to appear
    /usr/bin/python3 sandbox/clients/python-clients.py /tmp/sandbox.json

It runs, per client, the first calls such a client makes and a deploy-key (or KV) cycle of
create, list, get, update, enable and delete, over plain HTTP and over the --tls listeners;
then what the stand-ins gained since: the sandbox's GitHub App (installation lookup, an
installation token and a deploy-key cycle with it), GitLab list paging and the token's own
expiry, Vault token TTLs, renewal and revocation, and AppRole login. It prints one line per
step: ok or the error. sandbox/README.md records the last results.
"""
import importlib.metadata
import json
import os
import subprocess
import sys
import tempfile
import traceback

results = []


def step(client, name, call):
    try:
        detail = call()
        results.append((client, name, "ok", "" if detail is None else str(detail)))
        return detail
    except Exception as error:  # noqa: BLE001 - every failure is a result to report
        results.append((client, name, "FAILED", f"{type(error).__name__}: {error}"))
        traceback.print_exc(file=sys.stderr)
        return None


def new_public_key():
    with tempfile.TemporaryDirectory() as directory:
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", f"{directory}/k"], check=True)
        with open(f"{directory}/k.pub", encoding="utf-8") as handle:
            return handle.read().strip()


def pygithub(line, base_url, label, verify):
    import github

    client = f"PyGithub {importlib.metadata.version('PyGithub')} ({label})"
    gh = github.Github(base_url=base_url, login_or_token=line["github"]["token"], verify=verify)
    step(client, "get_user().login", lambda: gh.get_user().login)
    step(client, "get_rate_limit().core", lambda: gh.get_rate_limit().core.limit)
    repo = step(client, "get_repo('acme/models')", lambda: gh.get_repo("acme/models"))
    if repo is None:
        return
    step(client, "repo.ssh_url", lambda: repo.ssh_url)
    key = step(client, "repo.create_key(read_only=True)", lambda: repo.create_key("pygithub", new_public_key(), read_only=True))
    if key is None:
        return
    step(client, "repo.get_keys()", lambda: [k.id for k in repo.get_keys()] == [key.id] or "unexpected list")
    step(client, "repo.get_key(id).read_only", lambda: repo.get_key(key.id).read_only)
    step(client, "key.delete()", key.delete)
    step(client, "get_keys() after delete", lambda: len(list(repo.get_keys())))


def pygithub_app(line, base_url, label, ca_file):
    import github

    # GithubIntegration calls requests itself, without a verify option: it takes the CA from the
    # environment, as its users do.
    if ca_file:
        os.environ["REQUESTS_CA_BUNDLE"] = ca_file
    client = f"PyGithub {importlib.metadata.version('PyGithub')} ({label})"
    app = line["github"]["app"]
    with open(app["privateKeyPath"], encoding="utf-8") as handle:
        integration = github.GithubIntegration(app["id"], handle.read(), base_url=base_url)
    step(client, "GithubIntegration.get_installation('acme', 'models').id", lambda: integration.get_installation("acme", "models").id)
    token = step(client, "get_access_token(installation_id)", lambda: integration.get_access_token(app["installationId"]))
    if token is None:
        return
    step(client, "access token expires_at", lambda: token.expires_at)
    repo = github.Github(base_url=base_url, login_or_token=token.token, verify=ca_file or True).get_repo("acme/models")
    key = step(client, "as installation: create_key(read_only=True)", lambda: repo.create_key("pygithub-app", new_public_key(), read_only=True))
    if key is not None:
        step(client, "as installation: get_keys()", lambda: [k.id for k in repo.get_keys()] == [key.id] or "unexpected list")
        step(client, "as installation: key.delete()", key.delete)

    def refused_user():
        try:
            github.Github(base_url=base_url, login_or_token=token.token, verify=ca_file or True).get_user().login
        except github.GithubException as error:
            if error.status == 403:
                return f"403 {error.data['message']}, as GitHub answers an installation"
            raise
        raise AssertionError("an installation token read GET /user")

    step(client, "as installation: get_user() refused", refused_user)
    os.environ.pop("REQUESTS_CA_BUNDLE", None)


def python_gitlab(line, url, label, verify):
    import gitlab

    client = f"python-gitlab {gitlab.__version__} ({label})"
    gl = gitlab.Gitlab(url=url, private_token=line["gitlab"]["token"], ssl_verify=verify)
    step(client, "auth(); user.username", lambda: (gl.auth(), gl.user.username)[1])
    step(client, "version()", gl.version)
    project = step(client, "projects.get('acme/models')", lambda: gl.projects.get("acme/models"))
    other = step(client, "projects.get('acme/datasets')", lambda: gl.projects.get("acme/datasets"))
    if project is None or other is None:
        return
    key = step(client, "keys.create()", lambda: project.keys.create({"title": "python-gitlab", "key": new_public_key()}))
    if key is None:
        return
    step(client, "keys.create() -> attributes", lambda: sorted(key.attributes))
    step(client, "keys.list()", lambda: [k.id for k in project.keys.list()] == [key.id] or "unexpected list")
    step(client, "keys.get(id).can_push", lambda: project.keys.get(key.id).can_push)
    second = step(client, "keys.create() (second key)", lambda: project.keys.create({"title": "python-gitlab-2", "key": new_public_key()}))
    step(client, "keys.list(per_page=1, get_all=True)", lambda: len(project.keys.list(per_page=1, get_all=True)))
    step(client, "keys.list(per_page=1, iterator=True)", lambda: len(list(project.keys.list(per_page=1, iterator=True))))
    if second is not None:
        step(client, "second key.delete()", second.delete)
    step(client, "http_get('/personal_access_tokens/self')", lambda: gl.http_get("/personal_access_tokens/self")["expires_at"])

    def rename():
        key.title = "renamed"
        key.save()
        return project.keys.get(key.id).title

    step(client, "key.save() (PUT title)", rename)
    step(client, "other.keys.enable(id)", lambda: other.keys.enable(key.id)["id"] == key.id)
    step(client, "deploykeys.list() (admin)", lambda: [k.id for k in gl.deploykeys.list()])
    step(client, "key.delete()", key.delete)
    step(client, "other.keys.delete(id)", lambda: other.keys.delete(key.id))
    step(client, "keys.list() after delete", lambda: len(project.keys.list()) + len(other.keys.list()))


def hvac_client(line, url, label, verify):
    import hvac

    client = f"hvac {importlib.metadata.version('hvac')} ({label})"
    vault = hvac.Client(url=url, token=line["vault"]["token"], verify=verify)
    kv = vault.secrets.kv.v2
    mount = line["vault"].get("mount", "secret")
    step(client, "is_authenticated()", vault.is_authenticated)
    step(client, "sys.read_health_status()", lambda: vault.sys.read_health_status(method="GET")["initialized"])
    step(client, "sys.is_initialized()", vault.sys.is_initialized)
    step(client, "sys.is_sealed()", vault.sys.is_sealed)
    step(client, "sys.read_seal_status()", lambda: vault.sys.read_seal_status()["type"])
    step(client, "sys.read_leader_status()", lambda: vault.sys.read_leader_status()["ha_enabled"])
    step(client, "sys.list_mounted_secrets_engines()", lambda: sorted(vault.sys.list_mounted_secrets_engines()["data"]))
    path = "clients/hvac"
    step(client, "kv.v2.create_or_update_secret()", lambda: kv.create_or_update_secret(path=path, secret={"a": "1"}, mount_point=mount)["data"]["created_time"])
    step(client, "kv.v2.patch()", lambda: kv.patch(path=path, secret={"b": "2"}, mount_point=mount)["data"]["version"])
    step(client, "kv.v2.read_secret_version()", lambda: kv.read_secret_version(path=path, mount_point=mount)["data"]["data"])
    step(client, "kv.v2.list_secrets()", lambda: kv.list_secrets(path="clients", mount_point=mount)["data"]["keys"])
    step(client, "kv.v2.read_secret_metadata()", lambda: kv.read_secret_metadata(path=path, mount_point=mount)["data"]["current_version"])
    step(client, "kv.v2.delete_metadata_and_all_versions()", lambda: kv.delete_metadata_and_all_versions(path=path, mount_point=mount).status_code)
    step(client, "auth.token.lookup_self() ttl", lambda: vault.auth.token.lookup_self()["data"]["ttl"])
    child = step(client, "auth.token.create(ttl='1h', renewable=True)", lambda: vault.auth.token.create(ttl="1h", renewable=True)["auth"])
    if child is not None:
        other = hvac.Client(url=url, token=child["client_token"], verify=verify)
        step(client, "child: renew_self(increment='30m')", lambda: other.auth.token.renew_self(increment="30m")["auth"]["lease_duration"])
        step(client, "child: revoke_self()", lambda: other.auth.token.revoke_self().status_code)
        step(client, "child: is_authenticated() after revoke", other.is_authenticated)
    step(client, "approle: create_or_update_approle()", lambda: vault.auth.approle.create_or_update_approle("hvac", token_ttl="10m").status_code)
    role_id = step(client, "approle: read_role_id()", lambda: vault.auth.approle.read_role_id("hvac")["data"]["role_id"])
    secret_id = step(client, "approle: generate_secret_id()", lambda: vault.auth.approle.generate_secret_id("hvac")["data"]["secret_id"])
    if role_id and secret_id:
        login = hvac.Client(url=url, verify=verify)
        step(client, "approle: login() lease_duration", lambda: login.auth.approle.login(role_id, secret_id)["auth"]["lease_duration"])


def main():
    with open(sys.argv[1], encoding="utf-8") as handle:
        line = json.loads(handle.readline())
    tls = line.get("tls")
    pygithub(line, line["github"]["api"], "http", True)
    pygithub_app(line, line["github"]["api"], "http, App", None)
    python_gitlab(line, line["gitlab"]["api"].removesuffix("/api/v4"), "http", True)
    hvac_client(line, line["vault"]["addr"], "http", True)
    if tls:
        pygithub(line, f"{tls['github']}/api/v3", "https, /api/v3", tls["caFile"])
        pygithub_app(line, f"{tls['github']}/api/v3", "https, /api/v3, App", tls["caFile"])
        python_gitlab(line, tls["gitlab"].removesuffix("/api/v4"), "https", tls["caFile"])
        hvac_client(line, tls["vault"], "https", tls["caFile"])
    width = max(len(name) for _, name, _, _ in results)
    for client, name, outcome, detail in results:
        print(f"{client:40} {name:{width}} {outcome:6} {detail[:100]}")
    sys.exit(1 if any(outcome != "ok" for _, _, outcome, _ in results) else 0)


if __name__ == "__main__":
    main()
