// Built from src/action by `npm run build:action`; do not edit. CI checks it matches the sources.

// src/action/main.ts
import { randomBytes } from "node:crypto";
import { join as join2 } from "node:path";

// src/cli/client/credentials.ts
import { readFile } from "node:fs/promises";

// src/cli/client/client-error.ts
var EXIT = { ok: 0, failed: 1, usage: 2, refused: 3, notFound: 4 };
var ClientError = class extends Error {
  constructor(message, exitCode = EXIT.failed) {
    super(message);
    this.exitCode = exitCode;
    this.name = "ClientError";
  }
  exitCode;
};
function exitCodeForStatus(status) {
  if (status === 400 || status === 413 || status === 422) return EXIT.usage;
  if (status === 401 || status === 403) return EXIT.refused;
  if (status === 404) return EXIT.notFound;
  return EXIT.failed;
}

// src/cli/client/credentials.ts
var DEFAULT_AUDIENCE = "deploykey-rotator";
async function readTokenFile(path) {
  try {
    const text = (await readFile(path, "utf8")).trim();
    return text || void 0;
  } catch {
    return void 0;
  }
}
var pause = (ms) => new Promise((resolve2) => setTimeout(resolve2, ms));
async function fetchGithubIdToken(requestUrl, requestToken, audience, timeoutMs = 1e4) {
  if (!URL.canParse(requestUrl)) {
    throw new ClientError("ACTIONS_ID_TOKEN_REQUEST_URL is not a URL", EXIT.refused);
  }
  const url = `${requestUrl}${requestUrl.includes("?") ? "&" : "?"}audience=${encodeURIComponent(audience)}`;
  let lastFailure = "";
  for (let attempt = 1; attempt <= 3; attempt++) {
    let response;
    try {
      response = await fetch(url, {
        headers: { authorization: `Bearer ${requestToken}`, accept: "application/json" },
        signal: AbortSignal.timeout(timeoutMs)
      });
    } catch (error) {
      lastFailure = error.message;
      await pause(attempt * 500);
      continue;
    }
    if (response.ok) {
      const body = await response.json().catch(() => void 0);
      if (typeof body?.value === "string" && body.value) return body.value;
      throw new ClientError('the GitHub Actions OIDC token response has no "value"', EXIT.failed);
    }
    await response.body?.cancel();
    lastFailure = `HTTP ${response.status}`;
    if (response.status < 500) {
      throw new ClientError(
        `GitHub Actions refused the OIDC token request (${lastFailure}); does the job have "permissions: id-token: write"?`,
        EXIT.refused
      );
    }
    await pause(attempt * 500);
  }
  throw new ClientError(`could not get a GitHub Actions OIDC token: ${lastFailure}`, EXIT.failed);
}
async function discoverCredential(env2, options) {
  if (env2.token) return { token: env2.token, source: "DEPLOYKEY_TOKEN" };
  const { requestUrl, requestToken } = env2.github;
  if (requestUrl && requestToken) {
    const audience = options.audience ?? DEFAULT_AUDIENCE;
    return {
      token: await fetchGithubIdToken(requestUrl, requestToken, audience, options.timeoutMs),
      source: "GitHub Actions OIDC (ACTIONS_ID_TOKEN_REQUEST_URL)"
    };
  }
  if (env2.gitlab.idToken)
    return { token: env2.gitlab.idToken, source: `GitLab CI id token ${env2.gitlab.tokenVar}` };
  for (const path of options.k8sTokenFiles) {
    const token = await readTokenFile(path);
    if (token) return { token, source: `Kubernetes token file ${path}` };
  }
  throw new ClientError(
    `no credential found; looked for DEPLOYKEY_TOKEN, ACTIONS_ID_TOKEN_REQUEST_URL + ACTIONS_ID_TOKEN_REQUEST_TOKEN (GitHub Actions with "permissions: id-token: write"), ${env2.gitlab.tokenVar} (GitLab CI id_tokens) and the token file${options.k8sTokenFiles.length === 1 ? "" : "s"} ${options.k8sTokenFiles.join(", ")} (Kubernetes)`,
    EXIT.refused
  );
}

