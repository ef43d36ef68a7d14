#!/usr/bin/env bash
# End-to-end test on a real cluster: kind, the chart, avi-sim and the kuard example.
#
#   make e2e-kind          (or hack/e2e-kind.sh)
#
# 1. creates a kind cluster (or reuses $KIND_CLUSTER if it exists);
# 2. builds the operator and avi-sim images from the Dockerfile, tagged with a hash of the
#    sources, and loads them into the nodes;
# 3. runs avi-sim in namespace avi-sim behind a Service, with its built-in seed controller (the
#    kuard pool, 1000 users arriving at 5/s) on a faster clock, and reads the CA it generated;
# 4. installs the chart (2 replicas, leader election) in namespace avi-autoscaler;
# 5. applies examples/kuard: its AviController pointed at avi-sim with the CA trusted, its
#    Secrets in the operator's namespace, and the rest in a fresh application namespace;
# 6. waits until kuard is scaled to maxReplicas (5) by the operator, checks the Ready condition,
#    the SuccessfulRescale event, the Lease and the metrics Service.
# On failure it prints the state of the cluster and the logs. A cluster it created is deleted
# at the end unless KEEP_CLUSTER=true.
#
# Reruns on a kept cluster test what this run built: the image tag changes with the sources
# (so `helm upgrade` rolls the operator), avi-sim restarts with this run's password (its load
# starts again with the process), and the example's namespace is recreated, so that neither the
# scale nor the events of an earlier run count.
#
# Needs docker, kind, kubectl and helm. Settings (environment):
#   KIND_CLUSTER      cluster name (default avi-autoscaler-e2e)
#   KEEP_CLUSTER      true: keep a cluster this script created (default false)
#   IMAGE_TAG         tag of the images built and loaded (default e2e-<hash of the sources>)
#   E2E_TIMEOUT       seconds to wait for the scale-up (default 600)
#   E2E_KIND_DRY_RUN  1: print the commands (and the manifests they read) instead of running
#                     them; needs none of the tools
set -euo pipefail
cd "$(dirname "$0")/.."

DRY_RUN=${E2E_KIND_DRY_RUN:-0}
if [ "$DRY_RUN" != 1 ]; then
  for tool in docker kind kubectl helm; do
    if ! command -v "$tool" >/dev/null 2>&1; then
      echo "e2e-kind: $tool is required (see the README, \"End-to-end test on kind\")" >&2
      exit 1
    fi
  done
fi

# A hash of the build context: the files git knows (tracked, or untracked and not ignored), or
# every file outside build output when this is not a git checkout. Same sources, same tag.
source_hash() {
  local files
  if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    files=$(git ls-files --cached --others --exclude-standard)
  else
    files=$(find . -type f -not -path './.git/*' -not -path './target/*' -not -path './.venv/*' \
      -not -path './out/*' -not -path './fuzz/target/*' | sed 's|^\./||')
  fi
  local file
  while IFS= read -r file; do
    # A file deleted from the work tree but still in the index is not in the context.
    if [ -f "$file" ]; then
      printf '%s\n' "$file"
      sha256sum <"$file"
    fi
  done < <(LC_ALL=C sort <<<"$files") | sha256sum | cut -c1-12
}

CLUSTER=${KIND_CLUSTER:-avi-autoscaler-e2e}
KEEP_CLUSTER=${KEEP_CLUSTER:-false}
IMAGE_TAG=${IMAGE_TAG:-e2e-$(source_hash)}
TIMEOUT=${E2E_TIMEOUT:-600}
# Marks what this run started, so that a kept cluster restarts it.
RUN_ID=$(date -u +%Y%m%dT%H%M%SZ)-$$

OPERATOR_IMAGE="avi-autoscaler:${IMAGE_TAG}"
SIM_IMAGE="avi-sim:${IMAGE_TAG}"
OPERATOR_NAMESPACE=avi-autoscaler
SIM_NAMESPACE=avi-sim
# The namespace, Deployment and AviAutoscaler of examples/kuard.
APP_NAMESPACE=routing-ns1
TARGET=kuard-deployment
AUTOSCALER=kuard
CONTROLLER=homelab-avi
MAX_REPLICAS=5
# avi-sim's endpoint as the operator sees it: the Service's cluster DNS name, which avi-sim
# puts in its certificate (--tls-san) so that the operator can verify it with the CA.
SIM_HOST="avi-sim.${SIM_NAMESPACE}.svc"
SIM_URL="https://${SIM_HOST}:8443"
# A fresh password for this run; avi-sim's user is admin.
SIM_PASSWORD="e2e-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"

