#!/bin/sh
# The kafka container's entrypoint: on the first start, format the KRaft storage with the admin's SCRAM
# credential; then hand over to the image's own start (/etc/kafka/docker/run), unchanged.
#
# Why at format time: every listener a client can reach asks for SASL/SCRAM, so the first credential cannot be
# made over the network, and the broker itself needs one (it signs in to its INTERNAL listener as `admin`).
# In KRaft, SCRAM credentials are records in the metadata log; `kafka-storage.sh format --add-scram` (KIP-900,
# Kafka >= 3.5) writes the admin's into the log's bootstrap snapshot, so it exists before the broker serves
# anyone. The image formats the storage too, but without --add-scram, and it leaves a formatted directory
# alone: formatting here first is what puts the credential in. On later starts meta.properties exists and this
# step is skipped, so changing KAFKA_ADMIN_PASSWORD afterwards changes nothing in Kafka: rotate it with
# kafka-configs.sh first (docs/kafka-security.md). The other principals are made by the one-shot `topics` step
# (setup.sh), signed in as admin.
#
#   SCRAM_ADMIN_PASSWORD   the admin's password (required; not KAFKA_*: the image turns each KAFKA_* variable
#                          into a broker property)
#   CLUSTER_ID             the KRaft cluster id, as the image needs it (required)
#   KAFKA_LOG_DIRS         the data directory                      (default /var/lib/kafka/data)
#   KAFKA_*                the broker's settings, as the image reads them
#   ADMIN_CLIENT_CONFIG    admin client properties written for the healthcheck
#                                                                  (default /opt/kafka/config/admin-client.properties)
#   STORAGE_TOOL           the kafka-storage.sh to run             (default /opt/kafka/bin/kafka-storage.sh)
#   IMAGE_RUN              what to hand over to                    (default /etc/kafka/docker/run)
set -eu

: "${SCRAM_ADMIN_PASSWORD:?SCRAM_ADMIN_PASSWORD is required}"
: "${CLUSTER_ID:?CLUSTER_ID is required}"
data_dir="${KAFKA_LOG_DIRS:-/var/lib/kafka/data}"
client_config="${ADMIN_CLIENT_CONFIG:-/opt/kafka/config/admin-client.properties}"
storage_tool="${STORAGE_TOOL:-/opt/kafka/bin/kafka-storage.sh}"
image_run="${IMAGE_RUN:-/etc/kafka/docker/run}"

case "$SCRAM_ADMIN_PASSWORD" in
    *[,\]\"\\\ ]*) echo "the admin's password must not contain , ] \" \\ or spaces (use e.g. openssl rand -hex 24)" >&2; exit 2 ;;
esac
case "$data_dir" in *,*) echo "one data directory only: $data_dir" >&2; exit 2 ;; esac

umask_before=$(umask)
umask 077  # the files below hold the password

# the healthcheck signs in with these (kafka-broker-api-versions.sh --command-config)
cat > "$client_config" <<PROPERTIES
security.protocol=SASL_PLAINTEXT
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="$SCRAM_ADMIN_PASSWORD";
PROPERTIES

if [ ! -f "$data_dir/meta.properties" ]; then
    # the broker's properties, derived from KAFKA_* as the image derives them (kafka.docker.KafkaDockerWrapper:
    # drop KAFKA_, lower-case, `_` -> `.`, `___` -> `-`, `__` -> `_`), so the format sees the real configuration
    config=$(mktemp)
    trap 'rm -f "$config"' EXIT
    env | while IFS= read -r line; do
        variable=${line%%=*}
        case "$variable" in
            KAFKA_VERSION | KAFKA_HEAP_OPTS | KAFKA_LOG4J_OPTS | KAFKA_OPTS | KAFKA_JMX_OPTS | KAFKA_JVM_PERFORMANCE_OPTS) ;;
            KAFKA_GC_LOG_OPTS | KAFKA_LOG4J_ROOT_LOGLEVEL | KAFKA_LOG4J_LOGGERS | KAFKA_TOOLS_LOG4J_LOGLEVEL) ;;
            KAFKA_JMX_HOSTNAME) ;;
            KAFKA_*)
                name=$(printf '%s' "${variable#KAFKA_}" | tr '[:upper:]' '[:lower:]' |
                    sed -e 's/_/./g' -e 's/\.\.\./-/g' -e 's/\.\./_/g')
                printf '%s=%s\n' "$name" "${line#*=}"
                ;;
            *) ;;
        esac
    done > "$config"
    echo "===> First start: formatting $data_dir with the admin's SCRAM-SHA-512 credential"
    "$storage_tool" format --cluster-id "$CLUSTER_ID" --config "$config" \
        --add-scram "SCRAM-SHA-512=[name=admin,password=$SCRAM_ADMIN_PASSWORD]"
    rm -f "$config"
    trap - EXIT
fi

umask "$umask_before"
exec "$image_run"