// src/cli/client/environment.ts
var DEFAULT_GITLAB_TOKEN_VAR = "DEPLOYKEY_ID_TOKEN";
var DEFAULT_K8S_TOKEN_FILES = [
  "/var/run/secrets/tokens/deploykey",
  "/var/run/secrets/kubernetes.io/serviceaccount/token"
];
var value = (env2, name) => {
  const text = env2[name]?.trim();
  return text ? text : void 0;
};
function readClientEnvironment(options = {}, env2 = process.env) {
  const tokenVar = options.gitlabTokenVar ?? DEFAULT_GITLAB_TOKEN_VAR;
  return {
    serviceUrl: value(env2, "DEPLOYKEY_URL"),
    token: value(env2, "DEPLOYKEY_TOKEN"),
    github: {
      requestUrl: value(env2, "ACTIONS_ID_TOKEN_REQUEST_URL"),
      requestToken: value(env2, "ACTIONS_ID_TOKEN_REQUEST_TOKEN"),
      runId: value(env2, "GITHUB_RUN_ID"),
      runAttempt: value(env2, "GITHUB_RUN_ATTEMPT")
    },
    gitlab: { tokenVar, idToken: value(env2, tokenVar), jobId: value(env2, "CI_JOB_ID") },
    kubernetes: {
      inPod: value(env2, "KUBERNETES_SERVICE_HOST") !== void 0,
      hostname: value(env2, "HOSTNAME")
    }
  };
}
var JOB_ID_SOURCES = "GITHUB_RUN_ID, CI_JOB_ID or a Kubernetes pod HOSTNAME";

// src/cli/client/issue.command.ts
import { createHash } from "node:crypto";

// src/model/values.ts
var HOST_ID = "[a-z][a-z0-9-]{0,31}";
var HOST_ID_PATTERN = `^${HOST_ID}$`;
var JOB_ID_PATTERN = "^(?!\\.\\.?$)[A-Za-z0-9._:-]{1,128}$";
var JOB_ID_RULE = 'must be 1 to 128 characters of A-Z a-z 0-9 . _ : - (and not "." or "..")';
var KEY_ID = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}";
var KEY_ID_PATTERN = `^${KEY_ID}$`;

// src/cli/duration.ts
var UNITS = { s: 1, m: 60, h: 3600, d: 86400 };
function parseDuration(text) {
  const match = /^(\d{1,9})([smhd]?)$/.exec(text.trim());
  if (!match) return void 0;
  return Number(match[1]) * (UNITS[match[2] || "s"] ?? 1);
}

// src/cli/client/service-client.ts
var ServiceProblem = class extends ClientError {
  constructor(message, status, code, body) {
    super(message, exitCodeForStatus(status));
    this.status = status;
    this.code = code;
    this.body = body;
    this.name = "ServiceProblem";
  }
  status;
  code;
  body;
};
var TRANSIENT = /* @__PURE__ */ new Set([429, 503, 504]);
var MAX_WAIT_SECONDS = 10;
var pause2 = (ms) => new Promise((resolve2) => setTimeout(resolve2, ms));
async function toProblem(response, credential) {
  const text = await response.text().catch(() => "");
  let body = {};
  try {
    const parsed = JSON.parse(text);
    if (parsed && typeof parsed === "object" && !Array.isArray(parsed)) body = parsed;
  } catch {
  }
  const what = body.code ?? (response.statusText || "error");
  const detail = (body.detail ?? body.title ?? text.slice(0, 200)).replace(/\s+/g, " ").trim();
  const refused = response.status === 401 ? ` (credential: ${credential.source})` : "";
  return new ServiceProblem(
    `${response.status} ${what}${detail ? `: ${detail}` : ""}${refused}`,
    response.status,
    body.code,
    body
  );
}
function retryDelayMs(response, attempt) {
  const header = Number(response.headers.get("retry-after"));
  const seconds = Number.isFinite(header) && header > 0 ? header : attempt;
  return Math.min(seconds, MAX_WAIT_SECONDS) * 1e3;
}
function send(options, url, method, init) {
  return fetch(url, {
    method,
    headers: {
      authorization: `Bearer ${options.credential.token}`,
      accept: "application/json, application/problem+json",
      ...init.body === void 0 ? {} : { "content-type": "application/json" },
      ...init.headers
    },
    ...init.body === void 0 ? {} : { body: JSON.stringify(init.body) },
    signal: AbortSignal.timeout(options.timeoutMs ?? 3e4)
  });
}
function createServiceClient(options) {
  const base = options.baseUrl.replace(/\/+$/, "");
  const retries = options.retries ?? 3;
  async function call(method, path, init = {}) {
    for (let attempt = 1; ; attempt++) {
      let response;
      try {
        response = await send(options, `${base}${path}`, method, init);
      } catch (error) {
        const { message, cause } = error;
        const reason = cause?.code ?? cause?.message ?? message;
        if (attempt <= retries) {
          await pause2(attempt * 1e3);
          continue;
        }
        throw new ClientError(`cannot reach the service at ${base}: ${reason}`, EXIT.failed);
      }
      if (response.ok) {
        return { status: response.status, headers: response.headers, body: await response.json() };
      }
      const problem = await toProblem(response, options.credential);
      const inProgress = response.status === 409 && problem.code === "request-in-progress";
      if ((TRANSIENT.has(response.status) || inProgress) && attempt <= retries) {
        await pause2(retryDelayMs(response, attempt));
        continue;
      }
      throw problem;
    }
  }
  return {
    async issueKey(request, idempotencyKey) {
      const { headers, body } = await call("POST", "/v1/keys", {
        body: request,
        headers: { "idempotency-key": idempotencyKey }
      });
      return { key: body, replayed: headers.get("idempotent-replayed") === "true" };
    },
    async completeJob(jobId) {
      return (await call(
        "POST",
        `/v1/jobs/${encodeURIComponent(jobId)}/complete`
      )).body;
    },
    async revokeKey(id) {
      return (await call("DELETE", `/v1/keys/${encodeURIComponent(id)}`)).body;
    },
    async listKeys(filter) {
      const items = [];
      let cursor = null;
      do {
        const query = new URLSearchParams({ limit: "200" });
        for (const [name, value2] of Object.entries(filter)) if (value2) query.set(name, value2);
        if (cursor) query.set("cursor", cursor);
        const page = (await call("GET", `/v1/keys?${query}`)).body;
        items.push(...page.items);
        cursor = page.nextCursor;
      } while (cursor);
      return items;
    }
  };
}

