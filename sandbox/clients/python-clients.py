#!/usr/bin/python3
"""Drives the sandbox's stand-ins with the mainstream Python clients of the real services.

Not run by CI (its machines do not have these clients). To run it by hand on Debian:

    apt-get install -y python3-github python3-gitlab python3-hvac
    npm run --silent sandbox -- --json --tls > /tmp/sandbox.json &   # wait for the line to appear
    /usr/bin/python3 sandbox/clients/python-clients.py /tmp/sandbox.json

It runs, per client, the first calls such a client makes and a deploy-key (or KV) cycle of
create, list, get, update, enable and delete, over plain HTTP and over the --tls listeners,
and prints one line per step: ok or the error. sandbox/README.md records the last results.
"""
import importlib.metadata
import json
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


def main():
    with open(sys.argv[1], encoding="utf-8") as handle:
        line = json.loads(handle.readline())
    tls = line.get("tls")
    pygithub(line, line["github"]["api"], "http", True)
    python_gitlab(line, line["gitlab"]["api"].removesuffix("/api/v4"), "http", True)
    hvac_client(line, line["vault"]["addr"], "http", True)
    if tls:
        pygithub(line, f"{tls['github']}/api/v3", "https, /api/v3", tls["caFile"])
        python_gitlab(line, tls["gitlab"].removesuffix("/api/v4"), "https", tls["caFile"])
        hvac_client(line, tls["vault"], "https", tls["caFile"])
    width = max(len(name) for _, name, _, _ in results)
    for client, name, outcome, detail in results:
        print(f"{client:34} {name:{width}} {outcome:6} {detail[:100]}")
    sys.exit(1 if any(outcome != "ok" for _, _, outcome, _ in results) else 0)


if __name__ == "__main__":
    main()
