#!/bin/bash
# Issue 19, deliverables 2 and 3: every run failure -> exit code, one-line message, status.
# Needs root (tmpfs mounts, setpriv to drop CAP_DAC_OVERRIDE); uses the hash test coder.
# Usage: sudo benchmarks/run_failures.sh
cd "$(dirname "$0")/.."
export FRAMECODE_TEST_CODER=hash
FC=".venv/bin/framecode"
W=${WORK:-/tmp/framecode-run-failures}; rm -rf $W; mkdir -p $W
python3 - "$W/quotes.csv" <<'PY'
import csv, sys
with open(sys.argv[1], "w", newline="") as h:
    w = csv.writer(h); w.writerow(["id", "text", "organization", "program"])
    for i in range(3000): w.writerow([f"q{i}", f"testimonial {i} about sharing data " * (1 + i % 7), f"Org {i % 40}", "CHP"])
PY
status() { python3 -c "import json,sys,glob; [print('   status:', json.load(open(m))['status']) for m in sorted(glob.glob(sys.argv[1]+'/*/manifest.json'))]" "$1"; }
echo "== 1. input edited during a run (hash:0.5 coder, 200-row chunks; edit after 6 s)"
cp $W/quotes.csv $W/edit.csv
FRAMECODE_TEST_CODER=hash:0.5 $FC recode $W/edit.csv --runs-dir $W/runs-edit --chunk-size 200 > $W/out 2>&1 & pid=$!
sleep 6; sed -i 's/testimonial 2500 /testimonial EDITED /' $W/edit.csv; wait $pid; echo "   exit $?"; grep -v TEST_CODER $W/out; status $W/runs-edit
echo "== 1b. row appended during a run"
cp $W/quotes.csv $W/append.csv
FRAMECODE_TEST_CODER=hash:0.5 $FC recode $W/append.csv --runs-dir $W/runs-append --chunk-size 200 > $W/out 2>&1 & pid=$!
sleep 6; echo "q9999,appended row,Org 1,CHP" >> $W/append.csv; wait $pid; echo "   exit $?"; grep -v TEST_CODER $W/out; status $W/runs-append
echo "== 2. disk full: tmpfs of N KiB as --runs-dir"
for size in 64 128 256 512 768 1024 1536 2048 3072 4096 6144 8192; do
  mkdir -p $W/full; mount -t tmpfs -o size=${size}k tmpfs $W/full
  $FC recode $W/quotes.csv --runs-dir $W/full/runs --chunk-size 200 > $W/out 2>&1; rc=$?
  st=$(python3 -c "import json,glob; print(' '.join(json.load(open(m))['status'] for m in glob.glob('$W/full/runs/*/manifest.json')) or '(no manifest)')" 2>&1)
  tmp=$(find $W/full -name '.*.tmp' | wc -l)
  echo "   ${size}k: exit $rc status [$st] temp files $tmp: $(grep -v TEST_CODER $W/out | head -2 | tr '\n' '|')"
  umount $W/full
done
echo "== 3. read-only runs folder (read-only tmpfs)"
mkdir -p $W/ro; mount -t tmpfs -o size=1m tmpfs $W/ro; mkdir $W/ro/runs; mount -o remount,ro $W/ro
$FC recode $W/quotes.csv --runs-dir $W/ro/runs > $W/out 2>&1; echo "   exit $?"; grep -v TEST_CODER $W/out; umount $W/ro
echo "== 4. permission denied (runs folder mode 555; root without CAP_DAC_OVERRIDE)"
mkdir -p $W/denied/runs; chmod 555 $W/denied/runs
setpriv --bounding-set=-dac_override,-dac_read_search --inh-caps=-dac_override,-dac_read_search $FC recode $W/quotes.csv --runs-dir $W/denied/runs > $W/out 2>&1; echo "   exit $?"; grep -v TEST_CODER $W/out
echo "== 4b. permission denied on the input (mode 000)"
cp $W/quotes.csv $W/secret.csv; chmod 000 $W/secret.csv
setpriv --bounding-set=-dac_override,-dac_read_search --inh-caps=-dac_override,-dac_read_search $FC recode $W/secret.csv --runs-dir $W/runs-secret > $W/out 2>&1; echo "   exit $?"; grep -v TEST_CODER $W/out
echo "== 5. damaged work.sqlite, then --resume"
FRAMECODE_TEST_CODER=hash:0.5 $FC recode $W/quotes.csv --runs-dir $W/runs-db --chunk-size 200 > /dev/null 2>&1 & pid=$!
sleep 6; kill -9 $pid; wait $pid 2>/dev/null
run=$(ls $W/runs-db); head -c 4096 /dev/urandom > $W/runs-db/$run/work.sqlite; rm -f $W/runs-db/$run/work.sqlite-*
$FC recode --resume $run --runs-dir $W/runs-db > $W/out 2>&1; echo "   exit $?"; grep -v TEST_CODER $W/out; status $W/runs-db
echo "== 6. damaged earlier complete run: later recode (reuse) and runs"
$FC recode $W/quotes.csv --runs-dir $W/runs-reuse > /dev/null 2>&1
first=$(ls $W/runs-reuse); printf 'garbage%.0s' {1..500} > $W/runs-reuse/$first/work.sqlite
$FC recode $W/quotes.csv --runs-dir $W/runs-reuse > $W/out 2>&1; echo "   recode exit $?"; grep -v TEST_CODER $W/out
echo '{"run_id": "x", "sta' > $W/runs-reuse/$first/manifest.json
$FC runs --runs-dir $W/runs-reuse > $W/out 2>&1; echo "   runs exit $?"; cat $W/out
$FC recode $W/quotes.csv --runs-dir $W/runs-reuse > $W/out 2>&1; echo "   recode exit $?"; grep -v TEST_CODER $W/out
echo "== 7. temp files of a killed run removed on resume"
FRAMECODE_TEST_CODER=hash:0.5 $FC recode $W/quotes.csv --runs-dir $W/runs-tmp --chunk-size 200 > /dev/null 2>&1 & pid=$!
sleep 6; kill -9 $pid; wait $pid 2>/dev/null; run=$(ls $W/runs-tmp)
head -c 5000000 /dev/zero > $W/runs-tmp/$run/.codings.parquet.x1y2z3.tmp; head -c 3000000 /dev/zero > $W/runs-tmp/$run/.codings.csv.a1b2c3.tmp
echo "   before resume: $(ls -a $W/runs-tmp/$run | grep -c '\.tmp$') temp files"
$FC recode --resume $run --runs-dir $W/runs-tmp > $W/out 2>&1; echo "   exit $?; after: $(ls -a $W/runs-tmp/$run | grep -c '\.tmp$') temp files"; status $W/runs-tmp
echo "== 8. manifest encoding (cp1252 input)"
python3 -c "open('$W/latin.csv','wb').write('id,text,organization\nq1,caf\u00e9 data sharing,Org 1\n'.encode('cp1252'))"
$FC recode $W/latin.csv --runs-dir $W/runs-enc > /dev/null 2>&1; python3 -c "import json,glob; print('   encoding:', [e['encoding'] for m in glob.glob('$W/runs-enc/*/manifest.json') for e in json.load(open(m))['inputs']])"