// src/cli/client/command-support.ts
var CONNECTION_HELP = `service and credential:
  --url URL                 the service (default: $DEPLOYKEY_URL)
  --gitlab-token-var NAME   variable holding the GitLab CI id token (default: ${DEFAULT_GITLAB_TOKEN_VAR})
  --k8s-token-file PATH     Kubernetes projected service account token
                            (default: ${DEFAULT_K8S_TOKEN_FILES.join(", then ")})
  --audience AUD            audience asked of GitHub Actions OIDC (default: deploykey-rotator)
  The credential is the first found of: DEPLOYKEY_TOKEN (API token or JWT), GitHub Actions OIDC
  (ACTIONS_ID_TOKEN_REQUEST_URL + ACTIONS_ID_TOKEN_REQUEST_TOKEN), the GitLab CI id token, the
  Kubernetes token file.

exit codes: 0 ok, 1 service or network error, 2 usage (a bad flag, or a request the service refused
  as invalid, such as an unknown provider), 3 authentication or authorization refused, 4 not found`;

// src/cli/client/key-files.ts
import { chmod, mkdir, rename, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
var shellQuote = (value2) => /^[\w./:=@%+,-]+$/.test(value2) ? value2 : `'${value2.replaceAll("'", `'\\''`)}'`;
function keyPaths(outDir) {
  const dir = resolve(outDir);
  return {
    dir,
    privateKey: join(dir, "id_ed25519"),
    knownHosts: join(dir, "known_hosts"),
    sshConfig: join(dir, "ssh_config")
  };
}
function gitSshCommand(paths) {
  return [
    "ssh -i",
    shellQuote(paths.privateKey),
    "-o IdentitiesOnly=yes",
    `-o UserKnownHostsFile=${shellQuote(paths.knownHosts)}`,
    "-o StrictHostKeyChecking=yes"
  ].join(" ");
}
function sshTarget(cloneUrl) {
  if (cloneUrl.startsWith("ssh://")) {
    try {
      const url = new URL(cloneUrl);
      return {
        host: url.hostname.replace(/^\[(.*)\]$/, "$1"),
        ...url.port ? { port: url.port } : {},
        ...url.username ? { user: decodeURIComponent(url.username) } : {}
      };
    } catch {
      return void 0;
    }
  }
  const scp = /^(?:([^@/]+)@)?([^:/]+):/.exec(cloneUrl);
  if (!scp?.[2]) return void 0;
  return { host: scp[2], ...scp[1] ? { user: scp[1] } : {} };
}
var configPath = (path) => `"${path.replaceAll('"', '\\"')}"`;
function sshConfigText(paths, cloneUrl, comment) {
  const target = sshTarget(cloneUrl);
  if (!target) return `# ${comment}
# no Host entry: the clone URL ${cloneUrl} names no SSH host
`;
  return [
    `# ${comment}`,
    `Host ${target.host}`,
    `  HostName ${target.host}`,
    ...target.port ? [`  Port ${target.port}`] : [],
    ...target.user ? [`  User ${target.user}`] : [],
    `  IdentityFile ${configPath(paths.privateKey)}`,
    "  IdentitiesOnly yes",
    `  UserKnownHostsFile ${configPath(paths.knownHosts)}`,
    "  StrictHostKeyChecking yes",
    ""
  ].join("\n");
}
async function writeAtomically(path, text, mode) {
  const temporary = `${path}.${process.pid}.tmp`;
  await writeFile(temporary, text, { mode });
  await chmod(temporary, mode);
  await rename(temporary, path);
}
async function writeKeyFiles(paths, files) {
  await mkdir(paths.dir, { recursive: true, mode: 448 });
  await chmod(paths.dir, 448);
  if (files.privateKey !== void 0) {
    const key = files.privateKey.endsWith("\n") ? files.privateKey : `${files.privateKey}
`;
    await writeAtomically(paths.privateKey, key, 384);
  }
  await writeAtomically(paths.knownHosts, files.knownHosts.map((line) => `${line}
`).join(""), 420);
  await writeAtomically(paths.sshConfig, files.sshConfig, 420);
}

