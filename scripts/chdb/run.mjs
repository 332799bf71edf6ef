// Runs SQL on current ClickHouse embedded via chDB (npm package "chdb",
// pinned in package.json; it pins its libchdb build exactly).
// Install: `npm install --prefix scripts/chdb` (about 20 s, 166 MB). Not
// `npm ci`: npm 11 leaves chdb's other-platform optional packages out of
// package-lock.json (npm/cli#4828), so `npm ci` rejects the lockfile.
// Driven by testenv.CompareWithChDB; usable by hand:
//
//   echo '{"statements":["CREATE TABLE t (x UInt8) ENGINE = Memory"],
//          "queries":[{"name":"v","sql":"SELECT version()"}]}' | node scripts/chdb/run.mjs
//
// Request on stdin:
//   {"database": "tally",            // optional, default "tally"; created and used
//    "statements": ["DDL or INSERT", ...],
//    "queries": [{"name": "q1", "sql": "SELECT ..."}]}
// Response on stdout (always valid JSON, exit code 0 unless the request is unreadable):
//   {"version": "26.7.2.1",
//    "results": {"q1": {"meta": [{"name": "c", "type": "UInt64"}], "data": [["1"]]}},
//    "errors": {"statements[3]": "message", "q2": "message"}}
// Statements run in order in one chDB Session (a temp dir, removed at exit);
// the first failing statement stops the run (its error is reported and no
// query runs). Each query's error is reported under its name. Results use
// chDB's JSONCompact format: 64-bit integers and inf/nan are JSON strings,
// DateTime is "YYYY-MM-DD hh:mm:ss" in the session time zone, which is UTC.
import { readFileSync } from "node:fs";
import { Session } from "chdb";

function fail(msg) {
  process.stderr.write(`run.mjs: ${msg}\n`);
  process.exit(2);
}

let req;
try {
  req = JSON.parse(readFileSync(0, "utf8"));
} catch (e) {
  fail(`read request from stdin: ${e.message}`);
}
const database = req.database ?? "tally";
if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(database)) fail(`bad database name ${JSON.stringify(database)}`);
const statements = req.statements ?? [];
const queries = req.queries ?? [];

const out = { version: "", results: {}, errors: {} };
const session = new Session();
try {
  session.query("SET session_timezone = 'UTC'");
  // inf/nan as strings (not null) and 64-bit integers as strings, so that
  // nothing is lost or confused in JSON.
  session.query("SET output_format_json_quote_denormals = 1");
  session.query("SET output_format_json_quote_64bit_integers = 1");
  out.version = session.query("SELECT version()", "TSVRaw").trim();
  session.query(`CREATE DATABASE IF NOT EXISTS ${database}`);
  session.query(`USE ${database}`);

  let ok = true;
  for (const [i, sql] of statements.entries()) {
    try {
      session.query(sql);
    } catch (e) {
      out.errors[`statements[${i}]`] = e.message;
      ok = false;
      break;
    }
  }
  if (ok) {
    for (const q of queries) {
      try {
        const res = JSON.parse(session.query(q.sql, "JSONCompact"));
        out.results[q.name] = { meta: res.meta, data: res.data };
      } catch (e) {
        out.errors[q.name] = e.message;
      }
    }
  }
} finally {
  session.close();
}
process.stdout.write(JSON.stringify(out) + "\n");
