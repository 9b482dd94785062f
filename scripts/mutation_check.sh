#!/usr/bin/env bash
# Mutation check (mutmut 3.8.1) over the accounting, cost, policy and ledger modules.
# A tool for developers, not a CI step: CPU heavy (run it under `nice -n 10`, one group at a time).
#
#   scripts/mutation_check.sh GROUP [MUTANT_NAME...]    GROUP: accounting | cost | policy | ledger
#   scripts/mutation_check.sh summary                    re-print every group's last result
#
# Each group runs in a scratch copy of the work tree ($MUTATION_SCRATCH, default
# /tmp/moerun-mutation/GROUP/repo, with ../shared beside it), so the tree is never touched.
# A full run starts from a fresh copy; naming mutants re-runs only those in the kept copy
# (after copying the current tests/ over it), for checking a new test quickly.
# mutmut picks, for each mutant, the selected tests that reach the mutated function.
#
# Kill rate = (killed + timeout) / all mutants. Mutants listed in
# scripts/mutation_equivalent.txt ("<mutant name>  # why it is equivalent") are reported and
# taken out of the adjusted denominator only; the raw rate counts every mutant.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
GROUP="${1:?usage: mutation_check.sh accounting|cost|policy|ledger|summary [MUTANT...]}"
shift || true

files_for() {
    case "$1" in
    accounting)
        echo "src/moerun/core/model/kv_cache.py src/moerun/core/model/weights.py" \
            "src/moerun/core/deploy/memory_fit.py" ;;
    cost)
        echo "src/moerun/core/market/cost.py src/moerun/core/market/pricing.py" \
            "src/moerun/core/plan/capacity.py" ;;
    policy)
        echo "src/moerun/core/market/policy.py" ;;
    ledger)
        echo "src/moerun/store/writer.py src/moerun/store/durable.py" \
            "src/moerun/store/spool.py src/moerun/store/usage.py" ;;
    *) echo "mutation_check: unknown group '$1' (accounting|cost|policy|ledger)" >&2; exit 2 ;;
    esac
}

tests_for() {
    case "$1" in
    # The modules' own tests and their direct users' (the whole suite takes hours per group).
    accounting) echo "tests/core/model tests/core/deploy tests/core/plan/test_capacity.py" ;;
    cost)
        echo "tests/core/market/test_cost.py tests/core/plan/test_capacity.py" \
            "tests/catalog/test_catalog_prices.py" ;;
    policy)
        echo "tests/core/market tests/core/plan/test_recommend.py tests/catalog/test_cloud_trust.py" \
            "tests/serve/test_policy_property.py tests/serve/test_budgets.py" ;;
    ledger)
        echo "tests/store tests/serve/test_ledger_down.py tests/serve/test_ledger_faults.py" \
            "tests/serve/test_crash.py tests/serve/test_budgets.py" ;;
    esac
}

BASE="${MUTATION_BASE:-/tmp/moerun-mutation}"

summarize() {
    # $1 group, $2 scratch repo: print counts and rates from mutmut's results.
    local group="$1" repo="$2"
    (cd "$repo" && "$VENV/bin/mutmut" results --all true) >"$repo/../results.txt" 2>/dev/null || true
    "$VENV/bin/python" - "$group" "$repo/../results.txt" "$ROOT/scripts/mutation_equivalent.txt" <<'EOF'
import collections, sys
group, results, equivalent_file = sys.argv[1:4]
status = {}
for line in open(results):
    name, sep, st = line.strip().rpartition(": ")
    if sep and name:
        status[name] = st
equivalent = {}
try:
    for line in open(equivalent_file):
        name, _, why = line.partition("#")
        if name.strip():
            equivalent[name.strip()] = why.strip()
except FileNotFoundError:
    pass
counts = collections.Counter(status.values())
total = len(status)
killed = counts["killed"] + counts["timeout"]
eq = [n for n in status if n in equivalent and status[n] not in ("killed", "timeout")]
adj_total = total - len(eq)
raw = 100.0 * killed / total if total else 0.0
adj = 100.0 * killed / adj_total if adj_total else 0.0
print(f"[{group}] mutants={total} " + " ".join(f"{k}={v}" for k, v in sorted(counts.items())))
print(f"[{group}] killed {killed}/{total} = {raw:.1f}% raw; "
      f"{killed}/{adj_total} = {adj:.1f}% without {len(eq)} equivalent")
for n in sorted(status):
    if status[n] not in ("killed", "timeout"):
        tag = f"equivalent: {equivalent[n]}" if n in eq else "SURVIVOR"
        print(f"[{group}]   {status[n]:<11} {n}  {tag}")
EOF
}

if [ "$GROUP" = summary ]; then
    for g in accounting cost policy ledger; do
        [ -d "$BASE/$g/repo/mutants" ] && summarize "$g" "$BASE/$g/repo" | grep -v '^\[.*\]   '
    done
    exit 0
fi

FILES="$(files_for "$GROUP")"
TESTS="$(tests_for "$GROUP")"

if ! "$VENV/bin/mutmut" --version 2>/dev/null | grep -q "3.8.1"; then
    "$VENV/bin/pip" install -q "mutmut==3.8.1"
fi

SCRATCH="${MUTATION_SCRATCH:-$BASE/$GROUP}"
REPO="$SCRATCH/repo"
copy_tree() {
    # Tracked and untracked-but-not-ignored files of the work tree, into $REPO.
    (cd "$ROOT" && git ls-files -co --exclude-standard -z | grep -zv '^scripts/mutation' |
        tar --null -T - -cf -) | tar -xf - -C "$REPO"
}

if [ "$#" -eq 0 ]; then
    rm -rf "$REPO"
    mkdir -p "$REPO"
    copy_tree
    # Tests read ../shared (the project's shared data) beside the repo.
    ln -sfn "$(cd "$ROOT/../shared" && pwd)" "$SCRATCH/shared"
    {
        echo
        echo "[tool.mutmut]"
        echo 'source_paths = ["src"]'
        printf 'only_mutate = ['
        printf '"%s", ' $FILES
        echo ']'
        printf 'pytest_add_cli_args_test_selection = ['
        printf '"%s", ' $TESTS
        echo ']'
        echo 'pytest_add_cli_args = ["-p", "no:cacheprovider", "-q"]'
        # A mutant that hangs the ledger's writer thread waits out its timeout: 4x the
        # tests' clean time (mutmut's default 15x kept one group running for an hour).
        echo 'timeout_multiplier = 4.0'
    } >>"$REPO/pyproject.toml"
else
    [ -d "$REPO/mutants" ] || { echo "mutation_check: no earlier run in $REPO" >&2; exit 2; }
    # Bring the current tests into the kept copy (mutmut copies tests/ into mutants/ itself);
    # the sources stay as mutated, so this is for new tests, not for changed code.
    (cd "$ROOT" && tar -cf - tests) | tar -xf - -C "$REPO"
fi

# Child processes (gateways under SIGKILL tests) import the mutated package, not the
# editable install; MUTANT_UNDER_TEST reaches them through the environment.
# The folder must exist before Python starts: a path missing at start-up is cached as empty.
mkdir -p "$REPO/mutants/src"
export PYTHONPATH="$REPO/mutants/src${PYTHONPATH:+:$PYTHONPATH}"
cd "$REPO"
"$VENV/bin/mutmut" run --max-children "${MUTATION_CHILDREN:-2}" "$@" >"$SCRATCH/run.log" 2>&1 || {
    tail -n 40 "$SCRATCH/run.log" >&2
    exit 1
}
summarize "$GROUP" "$REPO"