// src/cli/client/issue.command.ts
var ISSUE_USAGE = `usage: deploykey issue --provider P --repo R [--job J] [--ttl 2h] [--out DIR]
                       [--delivery response|wrapped|vault] [--json] [--url URL]

Gets a short-lived, read-only deploy key for one repository and writes what git needs into DIR
(made mode 0700): id_ed25519 (mode 0600), known_hosts and ssh_config. Prints on stdout the
GIT_SSH_COMMAND to export and the git clone line. Run again in the same job, it returns the same key.

options:
  --provider P      Git host id configured in the service (github, gitlab, gitea, …)
  --repo R          owner/name (GitHub, Gitea), or the GitLab project path
  --job J           the job the key is for
                    (default from ${JOB_ID_SOURCES})
  --ttl D           lifetime: 3600, 30m, 2h, 1d (default: the service's)
  --out DIR         where the files go (default: ./.deploykey)
  --delivery M      response: the key is written to DIR (default); vault: it stays in Vault and
                    its path is printed; wrapped: a single-use Vault wrap token is printed
  --json            one JSON object (keyId, cloneUrl, gitSshCommand, paths, expiresAt), never the key

${CONNECTION_HELP}

examples:
  eval "$(deploykey issue --provider github --repo acme/models)"   # exports GIT_SSH_COMMAND, clones
  deploykey issue --provider gitlab --repo acme/models --ttl 30m --json
  deploykey issue --provider gitea --repo acme/models --ttl 1h     # a self-hosted Gitea or Forgejo
  DEPLOYKEY_TOKEN=dkr_… deploykey issue --provider github --repo acme/models --job nightly-42 --out /tmp/k`;
function idempotencyKeyFor(jobId, provider, repository) {
  const digest = createHash("sha256").update(`deploykey-cli\0${jobId}\0${provider}\0${repository}`).digest("hex");
  return `deploykey-cli-${digest.slice(0, 40)}`;
}
var MAX_FRESH_STARTS = 5;
async function issueIdempotently(client, request) {
  const base = idempotencyKeyFor(request.jobId, request.provider, request.repository);
  for (let start = 0; ; start++) {
    try {
      return await client.issueKey(request, start === 0 ? base : `${base}.${start}`);
    } catch (error) {
      const failedBefore = error instanceof ServiceProblem && error.code === "idempotent-request-failed";
      if (!failedBefore || start >= MAX_FRESH_STARTS) throw error;
      console.error(
        `deploykey: an earlier attempt for job ${request.jobId} failed (${error.message}); trying afresh`
      );
    }
  }
}

