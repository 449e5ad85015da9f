# Switchboard in a container. Build from the repository root:
#   docker build -t switchboard .
#   docker run -p 5005:5005 -v "$PWD/credentials.yml:/app/credentials.yml:ro" switchboard \
#     node dist/run.js --credentials credentials.yml
# examples/docker-compose.yml runs it with Redis and Prometheus.

# --- build: the compiler and every dev dependency, only here -------------------------------------------------------
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: `prepare` compiles, and the sources are not copied yet (this layer is cached until the lock changes).
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.base.json ./
COPY src ./src
COPY channels ./channels
# The host and the built-in channels only (not the tests, not the example channel package).
RUN npx tsc -b src channels

# --- runtime: production dependencies and the compiled code, as a non-root user ------------------------------------
FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production \
    PORT=5005
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
# The built-in moodbot (the bot when no --bot is given) and the annotated credentials of every channel.
COPY examples/moodbot ./examples/moodbot
COPY credentials.example.yml README.md ./
# The image's `node` user (uid 1000): the server needs no privileges, and owns none of its files.
USER node
EXPOSE 5005
# Ready: listening, not draining, every channel started. The slim image has no curl; node has fetch.
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch(`http://127.0.0.1:${process.env.PORT || 5005}/health/ready`).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# Exec form: node is PID 1 and receives SIGTERM itself, so it drains its queue before it exits (no shell in between).
STOPSIGNAL SIGTERM
CMD ["node", "dist/run.js"]
