# The sdte daemon in a container (docs/guide.md, "Run it as a service"). Built from this checkout:
# the image installs what `npm pack` packs (the same package as `npm install -g`), so no tests,
# benchmarks or dev dependencies are in it.
#   docker build -t sdte .
#   docker run -d --name sdte -v sdte-data:/data -p 4001:4001 --stop-timeout 20 sdte daemon --role relay
FROM node:22-bookworm-slim

# npm pack needs no dependencies (--ignore-scripts: its `prepare` would build the package bundle of a checkout,
# which an installed package does not use); the install takes them from the registry.
COPY . /src
RUN cd /src \
 && npm pack --ignore-scripts --pack-destination /tmp \
 && npm install -g --omit=dev --no-audit --no-fund /tmp/sdte-*.tgz \
 && rm -rf /src /tmp/sdte-*.tgz /root/.npm

# The datadir (keys, store, config.json, the control API's api and api-token files): keep it on a
# volume. It is the `node` user's (uid 1000), and its keys never leave it.
ENV SDTE_DATADIR=/data
# libp2p on every interface of the container, on a fixed port to publish (the default is loopback only).
ENV SDTE_LISTEN=/ip4/0.0.0.0/tcp/4001
RUN mkdir -m 0700 /data && chown node:node /data
VOLUME /data
USER node
EXPOSE 4001

# Healthy while the daemon answers its control API (admin_info, admin_peers): `sdte status` exits 0.
# The control API listens on the container's 127.0.0.1 only, so the check runs inside it.
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 CMD ["sdte", "status"]

# bin/sdte execs node, so node is PID 1 and gets docker stop's SIGTERM: a graceful stop
# (shutdownTimeoutMs, 15 s; hence --stop-timeout 20 above, docker's default is 10 s).
ENTRYPOINT ["sdte"]
CMD ["daemon"]
