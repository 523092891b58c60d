# syntax=docker/dockerfile:1
# deploykey-rotator. Build: docker build -t deploykey-rotator .
#
# The build stage type-checks and compiles the sources (`npm run build`); the image runs that
# compiled JavaScript directly, with no transpiler loaded at run time: about 50 MB less resident
# memory per process and a faster start than running the sources through tsx as a checkout does.
# What the code reads at run time (package.json, migrations/, the console's files in src/ui/) is
# found from the project root, so it sits where it does in a checkout.

ARG NODE_IMAGE=node:24-bookworm-slim

FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund

FROM deps AS build
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

FROM ${NODE_IMAGE} AS runtime
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY migrations ./migrations
COPY src/ui ./src/ui
COPY --from=build /app/dist ./dist
# Listen on every interface of the container; the default 127.0.0.1 is unreachable from outside.
ENV HOST=0.0.0.0 \
    PORT=8080
# A numeric user, so Kubernetes' runAsNonRoot can verify it. The files above stay root-owned and
# read-only to the service.
USER 10001:10001
EXPOSE 8080
ENTRYPOINT ["node", "dist/src/cli/main.js"]
CMD ["serve"]