KUBECTL=(kubectl --context "kind-${CLUSTER}")
HELM=(helm --kube-context "kind-${CLUSTER}")

log() { printf '\n==> %s\n' "$*"; }

# The commands of a dry run go to the script's standard output (fd 3), also from inside $(...).
exec 3>&1
# run CMD...: runs a command, or prints it in a dry run.
run() {
  if [ "$DRY_RUN" = 1 ]; then
    printf '+' >&3
    printf ' %q' "$@" >&3
    printf '\n' >&3
  else
    "$@"
  fi
}
# run_stdin CMD...: the same for a command that reads standard input; a dry run prints the input.
run_stdin() {
  if [ "$DRY_RUN" = 1 ]; then
    # The whole input first: in a pipe, the command before this one is then printed first.
    local input
    input=$(cat)
    run "$@"
    local line
    while IFS= read -r line; do
      printf '  | %s\n' "$line" >&3
    done <<<"$input"
  else
    "$@"
  fi
}

created_cluster=false

diagnose() {
  log "diagnostics"
  "${KUBECTL[@]}" get nodes -o wide || true
  "${KUBECTL[@]}" get all,leases -n "$OPERATOR_NAMESPACE" -o wide || true
  "${KUBECTL[@]}" get all -n "$SIM_NAMESPACE" -o wide || true
  "${KUBECTL[@]}" get all,aviautoscalers -n "$APP_NAMESPACE" -o wide || true
  "${KUBECTL[@]}" describe aviautoscaler "$AUTOSCALER" -n "$APP_NAMESPACE" || true
  "${KUBECTL[@]}" describe avicontroller "$CONTROLLER" || true
  "${KUBECTL[@]}" get events -A --sort-by=.lastTimestamp | tail -n 60 || true
  for namespace in "$OPERATOR_NAMESPACE" "$SIM_NAMESPACE"; do
    for pod in $("${KUBECTL[@]}" get pods -n "$namespace" -o name 2>/dev/null); do
      log "logs of $pod"
      "${KUBECTL[@]}" logs -n "$namespace" "$pod" --all-containers --tail=200 || true
    done
  done
}

finish() {
  local status=$?
  if [ "$status" -ne 0 ]; then
    diagnose
    echo "e2e-kind: FAILED" >&2
  fi
  if [ "$created_cluster" = true ] && [ "$KEEP_CLUSTER" != true ]; then
    kind delete cluster --name "$CLUSTER" || true
  fi
  exit "$status"
}
if [ "$DRY_RUN" != 1 ]; then
  trap finish EXIT
fi

log "cluster $CLUSTER"
# The list is read whole first: `grep -q` in a pipe could stop kind early and fail the pipe.
clusters=$(run kind get clusters 2>/dev/null || true)
if grep -qx "$CLUSTER" <<<"$clusters"; then
  echo "reusing the existing kind cluster $CLUSTER"
else
  run kind create cluster --name "$CLUSTER" --wait 180s
  created_cluster=true
fi

log "images $OPERATOR_IMAGE and $SIM_IMAGE"
# The commit for the binaries' User-Agent and --version (the build context has no .git).
GIT_SHA=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
run docker build --target avi-autoscaler --build-arg "AVI_AUTOSCALER_GIT_SHA=${GIT_SHA}" \
  --tag "$OPERATOR_IMAGE" .
run docker build --target avi-sim --build-arg "AVI_AUTOSCALER_GIT_SHA=${GIT_SHA}" \
  --tag "$SIM_IMAGE" .
run kind load docker-image --name "$CLUSTER" "$OPERATOR_IMAGE" "$SIM_IMAGE"

log "avi-sim in namespace $SIM_NAMESPACE (run $RUN_ID)"
run_stdin "${KUBECTL[@]}" apply -f - <<EOF
apiVersion: v1
kind: Namespace
metadata:
  name: ${SIM_NAMESPACE}
---
apiVersion: v1
kind: Secret
metadata:
  name: avi-sim-password
  namespace: ${SIM_NAMESPACE}
