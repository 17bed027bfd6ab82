# The bctest harness as an image, for CI runners that publish scorecards. It drives
# the host's Docker Engine through a mounted socket and reaches nodes on the host's
# 127.0.0.1, so run it with the host network:
#   docker run --rm --network host -v /var/run/docker.sock:/var/run/docker.sock \
#     -v "$PWD/runs:/work/runs" bctest/harness:0.2.0 run suites/quickstart.yaml
# iptables and iproute2: the image is also the Swarm runtime's per-host agent, which runs
# them inside node containers' network namespaces (harness/runtime/agent.py, docs/swarm.md).
# Build it with `bctest images harness` (a wheelhouse made on the host, so the build
# needs no registry and no CA inside the build) or plainly with `docker build .`.
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}
ARG PIP_ARGS=""
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \
    iptables iproute2 \
 && rm -rf /var/lib/apt/lists/* \
 && python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    BCTEST_HOME=/opt/bctest \
    PYTHONDONTWRITEBYTECODE=1
COPY . /opt/bctest
RUN pip install --no-cache-dir $PIP_ARGS /opt/bctest && rm -rf /opt/bctest/.wheels
WORKDIR /work
ENTRYPOINT ["bctest"]
CMD ["--help"]