// src/action/runner.ts
import { randomUUID } from "node:crypto";
import { appendFileSync } from "node:fs";
function getInput(name, env2 = process.env) {
  return (env2[`INPUT_${name.replaceAll(" ", "_").toUpperCase()}`] ?? "").trim();
}
function appendFileCommand(fileVariable, name, value2, env2) {
  const file = env2[fileVariable];
  if (!file) throw new Error(`${fileVariable} is not set: this runs as a step of a GitHub Actions job`);
  const delimiter = `ghadelimiter_${randomUUID()}`;
  if (name.includes(delimiter) || value2.includes(delimiter)) throw new Error("value contains the delimiter");
  appendFileSync(file, `${name}<<${delimiter}
${value2}
${delimiter}
`, "utf8");
}
function exportVariable(name, value2, env2 = process.env) {
  appendFileCommand("GITHUB_ENV", name, value2, env2);
  process.env[name] = value2;
}
function setOutput(name, value2, env2 = process.env) {
  appendFileCommand("GITHUB_OUTPUT", name, value2, env2);
}
function saveState(name, value2, env2 = process.env) {
  appendFileCommand("GITHUB_STATE", name, value2, env2);
}
var escapeData = (text) => text.replaceAll("%", "%25").replaceAll("\r", "%0D").replaceAll("\n", "%0A");
function setSecret(secret) {
  for (const line of secret.split("\n")) {
    if (line.trim()) process.stdout.write(`::add-mask::${escapeData(line.trim())}
`);
  }
}
function info(message) {
  process.stdout.write(`${message}
`);
}
function setFailed(message) {
  process.stdout.write(`::error::${escapeData(message)}
`);
  process.exitCode = 1;
}

// src/action/main.ts
var env = process.env;
function required(value2, what) {
  if (!value2) throw new Error(`${what} is not set`);
  return value2;
}
function jobIdFor(given) {
  const jobId = given || [
    required(env.GITHUB_RUN_ID, "GITHUB_RUN_ID"),
    env.GITHUB_RUN_ATTEMPT || "1",
    (env.GITHUB_JOB || "job").replace(/[^A-Za-z0-9._-]/g, "_").slice(0, 64),
    randomBytes(4).toString("hex")
  ].join("-");
  if (!new RegExp(JOB_ID_PATTERN).test(jobId)) throw new Error(`input job "${jobId}" ${JOB_ID_RULE}`);
  return jobId;
}
async function main() {
  const url = getInput("url") || env.DEPLOYKEY_URL || "";
  if (!/^https?:\/\/[^\s/]+/.test(url)) throw new Error("input url must be the service, http(s)://…");
  const provider = getInput("provider") || "github";
  const repository = getInput("repository") || required(env.GITHUB_REPOSITORY, "GITHUB_REPOSITORY");
  const ttl = getInput("ttl");
  const ttlSeconds = ttl ? parseDuration(ttl) : void 0;
  if (ttl && !ttlSeconds) throw new Error(`input ttl "${ttl}" is not a duration such as 3600, 30m or 2h`);
  const audience = getInput("audience") || "deploykey-rotator";
  const jobId = jobIdFor(getInput("job"));
  const dir = join2(required(env.RUNNER_TEMP, "RUNNER_TEMP"), `deploykey-${randomBytes(6).toString("hex")}`);
  for (const [name, value2] of Object.entries({ jobId, url, audience, dir })) saveState(name, value2);
  const credential = await discoverCredential(readClientEnvironment(), { audience, k8sTokenFiles: [] });
  setSecret(credential.token);
  const client = createServiceClient({ baseUrl: url, credential });
  const { key, replayed } = await issueIdempotently(client, {
    provider,
    repository,
    jobId,
    delivery: "response",
    ...ttlSeconds ? { ttlSeconds } : {}
  });
  const privateKey = required(
    key.privateKey,
    'the service sent no private key; its policy must allow delivery "response"'
  );
  setSecret(
    privateKey.split("\n").filter((line) => !line.startsWith("-----")).join("\n")
  );
  const paths = keyPaths(dir);
  const comment = `deploykey key ${key.id} for ${key.provider} ${key.repository}, job ${jobId}, expires ${key.expiresAt}`;
  await writeKeyFiles(paths, {
    privateKey,
    knownHosts: key.knownHosts,
    sshConfig: sshConfigText(paths, key.cloneUrl, comment)
  });
  const sshCommand = gitSshCommand(paths);
  exportVariable("GIT_SSH_COMMAND", sshCommand);
  for (const [name, value2] of Object.entries({
    "key-id": key.id,
    "clone-url": key.cloneUrl,
    "ssh-command": sshCommand,
    "key-dir": paths.dir,
    "job-id": jobId,
    "expires-at": key.expiresAt
  })) {
    setOutput(name, value2);
  }
  info(
    `${replayed ? "Reusing" : "Issued"} deploy key ${key.id} for ${key.provider} ${key.repository} (read-only, expires ${key.expiresAt}).`
  );
  info(`GIT_SSH_COMMAND is set for the next steps: git clone ${key.cloneUrl}`);
  info("The post step of this job revokes the key, even if a later step fails.");
}
main().catch((error) => setFailed(`deploykey: ${error.message}`));
