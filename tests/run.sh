#!/usr/bin/env bash
# Runs every test suite of mqtls and ends with one line "N passed, M failed".
# Suites speak TAP ("ok N - name" / "not ok N - name"); a suite that dies
# without reporting a failure counts as one failure.
#   tests/run.sh            everything
#   SUITES="unit integration" tests/run.sh   a subset (link unit asan demo integration
#                                            asan-integration soak bench deploy deploy-live fuzz)
set -u
cd "$(dirname "$0")/.."
SUITES=${SUITES:-"link unit asan demo integration asan-integration soak bench deploy deploy-live fuzz"}
FUZZ_SECONDS=${FUZZ_SECONDS:-60}
LOG=build/test-logs
mkdir -p "$LOG"
passed=0 failed=0 skipped=0
failures=()

# tally NAME FILE RC: counts the TAP lines of one suite's output.
tally() {
	local name=$1 file=$2 rc=$3 p f s
	p=$(grep -cE '^ok [0-9]+' "$file" | head -1)
	s=$(grep -cE '^ok [0-9]+.*# *(SKIP|skip)' "$file" | head -1)
	f=$(grep -cE '^not ok [0-9]+' "$file" | head -1)
	p=$((p - s))
	while IFS= read -r line; do failures+=("$name: $line"); done < <(grep -E '^not ok [0-9]+' "$file")
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		f=1
		failures+=("$name: exited with status $rc (see $file)")
	fi
	passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
	printf '%-40s %4d passed %4d failed %4d skipped\n' "$name" "$p" "$f" "$s"
}

run_cmocka_dir() {
	local kind=$1 dir=$2 bin name out
	for bin in "$dir"/test_*; do
		[ -x "$bin" ] || continue
		name="$kind/$(basename "$bin")"
		out="$LOG/${kind}_$(basename "$bin").tap"
		CMOCKA_MESSAGE_OUTPUT=TAP ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
			timeout 300 "$bin" > "$out" 2>&1
		tally "$name" "$out" $?
	done
}

for suite in $SUITES; do
	case $suite in
	link)
		out="$LOG/link.tap"
		{
			libs=$(ldd build/mqtls)
			if echo "$libs" | grep -q '/android/libssl.so' && ! echo "$libs" | grep -qE 'libssl\.so\.3|libcrypto\.so\.3'; then
				echo "ok 1 - mqtls links BoringSSL and not OpenSSL"
			else
				echo "not ok 1 - mqtls links BoringSSL and not OpenSSL"; echo "$libs"
			fi
			if [ -x build/mqtls-bench ]; then
				libs=$(ldd build/mqtls-bench)
				if echo "$libs" | grep -q '/android/libssl.so' && ! echo "$libs" | grep -qE 'libssl\.so\.3|libcrypto\.so\.3'; then
					echo "ok 2 - mqtls-bench links BoringSSL and not OpenSSL"
				else
					echo "not ok 2 - mqtls-bench links BoringSSL and not OpenSSL"; echo "$libs"
				fi
			fi
		} > "$out" 2>&1
		tally link "$out" 0
		;;
	unit) run_cmocka_dir unit build/tests ;;
	demo)
		out="$LOG/demo.tap"
		if timeout 120 bash tests/demo.sh --once > "$LOG/demo.log" 2>&1; then
			echo "ok 1 - make demo completes a TLS round trip through mqtls" > "$out"
		else
			{ echo "not ok 1 - make demo completes a TLS round trip through mqtls"; tail -20 "$LOG/demo.log"; } > "$out"
		fi
		tally demo "$out" 0
		;;
	asan) run_cmocka_dir asan build/asan/tests ;;
	integration)
		out="$LOG/integration.tap"
		timeout 900 /usr/bin/python3 tests/integration/run.py > "$out" 2>&1
		tally integration "$out" $?
		;;
	asan-integration)
		# The same suite (hostile load included) against the daemon built
		# with ASan+UBSan; any sanitizer report kills that mqtls, which the
		# harness reports as an unexpected exit.
		out="$LOG/asan-integration.tap"
		MQTLS_BIN=build/asan/mqtls ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
			UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
			timeout 1200 /usr/bin/python3 tests/integration/run.py > "$out" 2>&1
		tally asan-integration "$out" $?
		;;
	soak)
		if [ -f tests/soak/soak.py ]; then
			out="$LOG/soak.tap"
			timeout 600 /usr/bin/python3 tests/soak/soak.py --seconds "${SOAK_TEST_SECONDS:-120}" --tap > "$out" 2>&1
			tally soak "$out" $?
		fi
		;;
	bench)
		if [ -f bench/tests/run.sh ]; then
			out="$LOG/bench.tap"
			timeout 300 bash bench/tests/run.sh > "$out" 2>&1
			tally bench "$out" $?
		fi
		;;
	deploy)
		out="$LOG/deploy.tap"
		{ CHECK_BUILD=0 timeout 300 sh deploy/check.sh; timeout 120 sh deploy/test_certbot_hook.sh; } > "$out" 2>&1
		tally deploy "$out" $?
		;;
	deploy-live)
		# The image, compose file, Kubernetes manifest and certbot renewal run
		# for real with podman and pebble (~2 min, ~5 the first time on a machine).
		out="$LOG/deploy-live.tap"
		timeout 1200 sh deploy/test_live.sh > "$out" 2>&1
		tally deploy-live "$out" $?
		;;
	fuzz)
		pids=() names=()
		for bin in build/fuzz/fuzz_*; do
			[ -x "$bin" ] || continue
			t=$(basename "$bin"); t=${t#fuzz_}
			work=$(mktemp -d); crashes="$LOG/fuzz_$t"
			rm -rf "$crashes"; mkdir -p "$crashes"
			( "$bin" -max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2048 \
				-artifact_prefix="$crashes/" "$work" "tests/fuzz/corpus/$t" > "$LOG/fuzz_$t.log" 2>&1
			  rc=$?; rm -rf "$work"; exit $rc ) &
			pids+=($!); names+=("$t")
		done
		for i in "${!pids[@]}"; do
			wait "${pids[$i]}"; rc=$?
			out="$LOG/fuzz_${names[$i]}.tap"
			if [ $rc -eq 0 ]; then
				echo "ok 1 - fuzz_${names[$i]} ran ${FUZZ_SECONDS}s without a crash" > "$out"
			else
				{ echo "not ok 1 - fuzz_${names[$i]} found a crash (artifacts in $LOG/fuzz_${names[$i]}/)"; tail -30 "$LOG/fuzz_${names[$i]}.log"; } > "$out"
			fi
			tally "fuzz/${names[$i]}" "$out" 0
		done
		;;
	esac
done

if [ ${#failures[@]} -gt 0 ]; then
	echo
	echo "failures:"
	printf '  %s\n' "${failures[@]}"
	echo "(full output in $LOG/)"
fi
echo
if [ "$skipped" -gt 0 ]; then
	echo "$passed passed, $failed failed, $skipped skipped"
else
	echo "$passed passed, $failed failed"
fi
[ "$failed" -eq 0 ]
