// An eval module that does nothing but keep the report contract: a run directory under
// --output-dir with an empty metrics.csv, and the JSON naming it. For the tests and benches that
// count or time what the runner does around an eval.
export const NOOP_EVAL = `import json, os, sys
out = os.path.abspath(os.path.join(sys.argv[sys.argv.index("--output-dir") + 1], "noop-%d" % os.getpid()))
os.makedirs(out)
open(os.path.join(out, "metrics.csv"), "w").write("task,scope,metric_family,precision,recall,f1\\n")
print(json.dumps({"run_dir": out, "report_json": "", "report_md": "", "metrics_csv": os.path.join(out, "metrics.csv")}))
`