type: Opaque
stringData:
  password: "${SIM_PASSWORD}"
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: avi-sim
  namespace: ${SIM_NAMESPACE}
  labels: {app: avi-sim}
spec:
  replicas: 1
  # One simulator at a time: the old one stops before this run's starts.
  strategy: {type: Recreate}
  selector:
    matchLabels: {app: avi-sim}
  template:
    metadata:
      labels: {app: avi-sim}
      # A new value per run restarts avi-sim on a kept cluster: it reads this run's password,
      # and its seed load starts again with the process.
      annotations: {e2e-run: "${RUN_ID}"}
    spec:
      automountServiceAccountToken: false
      securityContext:
        runAsNonRoot: true
        seccompProfile: {type: RuntimeDefault}
      containers:
      - name: avi-sim
        image: ${SIM_IMAGE}
        imagePullPolicy: Never
        # The built-in seed controller (tenant admin, the kuard pool with its AKO-style name,
        # 1000 users arriving at 5/s), its clock 10 times faster: a 300 s metric bucket closes
        # every 30 s.
        args:
        - --listen=0.0.0.0:8443
        - --password=\$(AVI_SIM_PASSWORD)
        - --ca-out=/var/run/avi-sim/ca.crt
        - --tls-san=${SIM_HOST}
        - --time-scale=10
        env:
        - name: AVI_SIM_PASSWORD
          valueFrom:
            secretKeyRef: {name: avi-sim-password, key: password}
        ports:
        - {name: https, containerPort: 8443}
        readinessProbe:
          tcpSocket: {port: https}
          periodSeconds: 2
        securityContext:
          allowPrivilegeEscalation: false
          readOnlyRootFilesystem: true
          capabilities: {drop: [ALL]}
        volumeMounts:
        - {name: run, mountPath: /var/run/avi-sim}
      volumes:
      - name: run
        emptyDir: {}
---
apiVersion: v1
kind: Service
metadata:
  name: avi-sim
  namespace: ${SIM_NAMESPACE}
spec:
  selector: {app: avi-sim}
  ports:
  - {name: https, port: 8443, targetPort: https}
EOF
# Waits until the old pod is gone too, so that exec reaches this run's avi-sim.
run "${KUBECTL[@]}" rollout status deployment/avi-sim -n "$SIM_NAMESPACE" --timeout=180s
# avi-sim writes its CA before it listens, and the pod is ready once it listens.
SIM_CA=$(run "${KUBECTL[@]}" exec -n "$SIM_NAMESPACE" deployment/avi-sim -- cat /var/run/avi-sim/ca.crt)
if [ "$DRY_RUN" = 1 ]; then
  SIM_CA="<the CA avi-sim wrote>"
elif ! grep -q "BEGIN CERTIFICATE" <<<"$SIM_CA"; then
  echo "e2e-kind: avi-sim's --ca-out file holds no PEM certificate" >&2
  exit 1
fi

log "the chart in namespace $OPERATOR_NAMESPACE"
# --set-string: a tag of digits only must stay a string (the values schema refuses a number).
# The run annotation rolls the operator even when the sources, and so the tag, did not change.
# The chart's defaults: examples/kuard uses an AviController, whose Secrets the operator reads
# in its own namespace only.
run "${HELM[@]}" upgrade --install avi-autoscaler config/helm/avi-autoscaler \
  --namespace "$OPERATOR_NAMESPACE" --create-namespace \
  --set-string image.repository=avi-autoscaler \
  --set-string image.tag="$IMAGE_TAG" \
  --set-string image.pullPolicy=Never \
  --set-string logFormat=text \
  --set-string logLevel=info \
  --set-string podAnnotations.e2e-run="$RUN_ID" \
  --wait --timeout 5m
run "${KUBECTL[@]}" rollout status deployment/avi-autoscaler -n "$OPERATOR_NAMESPACE" --timeout=180s

log "examples/kuard: AviController $CONTROLLER pointed at $SIM_URL, the rest in a fresh namespace $APP_NAMESPACE"
# An earlier run's namespace holds a scaled Deployment, a Ready status and rescale events.
run "${KUBECTL[@]}" delete namespace "$APP_NAMESPACE" --ignore-not-found --wait=true --timeout=180s
# The example's Secret holds placeholders: create the real ones instead, in the operator's
# namespace (its cluster-resource namespace), where the AviController's Secrets are read.
run "${KUBECTL[@]}" create secret generic avi-basic-auth -n "$OPERATOR_NAMESPACE" \
  --from-literal=username=admin --from-literal=password="$SIM_PASSWORD" \
  --dry-run=client -o yaml | run_stdin "${KUBECTL[@]}" apply -f -
