#!/bin/sh
# Grant the ACLs of deploy/kafka/acls.txt (PRINCIPAL OPERATION RESOURCE NAME [PATTERN], one grant a line).
# Consecutive lines for the same principal and resource become one kafka-acls.sh call (a JVM each: fewer is
# faster). Idempotent: a grant that exists already is left as it is, so it runs on every `compose up`.
# Additive: a line deleted from the file does not revoke its grant; remove it by hand (docs/kafka-security.md).
#
#   KAFKA_BOOTSTRAP_SERVERS   broker to talk to                          (default kafka:9092)
#   KAFKA_COMMAND_CONFIG      the admin's client properties (SASL)       (default none: PLAINTEXT)
#   TOPIC_PREFIX              prepended to topic and group names         (default empty)
#   ACLS_FILE                 the grants                                 (default: acls.txt next to this script)
#   KAFKA_ACLS                the kafka-acls.sh to run                   (default /opt/kafka/bin/kafka-acls.sh)
set -eu

bootstrap="${KAFKA_BOOTSTRAP_SERVERS:-kafka:9092}"
command_config="${KAFKA_COMMAND_CONFIG:-}"
prefix="${TOPIC_PREFIX:-}"
acls_file="${ACLS_FILE:-$(dirname "$0")/acls.txt}"
kafka_acls="${KAFKA_ACLS:-/opt/kafka/bin/kafka-acls.sh}"

[ -r "$acls_file" ] || { echo "cannot read $acls_file" >&2; exit 2; }
[ -z "$command_config" ] || [ -r "$command_config" ] || { echo "cannot read $command_config" >&2; exit 2; }

kafka_acls() {
    if [ -n "$command_config" ]; then
        "$kafka_acls" --bootstrap-server "$bootstrap" --command-config "$command_config" "$@"
    else
        "$kafka_acls" --bootstrap-server "$bootstrap" "$@"
    fi
}

# the resource being collected: its principal, type, name, pattern and operations
key=""
principal="" resource="" name="" pattern="" operations=""
calls=0
grants=0

flush() {
    [ -n "$key" ] || return 0
    # $operations is `--operation X --operation Y`, each word checked below: split on purpose
    # shellcheck disable=SC2086
    kafka_acls --add --allow-principal "User:$principal" $operations \
        "--$resource" "${prefix}${name}" --resource-pattern-type "$pattern" </dev/null
    calls=$((calls + 1))
}

lineno=0
while IFS= read -r line || [ -n "$line" ]; do
    lineno=$((lineno + 1))
    set -f  # no globbing while splitting the line into words
    # shellcheck disable=SC2086
    set -- $line
    set +f
    case "${1:-#}" in '#'*) continue ;; esac
    if [ $# -lt 4 ] || [ $# -gt 5 ]; then
        echo "$acls_file:$lineno: expected PRINCIPAL OPERATION RESOURCE NAME [PATTERN]: $line" >&2
        exit 2
    fi
    case "$1" in *[!a-z0-9_]*) echo "$acls_file:$lineno: principal must be [a-z0-9_]: $1" >&2; exit 2 ;; esac
    case "$2" in
        Read | Write | Describe | Create | Delete | Alter | DescribeConfigs | AlterConfigs | IdempotentWrite) ;;
        *) echo "$acls_file:$lineno: unknown operation $2" >&2; exit 2 ;;
    esac
    case "$3" in topic | group) ;; *) echo "$acls_file:$lineno: resource must be topic or group: $3" >&2; exit 2 ;; esac
    case "$4" in *[!A-Za-z0-9._-]*) echo "$acls_file:$lineno: bad name $4" >&2; exit 2 ;; esac
    case "${5:-literal}" in literal | prefixed) ;; *) echo "$acls_file:$lineno: pattern must be literal or prefixed: $5" >&2; exit 2 ;; esac
    next="$1 $3 $4 ${5:-literal}"
    if [ "$next" != "$key" ]; then
        flush
        key="$next" principal="$1" resource="$3" name="$4" pattern="${5:-literal}" operations=""
    fi
    operations="$operations --operation $2"
    grants=$((grants + 1))
done < "$acls_file"
flush

echo "acls: $grants grants in $calls calls on $bootstrap"
