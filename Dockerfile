# syntax=docker/dockerfile:1
# deploykey-rotator. Build: docker build -t deploykey-rotator .
#
# The image runs the TypeScript sources through tsx, exactly as `node bin/deploykey.js` does in a
# checkout (tsx is a production dependency). The build stage type-checks and compiles them with
# `npm run build`, so an image is only produced from sources that compile, but dist/ is not
# shipped: bin/deploykey.js does not look for it, and the compiled migrate step would look for
# dist/migrations.

ARG NODE_IMAGE=node:20-bookworm-slim

FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund

FROM deps AS build
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY sandbox ./sandbox
RUN npm run build

FROM ${NODE_IMAGE} AS runtime
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY bin ./bin
COPY migrations ./migrations
COPY --from=build /app/src ./src
# Listen on every interface of the container; the default 127.0.0.1 is unreachable from outside.
ENV HOST=0.0.0.0 \
    PORT=8080
# A numeric user, so Kubernetes' runAsNonRoot can verify it. The files above stay root-owned and
# read-only to the service.
USER 10001:10001
EXPOSE 8080
ENTRYPOINT ["node", "bin/deploykey.js"]
CMD ["serve"]