run "${KUBECTL[@]}" create secret generic avi-ca -n "$OPERATOR_NAMESPACE" \
  --from-literal=ca.crt="$SIM_CA" \
  --dry-run=client -o yaml | run_stdin "${KUBECTL[@]}" apply -f -
# The example's AviController, changed before it reaches the cluster: the operator never sees
# the example's controller address.
run "${KUBECTL[@]}" patch --local -f examples/kuard/avicontroller.yaml --type merge -o yaml -p "$(cat <<EOF
{"spec": {
  "endpoints": ["${SIM_URL}"],
  "tls": {"caSecretRef": {"name": "avi-ca", "key": "ca.crt"}}
}}
EOF
)" | run_stdin "${KUBECTL[@]}" apply -f -
run "${KUBECTL[@]}" apply -f examples/kuard/namespace.yaml
run "${KUBECTL[@]}" apply -f examples/kuard/deployment.yaml
run "${KUBECTL[@]}" apply -f examples/kuard/aviautoscaler.yaml

log "waiting up to ${TIMEOUT}s for $TARGET to be scaled to $MAX_REPLICAS"
run "${KUBECTL[@]}" wait deployment/"$TARGET" -n "$APP_NAMESPACE" \
  --for=jsonpath='{.spec.replicas}'="$MAX_REPLICAS" --timeout="${TIMEOUT}s"
run "${KUBECTL[@]}" wait aviautoscaler/"$AUTOSCALER" -n "$APP_NAMESPACE" \
  --for=condition=Ready --timeout=120s
run "${KUBECTL[@]}" get aviautoscaler "$AUTOSCALER" -n "$APP_NAMESPACE" -o wide
run "${KUBECTL[@]}" wait avicontroller/"$CONTROLLER" --for=condition=Ready --timeout=120s
run "${KUBECTL[@]}" get avicontroller "$CONTROLLER" -o wide

log "checks"
if [ "$DRY_RUN" = 1 ]; then
  run "${KUBECTL[@]}" get events -n "$APP_NAMESPACE" \
    --field-selector reason=SuccessfulRescale,involvedObject.name="$AUTOSCALER" -o name
  run "${KUBECTL[@]}" get leases -n "$OPERATOR_NAMESPACE" -o jsonpath='{.items[*].spec.holderIdentity}'
  run "${KUBECTL[@]}" get --raw \
    "/api/v1/namespaces/${OPERATOR_NAMESPACE}/services/avi-autoscaler-metrics:metrics/proxy/metrics"
  log "e2e-kind: dry run, nothing was run"
  exit 0
fi
rescales=$("${KUBECTL[@]}" get events -n "$APP_NAMESPACE" \
  --field-selector reason=SuccessfulRescale,involvedObject.name="$AUTOSCALER" -o name | wc -l)
if [ "$rescales" -lt 1 ]; then
  echo "e2e-kind: no SuccessfulRescale event on aviautoscaler/$AUTOSCALER" >&2
  exit 1
fi
echo "SuccessfulRescale events: $rescales"

holders=$("${KUBECTL[@]}" get leases -n "$OPERATOR_NAMESPACE" -o jsonpath='{.items[*].spec.holderIdentity}')
if [ -z "$holders" ]; then
  echo "e2e-kind: no Lease with a holder in $OPERATOR_NAMESPACE: leader election did not run" >&2
  exit 1
fi
echo "lease holder: $holders"

# /metrics through the API server's service proxy: the Service selects the pods and its port
# reaches the operator's metrics listener.
metrics=$("${KUBECTL[@]}" get --raw \
  "/api/v1/namespaces/${OPERATOR_NAMESPACE}/services/avi-autoscaler-metrics:metrics/proxy/metrics")
if ! grep -q '^# \(HELP\|TYPE\) ' <<<"$metrics"; then
  echo "e2e-kind: /metrics on the metrics Service answered no Prometheus text" >&2
  exit 1
fi
echo "metrics Service: $(grep -c '^# TYPE ' <<<"$metrics") metric families"

log "e2e-kind: PASSED ($TARGET scaled to $MAX_REPLICAS by the operator)"
