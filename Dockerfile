# One image for every Chirp process: the six gRPC services, the gateway and
# the one-shot migration job. docker-compose.yml picks the entry point per
# service, e.g. `node_modules/.bin/tsx services/user/main.ts`.
#
# TypeScript runs through tsx, which is a runtime dependency, so the image
# carries runtime dependencies only: no compiler, no buf, no test runner.
# argon2 (password hashing) compiles its native addon at install time: the
# binary it ships needs a newer N-API than Node 20 has. The toolchain stays in
# the build stage; the image gets only the built node_modules.
FROM node:20-bookworm-slim AS deps
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
# Dependencies first, so a source change does not reinstall them.
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund \
 && npm cache clean --force

FROM node:20-bookworm-slim

# 16 MiB semi-spaces, pinned: short scavenge pauses (devcluster/launch.ts NODE_FLAGS).
ENV NODE_ENV=production \
    NODE_OPTIONS=--max-semi-space-size=16
WORKDIR /app
COPY --from=deps /app/node_modules node_modules/
COPY package.json package-lock.json ./

# Runtime sources only (see .dockerignore for what stays out: tests, protos,
# benchmarks). Owned by root and read-only for the `node` user that runs them.
COPY tsconfig.json ./
COPY shard-config/ shard-config/
COPY gen/ gen/
COPY lib/ lib/
COPY services/ services/
COPY gateway/ gateway/
COPY scripts/ scripts/
# The CLI (scripts/cli) finds a local cluster's addresses through the harness.
COPY devcluster/ devcluster/

# In a container every listener must be reachable from the other containers.
ENV CHIRP_BIND_HOST=0.0.0.0 \
    CHIRP_GATEWAY_HOST=0.0.0.0

# Mount points of the token key volume (docker-compose `keys` job) and the
# media blob store, owned by the user that writes there.
RUN mkdir /keys /media && chown node:node /keys /media

USER node

# Gateway, service gRPC ports, service metrics/health ports.
EXPOSE 8080 50051-50056 9101-9106

# Health checks differ per process (each has its own /healthz port), so they
# are declared per service in docker-compose.yml rather than here.
CMD ["node_modules/.bin/tsx", "gateway/main.ts"]
