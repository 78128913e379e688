// Summarises conformance result directories per scenario and applies expected-failures.txt.
//
//   node report.mjs --target direct|aigw --expected expected-failures.txt \
//        --suite NAME=RESULTS_DIR=SCENARIOS_FILE [--suite ...] [--runs N] [--strict]
//
// SCENARIOS_FILE lists the scenarios that suite had to run, one per line. A scenario passes
// when its checks.json exists and holds no FAILURE check (WARNING/SKIPPED/INFO do not fail,
// as in the conformance CLI) and, with --runs N, it has a result from each of the N runs. A failure listed in the expected-failures file is XFAIL and
// does not fail the run; a listed scenario that passes is XPASS (a stale entry: reported,
// and fails the run only with --strict).
// Prints one line per scenario, then "N passed, N failed" (XFAIL counted as failed but not
// unexpected); exit status 1 when any failure is unexpected.

import fs from 'node:fs';
import path from 'node:path';

const args = process.argv.slice(2);
const opt = { suites: [], strict: false, target: 'direct', expected: null, runs: 1 };
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  if (a === '--target') opt.target = args[++i];
  else if (a === '--expected') opt.expected = args[++i];
  else if (a === '--suite') opt.suites.push(args[++i]);
  else if (a === '--strict') opt.strict = true;
  else if (a === '--runs') opt.runs = Number(args[++i]);
  else {
    console.error(`report.mjs: unknown argument ${a}`);
    process.exit(2);
  }
}

// expected-failures.txt: "<target> <suite> <scenario> <reason...>", '*' matches anything,
// '#' starts a comment. A reason is mandatory.
function loadExpected(file) {
  const out = [];
  if (!file || !fs.existsSync(file)) return out;
  fs.readFileSync(file, 'utf8').split('\n').forEach((line, n) => {
    const l = line.replace(/#.*$/, '').trim();
    if (!l) return;
    const m = /^(\S+)\s+(\S+)\s+(\S+)\s+(.+)$/.exec(l);
    if (!m) {
      console.error(`${file}:${n + 1}: expected "<target> <suite> <scenario> <reason>"`);
      process.exit(2);
    }
    out.push({ target: m[1], suite: m[2], scenario: m[3], reason: m[4].trim() });
  });
  return out;
}
const expected = loadExpected(opt.expected);
const match = (pat, v) => pat === '*' || pat === v;
function expectedReason(suite, scenario) {
  const e = expected.find((x) => match(x.target, opt.target) && match(x.suite, suite) && match(x.scenario, scenario));
  return e?.reason;
}

function scenarioResults(dir) {
  const res = new Map();
  if (!fs.existsSync(dir)) return res;
  for (const d of fs.readdirSync(dir)) {
    const m = /^server-(.+)-(\d{4}-\d{2}-\d{2}T[\d-]+Z)$/.exec(d);
    if (!m) continue;
    const f = path.join(dir, d, 'checks.json');
    if (!fs.existsSync(f)) continue;
    let checks;
    try {
      checks = JSON.parse(fs.readFileSync(f, 'utf8'));
    } catch {
      checks = [{ status: 'FAILURE', errorMessage: 'unreadable checks.json' }];
    }
    const prev = res.get(m[1]);
    // With --repeat the same scenario appears several times: keep every run.
    const runs = prev ? prev.runs : [];
    runs.push(checks);
    res.set(m[1], { runs });
  }
  return res;
}

let passed = 0;
let failed = 0;
let unexpected = 0;
let xpass = 0;
const lines = [];
for (const spec of opt.suites) {
  const [suite, dir, listFile] = spec.split('=');
  const wanted = fs.readFileSync(listFile, 'utf8').split('\n').map((s) => s.trim()).filter(Boolean);
  const got = scenarioResults(dir);
  for (const sc of wanted) {
    const r = got.get(sc);
    let status;
    let detail;
    if (!r) {
      status = 'FAIL';
      detail = 'no result (scenario did not run or the suite timed out)';
    } else {
      const all = r.runs.flat();
      const count = (s) => all.filter((c) => c.status === s).length;
      const failures = all.filter((c) => c.status === 'FAILURE');
      status = failures.length || r.runs.length < opt.runs ? 'FAIL' : 'PASS';
      detail = `checks: ${count('SUCCESS')} ok, ${failures.length} failed, ${count('WARNING')} warnings` +
        (opt.runs > 1 || r.runs.length > 1 ? `, ran ${r.runs.length} of ${opt.runs} times` : '');
      if (failures.length) {
        const msg = failures.map((c) => `${c.id ?? '?'}: ${(c.errorMessage ?? '').split('\n')[0]}`).join(' | ');
        detail += ` -- ${msg.slice(0, 400)}`;
      }
    }
    const reason = expectedReason(suite, sc);
    if (status === 'PASS') {
      passed++;
      if (reason !== undefined) {
        xpass++;
        status = 'XPASS';
        detail += ` (listed as expected failure: ${reason})`;
      }
    } else {
      failed++;
      if (reason !== undefined) {
        status = 'XFAIL';
        detail += ` [expected: ${reason}]`;
      } else {
        unexpected++;
      }
    }
    lines.push(`${status.padEnd(5)} ${suite.padEnd(15)} ${sc.padEnd(32)} ${detail}`);
  }
  for (const sc of got.keys()) {
    if (!wanted.includes(sc)) lines.push(`NOTE  ${suite.padEnd(15)} ${sc.padEnd(32)} ran but is not in the required list (ignored)`);
  }
}
console.log(lines.join('\n'));
if (xpass) console.log(`${xpass} scenario(s) listed in expected-failures passed: remove the stale entries`);
if (unexpected) console.log(`${unexpected} unexpected failure(s)`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(unexpected || (opt.strict && xpass) ? 1 : 0);
