// Built from src/action by `npm run build:action`; do not edit. CI checks it matches the sources.

// src/action/post.ts
import { rm } from "node:fs/promises";

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
var pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
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
async function discoverCredential(env, options) {
  if (env.token) return { token: env.token, source: "DEPLOYKEY_TOKEN" };
  const { requestUrl, requestToken } = env.github;
  if (requestUrl && requestToken) {
    const audience = options.audience ?? DEFAULT_AUDIENCE;
    return {
      token: await fetchGithubIdToken(requestUrl, requestToken, audience, options.timeoutMs),
      source: "GitHub Actions OIDC (ACTIONS_ID_TOKEN_REQUEST_URL)"
    };
  }
  if (env.gitlab.idToken)
    return { token: env.gitlab.idToken, source: `GitLab CI id token ${env.gitlab.tokenVar}` };
  for (const path of options.k8sTokenFiles) {
    const token = await readTokenFile(path);
    if (token) return { token, source: `Kubernetes token file ${path}` };
  }
  throw new ClientError(
    `no credential found; looked for DEPLOYKEY_TOKEN, ACTIONS_ID_TOKEN_REQUEST_URL + ACTIONS_ID_TOKEN_REQUEST_TOKEN (GitHub Actions with "permissions: id-token: write"), ${env.gitlab.tokenVar} (GitLab CI id_tokens) and the token file${options.k8sTokenFiles.length === 1 ? "" : "s"} ${options.k8sTokenFiles.join(", ")} (Kubernetes)`,
    EXIT.refused
  );
}

// src/cli/client/environment.ts
var DEFAULT_GITLAB_TOKEN_VAR = "DEPLOYKEY_ID_TOKEN";
var value = (env, name) => {
  const text = env[name]?.trim();
  return text ? text : void 0;
};
function readClientEnvironment(options = {}, env = process.env) {
  const tokenVar = options.gitlabTokenVar ?? DEFAULT_GITLAB_TOKEN_VAR;
  return {
    serviceUrl: value(env, "DEPLOYKEY_URL"),
    token: value(env, "DEPLOYKEY_TOKEN"),
    github: {
      requestUrl: value(env, "ACTIONS_ID_TOKEN_REQUEST_URL"),
      requestToken: value(env, "ACTIONS_ID_TOKEN_REQUEST_TOKEN"),
      runId: value(env, "GITHUB_RUN_ID"),
      runAttempt: value(env, "GITHUB_RUN_ATTEMPT")
    },
    gitlab: { tokenVar, idToken: value(env, tokenVar), jobId: value(env, "CI_JOB_ID") },
    kubernetes: {
      inPod: value(env, "KUBERNETES_SERVICE_HOST") !== void 0,
      hostname: value(env, "HOSTNAME")
    }
  };
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
var pause2 = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
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

// src/action/runner.ts
function getState(name, env = process.env) {
  return env[`STATE_${name}`] ?? "";
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

// src/action/post.ts
async function removeKeyFiles() {
  const dir = getState("dir");
  if (!dir) return;
  await rm(dir, { recursive: true, force: true }).catch(
    (error) => info(`::warning::deploykey: could not remove ${dir}: ${error.message}`)
  );
}
async function post() {
  const jobId = getState("jobId");
  if (!jobId) {
    info("deploykey: the main step asked for no key; nothing to revoke.");
    return;
  }
  const audience = getState("audience");
  const credential = await discoverCredential(readClientEnvironment(), { audience, k8sTokenFiles: [] });
  setSecret(credential.token);
  const client = createServiceClient({ baseUrl: getState("url"), credential });
  try {
    const done = await client.completeJob(jobId);
    for (const key of done.keys)
      info(`deploykey: revoking key ${key.id} for ${key.provider} ${key.repository}`);
    info(`deploykey: job ${jobId} complete; ${done.keys.length} key(s) being revoked.`);
    await removeKeyFiles();
  } catch (error) {
    if (error.status === 404) {
      info(`deploykey: the service has no key for job ${jobId}; nothing to revoke.`);
      await removeKeyFiles();
      return;
    }
    throw error;
  }
}
post().catch((error) => setFailed(`deploykey: could not revoke the job's keys: ${error.message}`));
