#!/bin/sh
# Set the SCRAM-SHA-512 credential of every principal that deploy/kafka/acls.txt names, from its
# KAFKA_<PRINCIPAL>_PASSWORD (KAFKA_MEMBERSHIP_PASSWORD, ..., KAFKA_REGIONAL_PASSWORD). An upsert: it runs on
# every `compose up`, and a password changed in deploy/.env replaces the old one (rotation: docs/kafka-security.md).
# `admin` is not set here: its credential is made when Kafka formats its storage (start-broker.sh).
#
#   KAFKA_BOOTSTRAP_SERVERS   broker to talk to                          (default kafka:9092)
#   KAFKA_COMMAND_CONFIG      the admin's client properties (SASL)       (default none: PLAINTEXT)
#   ACLS_FILE                 the grants, whose principals these are     (default: acls.txt next to this script)
#   SCRAM_ITERATIONS          PBKDF2 iterations                          (default 8192)
#   KAFKA_CONFIGS             the kafka-configs.sh to run                (default /opt/kafka/bin/kafka-configs.sh)
set -eu

bootstrap="${KAFKA_BOOTSTRAP_SERVERS:-kafka:9092}"
command_config="${KAFKA_COMMAND_CONFIG:-}"
acls_file="${ACLS_FILE:-$(dirname "$0")/acls.txt}"
iterations="${SCRAM_ITERATIONS:-8192}"
kafka_configs="${KAFKA_CONFIGS:-/opt/kafka/bin/kafka-configs.sh}"

[ -r "$acls_file" ] || { echo "cannot read $acls_file" >&2; exit 2; }
case "$iterations" in '' | *[!0-9]*) echo "SCRAM_ITERATIONS must be a number: $iterations" >&2; exit 2 ;; esac

principals=$(awk '$1 !~ /^#/ && NF { print $1 }' "$acls_file" | sort -u)
[ -n "$principals" ] || { echo "no principals in $acls_file" >&2; exit 2; }

# every password first, so that a missing one changes nothing
for principal in $principals; do
    case "$principal" in *[!a-z0-9_]*) echo "principal must be [a-z0-9_]: $principal" >&2; exit 2 ;; esac
    [ "$principal" != admin ] || continue
    variable="KAFKA_$(printf '%s' "$principal" | tr '[:lower:]' '[:upper:]')_PASSWORD"
    eval "password=\${$variable:-}"
    [ -n "$password" ] || { echo "$variable is required (the Kafka password of $principal)" >&2; exit 2; }
    case "$password" in
        *[,\]\"\\\ ]*) echo "$variable must not contain , ] \" \\ or spaces (use e.g. openssl rand -hex 24)" >&2; exit 2 ;;
    esac
done

count=0
for principal in $principals; do
    [ "$principal" != admin ] || continue
    variable="KAFKA_$(printf '%s' "$principal" | tr '[:lower:]' '[:upper:]')_PASSWORD"
    eval "password=\${$variable}"
    set -- --alter --entity-type users --entity-name "$principal" \
        --add-config "SCRAM-SHA-512=[iterations=$iterations,password=$password]"
    if [ -n "$command_config" ]; then
        "$kafka_configs" --bootstrap-server "$bootstrap" --command-config "$command_config" "$@" >/dev/null
    else
        "$kafka_configs" --bootstrap-server "$bootstrap" "$@" >/dev/null
    fi
    echo "scram: $principal set"
    count=$((count + 1))
done

echo "scram: $count principals on $bootstrap"
